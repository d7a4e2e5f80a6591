import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { PlanStore } from '../../src/plan/plan-store';
import { computePlan, type Plan, type PlannedItem } from '../../src/plan/planner';
import { DEFAULT_CLUSTER } from '../../src/shared/clusters';
import { PoolStore } from '../../src/store/pool-store';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown';
import { runBin } from '../helpers/bin';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { createTestDatabase, databaseExists, roleExists, type TestDatabase } from '../helpers/postgres';
import { CapturedLog } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { insertRow } from '../helpers/rows';
import { cleanupToken, newPoolToken, seedTargets } from '../helpers/teardown-fixtures';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const GRACE = 10 * MINUTE;

/**
 * `pool-reaper plan` on a real population: every verdict right, and nothing changed: the
 * databases, roles, keys, ACL users and rows are all still there, and no `provisioner.drop*`
 * line was written.
 */
describe('plan: what the next passes would do, read-only', () => {
  let db: TestDatabase;
  let store: PoolStore;
  let registry: TeardownRegistry;
  const log = new CapturedLog();
  const redis = testRedis();
  const targets = seedTargets();
  const provisioned: string[] = [];
  const items: Record<string, { id: string; poolToken: string }> = {};

  const seed = async (type: 'postgres' | 'redis', status: 'failed' | 'ready' | 'assigned', ageMs: number) => {
    const [item] = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType: type,
      status,
      ageMs,
    });
    provisioned.push(item!.poolToken);
    return item!;
  };

  beforeAll(async () => {
    db = await createTestDatabase('plan');
    store = new PoolStore(db.pool);
    registry = createTeardownRegistry({
      postgresClusters: new Map([[DEFAULT_CLUSTER, TEST_POSTGRES_URL]]),
      redisClusters: new Map([[DEFAULT_CLUSTER, TEST_REDIS_URL]]),
      concurrency: 2,
      log: log.logger,
    });
    items['pgStale'] = await seed('postgres', 'failed', HOUR);
    items['redisStale'] = await seed('redis', 'failed', HOUR);
    items['gone'] = await seed('postgres', 'failed', HOUR);
    await cleanupToken(targets, items['gone']!.poolToken);
    items['fresh'] = await seed('postgres', 'failed', 2 * MINUTE);
    items['ready'] = await seed('postgres', 'ready', HOUR);
    items['assigned'] = await seed('redis', 'assigned', 24 * HOUR);
    items['reserved'] = await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      poolToken: 'postgres',
    });
    items['notPool'] = await insertRow(db.pool, {
      resourceType: 'redis',
      status: 'failed',
      ageMs: HOUR,
      poolToken: 'not a pool token',
    });
    items['unknownCluster'] = await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: 'local:9',
    });
    items['mongodb'] = await insertRow(db.pool, { resourceType: 'mongodb', status: 'failed', ageMs: HOUR });
    items['quarantined'] = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    await db.pool.query(
      `INSERT INTO pool_reaper_item_failures (item_id, pool_token, resource_type, failures, last_error_type, last_error, quarantined_at)
       VALUES ($1, $2, 'queue', 3, 'DropRefusedError', 'refused for the test', now())`,
      [items['quarantined'].id, items['quarantined'].poolToken],
    );
    items['locked'] = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const shared = newPoolToken();
    items['shared'] = await insertRow(db.pool, {
      resourceType: 'queue',
      status: 'failed',
      ageMs: HOUR,
      poolToken: shared,
    });
    await insertRow(db.pool, { resourceType: 'queue', status: 'ready', ageMs: HOUR, poolToken: shared });
  });
  afterAll(async () => {
    for (const token of provisioned) await cleanupToken(targets, token);
    await registry?.close();
    await db?.drop();
    await targets.close();
    redis.disconnect();
  });

  const snapshot = async () => ({
    rows: (await db.pool.query('SELECT id, status, pool_token, assigned_at FROM pool_items ORDER BY id'))
      .rows,
    failures: (await db.pool.query('SELECT * FROM pool_reaper_item_failures ORDER BY item_id')).rows,
    tombstones: (await db.pool.query('SELECT count(*)::int AS n FROM pool_reaper_reaped')).rows[0].n,
    clusters: (await db.pool.query('SELECT count(*)::int AS n FROM pool_reaper_clusters')).rows[0].n,
  });
  const infra = async () => {
    const pg = items['pgStale']!.poolToken;
    const rd = items['redisStale']!.poolToken;
    return {
      database: await databaseExists(`db_${pg}`),
      role: await roleExists(`usr_${pg}`),
      keys: (await keysMatching(redis, `${rd}:*`)).length,
      aclUser: await aclUserExists(redis, `usr_${rd}`),
      readyDatabase: await databaseExists(`db_${items['ready']!.poolToken}`),
      freshDatabase: await databaseExists(`db_${items['fresh']!.poolToken}`),
    };
  };

  function byId(plan: Plan): Map<string, PlannedItem> {
    return new Map(plan.items.map((i) => [i.id, i]));
  }

  it('gives every stale failed item the verdict a pass would reach, and touches nothing', async () => {
    const before = await snapshot();
    const infraBefore = await infra();
    expect(infraBefore).toMatchObject({ database: true, role: true, aclUser: true, readyDatabase: true });
    expect(infraBefore.keys).toBeGreaterThan(0);

    // Another transaction holds the `locked` row, as a teardown in progress would.
    const holder = await db.pool.connect();
    let plan: Plan;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM pool_items WHERE id = $1 FOR UPDATE', [items['locked']!.id]);
      plan = await computePlan(
        { store, plans: new PlanStore(db.pool), teardown: registry, failedGraceMs: GRACE, batchLimit: 50 },
        500,
      );
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const got = byId(plan);
    const verdict = (name: string) => got.get(items[name]!.id);

    expect(verdict('pgStale')).toMatchObject({
      verdict: 'reap',
      resourceType: 'postgres',
      cluster: 'local:0',
      poolToken: items['pgStale']!.poolToken,
      nextPass: true,
      objects: [
        { kind: 'database', name: `db_${items['pgStale']!.poolToken}`, exists: true },
        { kind: 'role', name: `usr_${items['pgStale']!.poolToken}`, exists: true },
      ],
    });
    expect(verdict('pgStale')!.reason).toBeUndefined();
    const redisPlan = verdict('redisStale')!;
    expect(redisPlan.verdict).toBe('reap');
    expect(redisPlan.objects).toContainEqual({
      kind: 'acl_user',
      name: `usr_${items['redisStale']!.poolToken}`,
      exists: true,
    });
    expect(redisPlan.objects).toContainEqual({
      kind: 'keys',
      name: `${items['redisStale']!.poolToken}:*`,
      exists: true,
      count: infraBefore.keys,
    });
    // Objects already gone: still `reap` (its row would go), every object absent.
    const gone = verdict('gone')!;
    expect(gone.verdict).toBe('reap');
    expect(gone.objects.length).toBe(2);
    expect(gone.objects.every((o) => o.exists === false)).toBe(true);

    expect(verdict('reserved')).toMatchObject({
      verdict: 'refuse',
      guard: { site: 'token', reason: 'reserved' },
    });
    expect(verdict('reserved')!.reason).toMatch(/drop guard refused \(site token, reason reserved\)/);
    expect(verdict('notPool')).toMatchObject({
      verdict: 'refuse',
      guard: { site: 'token', reason: 'invalid_characters' },
      objects: [],
    });
    expect(verdict('unknownCluster')).toMatchObject({ verdict: 'skip', guard: { site: 'cluster' } });
    expect(verdict('unknownCluster')!.reason).toMatch(/^unknown cluster: .*local:9/);
    expect(verdict('mongodb')).toMatchObject({ verdict: 'skip', guard: { site: 'resource_type' } });
    expect(verdict('mongodb')!.reason).toMatch(/^unsupported type/);
    expect(verdict('quarantined')).toMatchObject({ verdict: 'skip', nextPass: false });
    expect(verdict('quarantined')!.reason).toMatch(/^quarantined since .* after 3 needs-an-operator failure/);
    expect(verdict('locked')).toMatchObject({ verdict: 'skip' });
    expect(verdict('locked')!.reason).toMatch(/^row locked by another transaction/);
    expect(verdict('shared')).toMatchObject({ verdict: 'refuse' });
    expect(verdict('shared')!.reason).toMatch(/^shared token/);

    // Fresh, ready and assigned items are never in a plan, so never `reap`.
    for (const name of ['fresh', 'ready', 'assigned']) expect(got.has(items[name]!.id), name).toBe(false);
    expect(plan.totals).toEqual({ reap: 3, refuse: 3, skip: 4 });
    expect(plan.items.length).toBe(10);
    expect(plan.staleFailed).toBe(10);
    expect(plan.truncated).toBe(false);

    // Read-only: rows, the reaper's records, infra all as before; no audit line of a drop.
    expect(await snapshot()).toEqual(before);
    expect(await infra()).toEqual(infraBefore);
    expect(log.lines.filter((l) => String(l['event'] ?? '').startsWith('provisioner.drop'))).toEqual([]);
  });

  it('the built CLI prints the same plan as JSON, and explains one item, read-only', async () => {
    const env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      PROVISIONER_DATABASE_URL: db.url,
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      REDIS_URL: TEST_REDIS_URL,
      REAPER_FAILED_GRACE: '10m',
      LOG_LEVEL: 'debug',
    };
    const before = await snapshot();
    const infraBefore = await infra();
    const result = await runBin(['plan', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    const got = byId(plan);
    expect(got.get(items['pgStale']!.id)?.verdict).toBe('reap');
    expect(got.get(items['reserved']!.id)?.verdict).toBe('refuse');
    expect(got.get(items['mongodb']!.id)?.verdict).toBe('skip');
    for (const item of plan.items) {
      expect(Object.keys(item)).toEqual(
        expect.arrayContaining(['id', 'poolToken', 'resourceType', 'cluster', 'verdict', 'objects']),
      );
      if (item.verdict !== 'reap') expect(typeof item.reason).toBe('string');
      for (const o of item.objects) expect(['database', 'role', 'keys', 'acl_user']).toContain(o.kind);
    }
    // Nothing holds the `locked` row now: that queue item (nothing per item to drop) is `reap`.
    expect(got.get(items['locked']!.id)).toMatchObject({ verdict: 'reap', objects: [] });
    expect(plan.totals).toEqual({ reap: 4, refuse: 3, skip: 3 });
    expect(result.stderr).not.toContain('provisioner.drop');

    const limited = await runBin(['plan', '--json', '--limit', '2'], env);
    expect(JSON.parse(limited.stdout)).toMatchObject({ truncated: true, staleFailed: 10 });
    const text = await runBin(['plan'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/totals: 10 item\(s\): reap 4, refuse 3, skip 3/);

    const fresh = await runBin(['explain', items['fresh']!.poolToken, '--json'], env);
    expect(fresh.code, fresh.stderr).toBe(0);
    const explained = JSON.parse(fresh.stdout);
    expect(explained.rows[0]).toMatchObject({ verdict: 'skip', status: 'failed' });
    expect(explained.rows[0].reason).toMatch(/^inside the failed grace/);
    expect(explained.rows[0].objects).toContainEqual({
      kind: 'database',
      name: `db_${items['fresh']!.poolToken}`,
      exists: true,
    });
    const ready = await runBin(['explain', items['ready']!.id], env);
    expect(ready.code).toBe(0);
    expect(ready.stdout).toMatch(/would SKIP it: status is ready/);
    const unknown = await runBin(['explain', 'pool-00000000-0000-0000-0000-000000000000'], env);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/no pool item and no reaped tombstone matches/);

    expect(await snapshot()).toEqual(before);
    expect(await infra()).toEqual(infraBefore);
  });
});
