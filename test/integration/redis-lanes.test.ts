import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { type ActivityRecord, historyOrder } from '../helpers/history';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { keysMatching, testRedis } from '../helpers/redis';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

const HOUR = 3_600_000;

/**
 * Redis clusters get their own lane count (REAPER_REDIS_CLUSTER_CONCURRENCY): their teardowns
 * share one keyspace walk per cluster, so a wave of N items costs two walks whatever N, and the
 * pass should let them run together even when Postgres clusters are held to one lane.
 */
describe('Redis cluster lanes', () => {
  let h: ReaperHarness;
  const redis = testRedis();
  const targets = seedTargets();
  const provisioned: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('redis_lanes');
  });
  afterEach(async () => {
    for (const token of provisioned.splice(0)) await cleanupToken(targets, token);
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
    await targets.close();
    redis.disconnect();
  });

  const seedRedis = async (count: number) => {
    const items = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count,
      resourceType: 'redis',
      status: 'failed',
      ageMs: HOUR,
    });
    provisioned.push(...items.map((i) => i.poolToken));
    return items;
  };

  /** How many deprovisions were scheduled before the first one completed: the lanes in use. */
  const scheduledBeforeFirstDone = (order: readonly ActivityRecord[]) => {
    const deprovisions = order.filter((e) => e.activity === 'deprovision');
    const firstDone = Math.min(...deprovisions.map((e) => e.completedEventId ?? Number.POSITIVE_INFINITY));
    return deprovisions.filter((e) => e.scheduledEventId < firstDone).length;
  };

  it('runs a Redis cluster’s items together even with one lane per Postgres cluster', async () => {
    const items = await seedRedis(3);
    const { summary, handle } = await h.runPass({
      concurrency: 8,
      clusterConcurrency: 1,
      redisClusterConcurrency: 3,
    });
    expect(summary).toMatchObject({ listed: 3, reaped: 3, deprovisionErrors: 0 });
    const order = await historyOrder(handle);
    expect(order.filter((e) => e.activity === 'deprovision')).toHaveLength(3);
    expect(scheduledBeforeFirstDone(order)).toBe(3);
    for (const item of items) expect(await keysMatching(redis, `${item.poolToken}:*`)).toEqual([]);
  });

  it('holds Redis clusters to the cluster lanes on passes without the setting (older tickers)', async () => {
    await seedRedis(3);
    const { summary, handle } = await h.runPass({ concurrency: 8, clusterConcurrency: 1 });
    expect(summary).toMatchObject({ listed: 3, reaped: 3, deprovisionErrors: 0 });
    expect(scheduledBeforeFirstDone(await historyOrder(handle))).toBe(1);
  });
});
