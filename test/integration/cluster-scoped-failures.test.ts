import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertPoolItemRow, provisionItem, type SeededItem, seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { adminQuery, databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { cleanupTokens } from '../helpers/reliability-fixtures';
import { insertRow } from '../helpers/rows';

const HOUR = 3_600_000;

/**
 * Issue 13, item 2: failures that hit a whole cluster (the admin role lacks a privilege,
 * Redis answers NOPERM, the cluster id is not configured on this replica) are not the item's
 * fault. Through real passes on the real Postgres and Redis: the item's row is kept, the pass
 * counts a deprovision error, the cluster is marked and counted per cluster, the item is never
 * quarantined however many passes fail on it, and the other clusters' items are reaped in the
 * same passes.
 */
describe('cluster-scoped failures never quarantine (real Temporal, Postgres, Redis)', () => {
  const suffix = uniqueSuffix();
  // A login that may create roles and databases but is no superuser: DROP DATABASE of a tenant
  // database it does not own answers 42501 (must be owner of database).
  const weakAdmin = `prt_weak_admin_${suffix}`;
  // A Redis user that can log in and read but has no ACL and no UNLINK: NOPERM.
  const weakRedisUser = `prt_noperm_${suffix}`;
  const weakRedisPassword = `pw-${suffix}`;
  const redis = testRedis();
  let h: ReaperHarness;
  const seededTokens: string[] = [];

  const weakPostgresUrl = () => {
    const url = new URL(TEST_POSTGRES_URL);
    url.username = weakAdmin;
    url.password = '';
    url.pathname = '/postgres';
    return url.toString();
  };
  const weakRedisUrl = () => {
    const url = new URL(TEST_REDIS_URL);
    url.username = weakRedisUser;
    url.password = weakRedisPassword;
    return url.toString();
  };

  beforeAll(async () => {
    await adminQuery(`CREATE ROLE ${pg.escapeIdentifier(weakAdmin)} LOGIN CREATEROLE CREATEDB`);
    await redis.call(
      'ACL',
      'SETUSER',
      weakRedisUser,
      'on',
      `>${weakRedisPassword}`,
      '~*',
      '+@read',
      '+ping',
      '+info',
      '+client',
      '+hello',
      '-acl',
      '-unlink',
    );
    h = await createReaperHarness('cluster_scoped', {
      postgresClusters: new Map([
        ['local:0', TEST_POSTGRES_URL],
        ['local:3', weakPostgresUrl()],
      ]),
      redisClusters: new Map([
        ['local:0', TEST_REDIS_URL],
        ['local:4', weakRedisUrl()],
      ]),
    });
  });
  afterEach(async () => {
    await h.db.pool.query('DELETE FROM pool_items');
    await h.db.pool.query('DELETE FROM pool_reaper_clusters');
    await h.db.pool.query('DELETE FROM pool_reaper_item_failures');
  });
  afterAll(async () => {
    await h?.close();
    await cleanupTokens(seededTokens);
    await adminQuery(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(weakAdmin)}`).catch(() => undefined);
    await redis.call('ACL', 'DELUSER', weakRedisUser).catch(() => undefined);
    redis.disconnect();
  });

  const seed = async (
    resourceType: 'postgres' | 'redis',
    providerResourceId: string,
  ): Promise<SeededItem> => {
    const [item] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType,
      status: 'failed',
      ageMs: HOUR,
      providerResourceId,
    });
    seededTokens.push(item!.poolToken);
    return item!;
  };
  const rowExists = async (id: string) =>
    ((await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [id])).rowCount ?? 0) > 0;
  const reapCounter = async (outcome: string, type: string) =>
    (await h.metrics.reapTotal.get()).values.find(
      (v) => v.labels.outcome === outcome && v.labels.resource_type === type && v.labels.status === 'failed',
    )?.value ?? 0;
  const clusterErrors = async (type: string, cluster: string, errorType: string) =>
    (await h.metrics.clusterErrors.get()).values.find(
      (v) =>
        v.labels.resource_type === type && v.labels.cluster === cluster && v.labels.error_type === errorType,
    )?.value ?? 0;

  it('keeps the rows of a cluster that lacks a privilege, answers NOPERM or is not configured, pass after pass, and reaps the others', async () => {
    const noPrivilege = await seed('postgres', 'local:3');
    const noPerm = await seed('redis', 'local:4');
    const unknown = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: 'local:9',
    });
    const kept = [noPrivilege, noPerm, unknown];
    const keptTokens = new Set(kept.map((k) => k.poolToken));
    const errorsBefore = {
      postgres: await reapCounter('deprovision_err', 'postgres'),
      redis: await reapCounter('deprovision_err', 'redis'),
      local3: await clusterErrors('postgres', 'local:3', 'ClusterAccessError'),
      local4: await clusterErrors('redis', 'local:4', 'ClusterAccessError'),
      local9: await clusterErrors('postgres', 'local:9', 'UnknownClusterError'),
    };
    // Two passes more than it takes an item-scoped failure to quarantine.
    const passes = h.settings.quarantineAfter + 2;

    for (let pass = 1; pass <= passes; pass++) {
      if (pass > 1) {
        // A cluster that failed waits out a cool-down (15 s, doubling) before one of its items
        // probes it again, and a probe that fails waits out a backoff of its own (30 s,
        // doubling); without this the later passes would not even list the kept items, and
        // "never quarantined" would hold for want of trying. Ending both makes every pass
        // attempt every kept item again.
        await h.db.pool.query('UPDATE pool_reaper_clusters SET retry_at = now()');
        await h.db.pool.query('UPDATE pool_reaper_item_failures SET next_attempt_at = now()');
      }
      const good = [await seed('postgres', 'local:0'), await seed('redis', 'local:0')];

      const { summary, handle } = await h.runPass();

      expect(summary, `pass ${pass}`).toMatchObject({
        listed: 5,
        reaped: 2,
        deprovisionErrors: 3,
        refused: 0,
        deleteErrors: 0,
      });
      expect(summary.errors.map((e) => [e.poolToken, e.outcome, e.errorType]).sort(), `pass ${pass}`).toEqual(
        [
          [noPrivilege.poolToken, 'deprovision_err', 'ClusterAccessError'],
          [noPerm.poolToken, 'deprovision_err', 'ClusterAccessError'],
          [unknown.poolToken, 'deprovision_err', 'UnknownClusterError'],
        ].sort(),
      );
      // The other clusters' items went all the way in the same pass.
      for (const item of good) expect(await rowExists(item.id), `pass ${pass}`).toBe(false);
      expect(await databaseExists(good[0]!.item.databaseName)).toBe(false);
      expect(await keysMatching(redis, `${good[1]!.poolToken}:*`)).toEqual([]);
      // Nothing of a kept item was deleted: no deleteItem in the pass's history names it.
      const history = await historyOrder(handle);
      const deleted = history.filter((r) => r.activity === 'deleteItem').map((r) => r.poolToken);
      expect(deleted.filter((t) => t !== undefined && keptTokens.has(t))).toEqual([]);
      expect(deleted.sort()).toEqual(good.map((g) => g.poolToken).sort());
      // Never counted towards quarantine, not even below the threshold.
      expect(await h.store.listFailures({ quarantinedOnly: true }), `pass ${pass}`).toEqual([]);
    }

    for (const item of kept) expect(await rowExists(item.id)).toBe(true);
    // At most a backoff, never a needs-an-operator failure.
    for (const f of await h.store.listFailures()) {
      expect(f).toMatchObject({ failures: 0, quarantinedAt: null });
    }
    expect(await h.store.countQuarantined()).toMatchObject({ postgres: 0, redis: 0 });
    // The kept items' infra is untouched where the reaper lacked the rights to drop it.
    expect(await databaseExists(noPrivilege.item.databaseName)).toBe(true);
    expect(await roleExists(noPrivilege.item.username)).toBe(true);
    expect(await keysMatching(redis, `${noPerm.poolToken}:*`)).toHaveLength(3);
    expect(await aclUserExists(redis, noPerm.item.username)).toBe(true);

    // Counted as deprovision errors (PoolReapErrors) and per cluster (PoolClusterDown).
    expect(await reapCounter('deprovision_err', 'postgres')).toBe(errorsBefore.postgres + 2 * passes);
    expect(await reapCounter('deprovision_err', 'redis')).toBe(errorsBefore.redis + passes);
    expect(await clusterErrors('postgres', 'local:3', 'ClusterAccessError')).toBe(
      errorsBefore.local3 + passes,
    );
    expect(await clusterErrors('redis', 'local:4', 'ClusterAccessError')).toBe(errorsBefore.local4 + passes);
    expect(await clusterErrors('postgres', 'local:9', 'UnknownClusterError')).toBe(
      errorsBefore.local9 + passes,
    );
    const marked = await h.db.pool.query(
      `SELECT resource_type, cluster, last_error_type, failures FROM pool_reaper_clusters
        ORDER BY resource_type, cluster`,
    );
    expect(marked.rows).toEqual([
      {
        resource_type: 'postgres',
        cluster: 'local:3',
        last_error_type: 'ClusterAccessError',
        failures: passes,
      },
      {
        resource_type: 'postgres',
        cluster: 'local:9',
        last_error_type: 'UnknownClusterError',
        failures: passes,
      },
      { resource_type: 'redis', cluster: 'local:4', last_error_type: 'ClusterAccessError', failures: passes },
    ]);
    // The errors say which cluster refused and why, never with the credentials.
    const pgError = (
      await h.db.pool.query('SELECT last_error FROM pool_reaper_clusters WHERE cluster = $1', ['local:3'])
    ).rows[0]?.last_error as string;
    expect(pgError).toMatch(/must be owner of database/);
    expect(pgError).toContain('[42501]');
    const redisError = (
      await h.db.pool.query('SELECT last_error FROM pool_reaper_clusters WHERE cluster = $1', ['local:4'])
    ).rows[0]?.last_error as string;
    expect(redisError).toContain('NOPERM');
    expect(redisError).not.toContain(weakRedisPassword);
  });
  it('one item the admin may not drop does not hold up the rest of its cluster: a failed probe waits, another item probes', async () => {
    // The oldest item is owned by another role (42501 for the weak admin, whatever the pass);
    // the younger one was created by the weak admin itself, which may drop it.
    const stuck = await seed('postgres', 'local:3');
    await h.db.pool.query(`UPDATE pool_items SET assigned_at = now() - interval '2 hours' WHERE id = $1`, [
      stuck.id,
    ]);
    const admin = new pg.Pool({ connectionString: weakPostgresUrl(), max: 1 });
    const redisTarget = new Redis(TEST_REDIS_URL);
    let droppable: { id: string; poolToken: string; databaseName: string };
    try {
      const item = await provisionItem(
        { admin, adminUrl: weakPostgresUrl(), redis: redisTarget, redisUrl: TEST_REDIS_URL },
        { resourceType: 'postgres', providerResourceId: 'local:3' },
      );
      seededTokens.push(item.poolToken);
      const ref = await insertPoolItemRow(h.db.pool, { ...item, status: 'failed', ageMs: HOUR });
      droppable = { id: ref.id, poolToken: item.poolToken, databaseName: item.databaseName };
    } finally {
      await admin.end();
      redisTarget.disconnect();
    }

    // One lane per cluster: the stuck item fails first and its cluster's other item waits.
    const first = (await h.runPass({ clusterConcurrency: 1 })).summary;
    expect(first).toMatchObject({ listed: 2, deprovisionErrors: 1, deferred: 1, reaped: 0 });

    // From now on each pass lists one probe item of the cluster once its cool-down is over.
    // A probe that fails on its own item must not be the probe again and again: the other
    // item would then never be listed (the whole cluster's backlog held up by one item).
    const probes: string[] = [];
    for (let pass = 2; pass <= 4 && (await rowExists(droppable.id)); pass++) {
      await h.db.pool.query('UPDATE pool_reaper_clusters SET retry_at = now()');
      const { summary } = await h.runPass({ clusterConcurrency: 1 });
      expect(summary.listed, `pass ${pass}`).toBe(1);
      probes.push(summary.reaped === 1 ? droppable.poolToken : (summary.errors[0]?.poolToken ?? 'none'));
    }
    expect(probes).toEqual([stuck.poolToken, droppable.poolToken]);
    expect(await rowExists(droppable.id)).toBe(false);
    expect(await databaseExists(droppable.databaseName)).toBe(false);
    // The cluster answered its probe: no longer marked down.
    expect((await h.db.pool.query('SELECT 1 FROM pool_reaper_clusters')).rowCount).toBe(0);
    // The stuck item is kept, waits out its own backoff, and is never quarantined.
    expect(await rowExists(stuck.id)).toBe(true);
    expect(await databaseExists(stuck.item.databaseName)).toBe(true);
    const [record] = await h.store.listFailures();
    expect(record).toMatchObject({ itemId: stuck.id, failures: 0, quarantinedAt: null });
  });
});
