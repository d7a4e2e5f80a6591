import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';
import { waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const MINUTE = 60_000;

describe('reapPass on real Temporal, Postgres and Redis', () => {
  let h: ReaperHarness;
  const redis = testRedis();
  const targets = seedTargets();
  /** Tokens provisioned by the current test: removed after it with plain SQL and Redis commands. */
  const provisioned: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('reap_pass', {
      postgresClusters: new Map([
        ['local:0', TEST_POSTGRES_URL],
        // Nothing listens on port 1: every connection is refused, a transient error.
        ['local:1', 'postgres://postgres@127.0.0.1:1/postgres'],
      ]),
    });
  });
  afterEach(async () => {
    for (const token of provisioned.splice(0)) await cleanupToken(targets, token);
    await h.db.pool.query('DELETE FROM pool_items');
    await h.db.pool.query('DELETE FROM pool_reaper_item_failures');
  });
  afterAll(async () => {
    await h?.close();
    await targets.close();
    redis.disconnect();
  });

  const provision = (
    resourceType: 'postgres' | 'redis',
    status: 'ready' | 'assigned' | 'failed',
    ageMs: number,
  ) =>
    seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType,
      status,
      ageMs,
    }).then(([item]) => {
      provisioned.push(item!.poolToken);
      return item!;
    });

  const rowExists = async (id: string) =>
    ((await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [id])).rowCount ?? 0) > 0;
  const counter = async (outcome: string, type: string) => {
    const metric = await h.metrics.reapTotal.get();
    return (
      metric.values.find(
        (v) =>
          v.labels.outcome === outcome && v.labels.resource_type === type && v.labels.status === 'failed',
      )?.value ?? 0
    );
  };

  it('reaps a stale failed item: infra gone, row gone, counter incremented, in history order', async () => {
    const pgItem = await provision('postgres', 'failed', HOUR);
    const redisItem = await provision('redis', 'failed', HOUR);
    expect(await databaseExists(`db_${pgItem.poolToken}`)).toBe(true);
    const reapedBefore = await counter('reaped', 'postgres');

    const { summary, handle } = await h.runPass();

    expect(summary).toMatchObject({
      listed: 2,
      reaped: 2,
      deprovisionErrors: 0,
      deleteErrors: 0,
      refused: 0,
    });
    expect(await databaseExists(`db_${pgItem.poolToken}`)).toBe(false);
    expect(await roleExists(`usr_${pgItem.poolToken}`)).toBe(false);
    expect(await keysMatching(redis, `${redisItem.poolToken}:*`)).toEqual([]);
    expect(await aclUserExists(redis, `usr_${redisItem.poolToken}`)).toBe(false);
    expect(await rowExists(pgItem.id)).toBe(false);
    expect(await rowExists(redisItem.id)).toBe(false);
    expect(await counter('reaped', 'postgres')).toBe(reapedBefore + 1);
    expect(await counter('reaped', 'redis')).toBeGreaterThanOrEqual(1);

    const order = await historyOrder(handle);
    for (const item of [pgItem, redisItem]) {
      const d = order.find((e) => e.activity === 'deprovision' && e.itemId === item.id);
      const del = order.find((e) => e.activity === 'deleteItem' && e.itemId === item.id);
      expect(d?.completedEventId).toBeDefined();
      expect(del?.scheduledEventId).toBeGreaterThan(d!.completedEventId!);
      expect(del?.poolToken).toBe(item.poolToken);
    }
  });

  it('leaves a failed item inside the grace untouched', async () => {
    const fresh = await provision('postgres', 'failed', 2 * MINUTE);
    const { summary } = await h.runPass();
    expect(summary.listed).toBe(0);
    expect(await databaseExists(`db_${fresh.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${fresh.poolToken}`)).toBe(true);
    expect(await rowExists(fresh.id)).toBe(true);
    await h.db.pool.query("UPDATE pool_items SET assigned_at = now() - interval '1 hour' WHERE id = $1", [
      fresh.id,
    ]);
    await h.runPass();
    expect(await databaseExists(`db_${fresh.poolToken}`)).toBe(false);
  });

  it('never deprovisions assigned (24h old) or ready items', async () => {
    const assigned = await provision('postgres', 'assigned', 24 * HOUR);
    const ready = await provision('postgres', 'ready', 24 * HOUR);
    const assignedRedis = await provision('redis', 'assigned', 24 * HOUR);
    const { summary } = await h.runPass();
    expect(summary.listed).toBe(0);
    for (const item of [assigned, ready]) {
      expect(await databaseExists(`db_${item.poolToken}`)).toBe(true);
      expect(await roleExists(`usr_${item.poolToken}`)).toBe(true);
      expect(await rowExists(item.id)).toBe(true);
    }
    expect((await keysMatching(redis, `${assignedRedis.poolToken}:*`)).length).toBeGreaterThan(0);
    expect(await aclUserExists(redis, `usr_${assignedRedis.poolToken}`)).toBe(true);
    expect(summary.stuckAssigned['postgres']).toBe(1);
    expect(summary.stuckAssigned['redis']).toBe(1);
  });

  it('refuses a failed row whose pool token a live row also carries, keeping both rows and the infra', async () => {
    const live = await provision('postgres', 'ready', HOUR);
    const twin = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      poolToken: live.poolToken,
    });
    const { summary } = await h.runPass();
    expect(summary).toMatchObject({ listed: 1, reaped: 0, refused: 1 });
    expect(summary.errors[0]?.errorType).toBe('SharedPoolTokenError');
    expect(await databaseExists(`db_${live.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${live.poolToken}`)).toBe(true);
    expect(await rowExists(live.id)).toBe(true);
    expect(await rowExists(twin.id)).toBe(true);
    expect((await h.store.listFailures()).map((f) => f.itemId)).toEqual([twin.id]);
  });

  it('keeps the row and counts deprovision_err when the cluster is unreachable', async () => {
    const row = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: 'local:1',
    });
    const before = await counter('deprovision_err', 'postgres');
    const { summary, handle } = await h.runPass();
    expect(summary).toMatchObject({ listed: 1, reaped: 0, deprovisionErrors: 1, refused: 0 });
    expect(summary.errors[0]?.poolToken).toBe(row.poolToken);
    expect(await rowExists(row.id)).toBe(true);
    expect(await counter('deprovision_err', 'postgres')).toBe(before + 1);
    const order = await historyOrder(handle);
    expect(order.some((e) => e.activity === 'deleteItem')).toBe(false);
    // Cluster-scoped: retried, never counted towards quarantine, the cluster marked down instead.
    expect(order.find((e) => e.activity === 'deprovision')?.attempts).toBe(3);
    expect((await h.store.listFailures()).length).toBe(0);
    const marked = await h.db.pool.query(
      'SELECT resource_type, cluster, last_error_type FROM pool_reaper_clusters',
    );
    expect(marked.rows).toEqual([
      { resource_type: 'postgres', cluster: 'local:1', last_error_type: 'ClusterUnreachableError' },
    ]);
    await h.db.pool.query('DELETE FROM pool_items WHERE id = $1', [row.id]);
    await h.db.pool.query('DELETE FROM pool_reaper_clusters');
  });

  it('refuses an empty token without touching anything, and quarantines it after N passes', async () => {
    const empty = await insertRow(h.db.pool, {
      resourceType: 'redis',
      status: 'failed',
      ageMs: HOUR,
      poolToken: '',
    });
    const refusedBefore = await counter('refused', 'redis');
    for (let pass = 1; pass <= h.settings.quarantineAfter; pass++) {
      const { summary } = await h.runPass();
      expect(summary.refused).toBe(1);
      expect(summary.errors.map((e) => e.errorType)).toEqual(['DropRefusedError']);
    }
    expect(await rowExists(empty.id)).toBe(true);
    const quarantined = await h.store.listFailures({ quarantinedOnly: true });
    expect(quarantined.map((q) => q.itemId)).toEqual([empty.id]);
    expect(quarantined[0]?.failures).toBe(h.settings.quarantineAfter);
    expect(await counter('refused', 'redis')).toBe(refusedBefore + h.settings.quarantineAfter);

    const { summary } = await h.runPass();
    expect(summary.listed).toBe(0);
    const scraped = await h.metrics.registry.getSingleMetricAsString('instant_pool_quarantined_items');
    expect(scraped).toContain('instant_pool_quarantined_items{resource_type="redis"} 1');

    const released = await h.store.releaseQuarantine({ itemId: empty.id });
    expect(released.map((r) => r.itemId)).toEqual([empty.id]);
    expect((await h.runPass()).summary.listed).toBe(1);
    await h.store.releaseQuarantine({ all: true });
    await h.db.pool.query('DELETE FROM pool_items WHERE id = $1', [empty.id]);
  });

  it('never quarantines an item of an unconfigured cluster: counted per cluster, the cluster waits, then one item probes it', async () => {
    const rows = await Promise.all(
      [HOUR + 2000, HOUR + 1000].map((ageMs) =>
        insertRow(h.db.pool, {
          resourceType: 'postgres',
          status: 'failed',
          ageMs,
          providerResourceId: 'local:9',
        }),
      ),
    );
    const before = await counter('deprovision_err', 'postgres');
    // One lane per cluster: the first item fails cluster-scoped; the second is deferred without an activity.
    const first = (await h.runPass({ clusterConcurrency: 1 })).summary;
    expect(first).toMatchObject({ listed: 2, deprovisionErrors: 1, deferred: 1, refused: 0 });
    expect(first.clusterFailures).toEqual([
      expect.objectContaining({
        resourceType: 'postgres',
        cluster: 'local:9',
        errorType: 'UnknownClusterError',
      }),
    ]);
    expect(await counter('deprovision_err', 'postgres')).toBe(before + 1);
    const clusterErrors = await h.metrics.registry.getSingleMetricAsString(
      'instant_pool_cluster_errors_total',
    );
    expect(clusterErrors).toContain(
      'instant_pool_cluster_errors_total{resource_type="postgres",cluster="local:9",error_type="UnknownClusterError"} 1',
    );
    const down = await h.db.pool.query('SELECT failures FROM pool_reaper_clusters WHERE cluster = $1', [
      'local:9',
    ]);
    expect(down.rows).toEqual([{ failures: 1 }]);

    // While its cool-down runs, the cluster's items are left out of listings and said to wait.
    const second = (await h.runPass()).summary;
    expect(second.listed).toBe(0);
    expect(second.clustersDown).toEqual([
      expect.objectContaining({ resourceType: 'postgres', cluster: 'local:9', waiting: 2, failures: 1 }),
    ]);

    // Once it has run, exactly one item probes the cluster; it fails again, and still nothing is quarantined.
    await h.db.pool.query("UPDATE pool_reaper_clusters SET retry_at = now() - interval '1 second'");
    const third = (await h.runPass()).summary;
    expect(third).toMatchObject({ listed: 1, deprovisionErrors: 1 });
    expect(third.errors[0]?.poolToken).toBe(rows[0]!.poolToken);
    expect((await h.db.pool.query('SELECT failures FROM pool_reaper_clusters')).rows).toEqual([
      { failures: 2 },
    ]);
    expect(await h.store.listFailures({ quarantinedOnly: true })).toEqual([]);
    for (const row of rows) expect(await rowExists(row.id)).toBe(true);
    await h.db.pool.query('DELETE FROM pool_items WHERE id = ANY($1::uuid[])', [rows.map((r) => r.id)]);
    await h.db.pool.query('DELETE FROM pool_reaper_clusters');
  });

  it('reaps exactly the batch limit (50) of 55 stale failed items in one pass', async () => {
    const items = await Promise.all(
      Array.from({ length: 55 }, (_, i) =>
        insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR + i * 1000 }),
      ),
    );
    const { summary, handle } = await h.runPass();
    expect(summary).toMatchObject({ listed: 50, reaped: 50, batchFull: true, batchLimit: 50 });
    const left = (await h.db.pool.query<{ id: string }>('SELECT id FROM pool_items')).rows.map((r) => r.id);
    // Oldest first: the five youngest remain.
    const byAge = [...items].sort((a, b) => a.ageMs - b.ageMs);
    expect(left.sort()).toEqual(
      byAge
        .slice(0, 5)
        .map((i) => i.id)
        .sort(),
    );

    // 50 tokens do not fit one search attribute value (2 KiB): the overflow is carried by a
    // child of the pass, so every reaped token is still one query away.
    const owners = async () => {
      const found = new Map<string, string[]>();
      for (const item of byAge.slice(5)) {
        const ids: string[] = [];
        for await (const wf of h.temporal.client.workflow.list({
          query: `ReapedPoolTokens = '${item.poolToken}'`,
        })) {
          ids.push(wf.workflowId);
        }
        found.set(item.poolToken, ids);
      }
      return found;
    };
    const found = await waitFor(owners, (m) => [...m.values()].every((ids) => ids.length === 1), {
      what: 'every reaped token to be indexed',
    });
    expect(new Set([...found.values()].flat())).toEqual(
      new Set([handle.workflowId, `${handle.workflowId}-tokens-2`]),
    );
  });

  it('reports stuck assigned items on the gauge: 1, then 0 when the row goes away', async () => {
    const stuck = await insertRow(h.db.pool, { resourceType: 'redis', status: 'assigned', ageMs: 2 * HOUR });
    await h.runPass();
    const gauge = () => h.metrics.registry.getSingleMetricAsString('instant_pool_stuck_assigned');
    expect(await gauge()).toContain('instant_pool_stuck_assigned{resource_type="redis"} 1');
    expect(await gauge()).toContain('instant_pool_stuck_assigned{resource_type="postgres"} 0');
    await h.db.pool.query('DELETE FROM pool_items WHERE id = $1', [stuck.id]);
    await h.runPass();
    expect(await gauge()).toContain('instant_pool_stuck_assigned{resource_type="redis"} 0');
  });

  it('finds the pass that reaped a token with one visibility query', async () => {
    const item = await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const { handle } = await h.runPass();
    const found = await waitFor(
      async () => {
        const ids: string[] = [];
        for await (const wf of h.temporal.client.workflow.list({
          query: `ReapedPoolTokens = '${item.poolToken}'`,
        })) {
          ids.push(wf.workflowId);
        }
        return ids;
      },
      (ids) => ids.length > 0,
      { what: 'visibility to index the pass' },
    );
    expect(found).toEqual([handle.workflowId]);
  });
});
