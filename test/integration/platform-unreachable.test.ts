import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';

const HOUR = 3_600_000;

describe('platform database unreachable, reclamation on: fails closed', () => {
  let h: ReaperHarness;

  beforeAll(async () => {
    h = await createReaperHarness('platform_down', {
      // Nothing listens on port 1: every connection is refused.
      platformDatabaseUrl: 'postgres://postgres@127.0.0.1:1/platform',
      settings: { reclaimOrphans: true, orphanGraceMs: HOUR },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('classifies nothing as orphan, counts and reports the failure, and drops nothing', async () => {
    const [item] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType: 'postgres',
      status: 'assigned',
      ageMs: 48 * HOUR,
    });

    const { summary, handle } = await h.runPass();

    expect(summary.platformCheck).toMatchObject({ status: 'failed', reason: 'connection' });
    expect(summary.orphans).toMatchObject({ total: 0, items: [], reclaim: true });
    expect(summary.orphanReclaim).toBeUndefined();
    expect(summary.assignedClasses?.['postgres']).toEqual({
      bound_live: 0,
      bound_terminal: 0,
      orphan: 0,
      unknown: 1,
    });
    // Fail closed: no orphan count at all, so the stuck gauge exports no series.
    expect(summary.stuckAssigned).toEqual({});
    expect(await h.metrics.registry.getSingleMetricAsString('instant_pool_stuck_assigned')).not.toContain(
      'instant_pool_stuck_assigned{',
    );
    const counted = await h.metrics.platformCheckFailures.get();
    expect(counted.values.find((v) => v.labels.reason === 'connection')?.value).toBe(1);
    expect(h.log.events('pool_reaper.platform_check.failed')[0]).toMatchObject({
      site: 'classify',
      reason: 'connection',
    });

    const activities = (await historyOrder(handle)).map((a) => a.activity);
    expect(activities).toEqual(['listStaleFailed', 'reportStuckAssigned', 'recordPassSummary']);
    expect(await databaseExists(`db_${item!.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${item!.poolToken}`)).toBe(true);

    // Clean up the real infra this test created.
    await h.db.pool.query(`UPDATE pool_items SET status = 'failed'`);
    expect((await h.runPass()).summary.reaped).toBe(1);
  });
});
