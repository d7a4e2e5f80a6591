import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, seedItems } from '../../src/dev/seed';
import type { PassSummary } from '../../src/shared/types';
import { AUDIT_EVENTS } from '../../src/teardown/audit';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { createTestPlatform, type TestPlatform } from '../helpers/platform';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { insertRow } from '../helpers/rows';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** The pass's final UI details (setCurrentDetails), read through the built-in metadata query. */
async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
  return metadata.currentDetails ?? '';
}

describe('orphan audit against a real platform database (PLATFORM_DATABASE_URL set, reclamation off)', () => {
  let h: ReaperHarness;
  let platform: TestPlatform;
  let background: string;
  const redis = testRedis();

  beforeAll(async () => {
    platform = await createTestPlatform('audit');
    background = await platform.addBackgroundBinding();
    h = await createReaperHarness('platform_audit', { platformDatabaseUrl: platform.url });
  });
  afterEach(async () => {
    await h.db.pool.query('DELETE FROM pool_items');
    await platform.clear([background]);
  });
  afterAll(async () => {
    await h?.close();
    await platform?.drop();
    redis.disconnect();
  });

  const scrape = (name: string) => h.metrics.registry.getSingleMetricAsString(name);
  const failures = async (reason: string) =>
    (await h.metrics.platformCheckFailures.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  const assigned = (resourceType: string, ageMs = 2 * HOUR, poolToken?: string) =>
    insertRow(h.db.pool, { resourceType, status: 'assigned', ageMs, ...(poolToken ? { poolToken } : {}) });

  it('classifies bound_live, bound_terminal and orphan; the stuck gauge counts only orphans', async () => {
    const live = await assigned('postgres');
    const livePaused = await assigned('postgres');
    const terminal = await assigned('postgres');
    const orphan = await assigned('postgres');
    const redisOrphan = await assigned('redis');
    const young = await assigned('postgres', 10 * MINUTE);
    await platform.bind(live.poolToken, 'active');
    await platform.addResource({ providerResourceId: `pooltok:${livePaused.poolToken}`, status: 'paused' });
    await platform.bind(terminal.poolToken, 'deleted');

    const { summary } = await h.runPass();

    expect(summary.platformCheck).toEqual({ status: 'ok' });
    expect(summary.assignedClasses?.['postgres']).toEqual({
      bound_live: 2,
      bound_terminal: 1,
      orphan: 1,
      unknown: 0,
    });
    expect(summary.assignedClasses?.['redis']).toEqual({
      bound_live: 0,
      bound_terminal: 0,
      orphan: 1,
      unknown: 0,
    });
    expect(summary.stuckAssigned).toEqual({ postgres: 1, redis: 1, mongodb: 0, queue: 0 });
    expect(summary.orphans?.total).toBe(2);
    expect(summary.orphans?.items.map((o) => o.poolToken).sort()).toEqual(
      [orphan.poolToken, redisOrphan.poolToken].sort(),
    );
    expect(summary.orphans?.items.map((o) => o.poolToken)).not.toContain(young.poolToken);

    const classes = await scrape('instant_pool_assigned_items');
    expect(classes).toContain('instant_pool_assigned_items{resource_type="postgres",class="bound_live"} 2');
    expect(classes).toContain(
      'instant_pool_assigned_items{resource_type="postgres",class="bound_terminal"} 1',
    );
    expect(classes).toContain('instant_pool_assigned_items{resource_type="postgres",class="orphan"} 1');
    expect(classes).toContain('instant_pool_assigned_items{resource_type="redis",class="orphan"} 1');
    expect(classes).toContain('instant_pool_assigned_items{resource_type="queue",class="orphan"} 0');
    const stuck = await scrape('instant_pool_stuck_assigned');
    expect(stuck).toContain('instant_pool_stuck_assigned{resource_type="postgres"} 1');
    expect(stuck).toContain('instant_pool_stuck_assigned{resource_type="redis"} 1');
  });

  it('matches whole `;`-separated segments only: pooltok:pool-abc never matches pooltok:pool-abcd', async () => {
    const abc = newPoolToken();
    const abcd = `${abc}d`;
    const target = await assigned('postgres', 2 * HOUR, abc);
    // None of these binds `abc`.
    for (const providerResourceId of [
      `local:0;pooltok:${abcd}`,
      `pooltok:${abc.slice(0, -1)}`,
      `local:0;xpooltok:${abc}`,
      `local:0;pooltok:${abc}:1`,
      `local:0,pooltok:${abc}`,
      `${abc}`,
      `pooltok:`,
    ]) {
      await platform.addResource({ providerResourceId });
    }
    await platform.addResource({ providerResourceId: null });
    // Each of these binds its own item.
    const bound = [
      await assigned('redis'),
      await assigned('redis'),
      await assigned('redis'),
      await assigned('redis'),
    ];
    await platform.addResource({ providerResourceId: `pooltok:${bound[0]!.poolToken}` });
    await platform.addResource({ providerResourceId: `local:0;pooltok:${bound[1]!.poolToken};replica:2` });
    await platform.addResource({ providerResourceId: `local:0; pooltok:${bound[2]!.poolToken} ` });
    await platform.addResource({
      providerResourceId: `local:0;POOLTOK:${bound[3]!.poolToken.toUpperCase()}`,
    });

    const { summary } = await h.runPass();

    expect(summary.platformCheck).toEqual({ status: 'ok' });
    expect(summary.orphans?.items.map((o) => o.poolToken)).toEqual([target.poolToken]);
    expect(summary.assignedClasses?.['redis']?.bound_live).toBe(4);
    expect(summary.assignedClasses?.['postgres']?.orphan).toBe(1);
  });

  it('audit only: lists orphans (token, type, age) in the summary and the UI, drops nothing', async () => {
    const seed = (resourceType: 'postgres' | 'redis') =>
      seedItems({
        provisionerPool: h.db.pool,
        adminUrl: TEST_POSTGRES_URL,
        redisUrl: TEST_REDIS_URL,
        count: 1,
        resourceType,
        status: 'assigned',
        ageMs: 48 * HOUR,
      }).then(([item]) => item!);
    const pgOrphan = await seed('postgres');
    const redisOrphan = await seed('redis');

    const { summary, handle } = await h.runPass();

    expect(summary.orphans).toMatchObject({ total: 2, reclaim: false });
    const listed = summary.orphans?.items.find((o) => o.poolToken === pgOrphan.poolToken);
    expect(listed).toMatchObject({ id: pgOrphan.id, resourceType: 'postgres' });
    expect(listed!.ageMs).toBeGreaterThanOrEqual(48 * HOUR);
    expect(listed!.ageMs).toBeLessThan(49 * HOUR);
    expect(summary.orphanReclaim).toBeUndefined();

    const details = await currentDetails(handle);
    expect(details).toContain('**Orphans** 2 (audit only, nothing dropped)');
    expect(details).toContain(`postgres ${pgOrphan.poolToken} (2d)`);
    expect(details).toContain(`redis ${redisOrphan.poolToken} (2d)`);

    // Nothing touched: no reclaim child, no teardown activity, no drop event, infra and rows intact.
    const activities = (await historyOrder(handle)).map((a) => a.activity);
    expect(activities).not.toContain('recheckOrphan');
    expect(activities).not.toContain('deprovision');
    expect(h.log.events(AUDIT_EVENTS.drop).filter((e) => e['token'] === pgOrphan.poolToken)).toEqual([]);
    expect(await databaseExists(`db_${pgOrphan.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${pgOrphan.poolToken}`)).toBe(true);
    expect((await keysMatching(redis, `${redisOrphan.poolToken}:*`)).length).toBeGreaterThan(0);
    expect(await aclUserExists(redis, `usr_${redisOrphan.poolToken}`)).toBe(true);
    const { rowCount } = await h.db.pool.query(`SELECT 1 FROM pool_items WHERE status = 'assigned'`);
    expect(rowCount).toBe(2);

    // Clean up the real infra this test created.
    await h.db.pool.query(`UPDATE pool_items SET status = 'failed'`);
    const { summary: cleanup } = await h.runPass();
    expect(cleanup.reaped).toBe(2);
  });

  const expectFailedClosed = (summary: PassSummary, reason: string) => {
    expect(summary.platformCheck).toMatchObject({ status: 'failed', reason });
    expect(summary.orphans?.total).toBe(0);
    expect(summary.assignedClasses?.['postgres']).toEqual({
      bound_live: 0,
      bound_terminal: 0,
      orphan: 0,
      unknown: 2,
    });
    // Nobody can tell orphans now: the stuck gauge has no series rather than a wrong count
    // (issue 13, item 10), so PoolStuckAssigned cannot fire for the platform's outage.
    expect(summary.stuckAssigned).toEqual({});
  };

  it('fails closed on an empty inventory: nothing is an orphan, the failure is counted', async () => {
    await assigned('postgres');
    await assigned('postgres');
    await platform.clear();
    const before = await failures('empty_inventory');
    try {
      const { summary, handle } = await h.runPass();
      expectFailedClosed(summary, 'empty_inventory');
      expect(await failures('empty_inventory')).toBe(before + 1);
      expect(await scrape('instant_pool_assigned_items')).toContain(
        'instant_pool_assigned_items{resource_type="postgres",class="unknown"} 2',
      );
      expect(await scrape('instant_pool_stuck_assigned')).not.toContain('instant_pool_stuck_assigned{');
      expect(await currentDetails(handle)).toContain('**Platform check failed** (empty_inventory)');
    } finally {
      background = await platform.addBackgroundBinding();
    }
  });

  it('fails closed when no resource carries a pooltok binding at all', async () => {
    await assigned('postgres');
    await assigned('postgres');
    await platform.clear();
    await platform.addResource({ providerResourceId: 'local:0' });
    await platform.addResource({ providerResourceId: null });
    try {
      const before = await failures('no_bindings');
      const { summary } = await h.runPass();
      expectFailedClosed(summary, 'no_bindings');
      expect(await failures('no_bindings')).toBe(before + 1);
    } finally {
      background = await platform.addBackgroundBinding();
    }
  });

  it('fails closed when the platform database has no resources table (query error)', async () => {
    await assigned('postgres');
    await assigned('postgres');
    await platform.db.pool.query('ALTER TABLE resources RENAME TO resources_moved');
    try {
      const before = await failures('query');
      const { summary } = await h.runPass();
      expectFailedClosed(summary, 'query');
      expect(await failures('query')).toBe(before + 1);
    } finally {
      await platform.db.pool.query('ALTER TABLE resources_moved RENAME TO resources');
    }
  });

  it('with nothing stuck, the check is ok and every series is 0', async () => {
    await assigned('postgres', 5 * MINUTE);
    const { summary } = await h.runPass();
    expect(summary.platformCheck).toEqual({ status: 'ok' });
    expect(summary.orphans?.total).toBe(0);
    expect(summary.stuckAssigned).toEqual({ postgres: 0, redis: 0, mongodb: 0, queue: 0 });
    expect(await scrape('instant_pool_assigned_items')).toContain(
      'instant_pool_assigned_items{resource_type="postgres",class="bound_live"} 0',
    );
  });
});
