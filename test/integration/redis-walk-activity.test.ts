import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { seedItems } from '../../src/dev/seed';
import { createMetrics } from '../../src/metrics';
import type { PoolItemRef } from '../../src/shared/types';
import { PoolStore } from '../../src/store/pool-store';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown';
import type { WalkObserver } from '../../src/teardown/redis-walker';
import { snapshotReader } from '../../src/worker';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { CapturedLog, TEST_SETTINGS } from '../helpers/reaper';
import { keysMatching, testRedis } from '../helpers/redis';
import { startTcpProxy } from '../helpers/tcp-proxy';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

// The deprovision activity over the shared Redis walk: it heartbeats while its item waits on the
// walk, and a walk that fails leaves the row for a retry. No Temporal server: the activity runs
// in MockActivityEnvironment against the real provisioner database and Redis.

const HOUR = 3_600_000;
const redis = testRedis();
const targets = seedTargets();
let db: TestDatabase;
let store: PoolStore;
const tokens: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase('redis_walk_activity');
  store = new PoolStore(db.pool);
});

afterAll(async () => {
  for (const token of tokens) await cleanupToken(targets, token);
  await db.drop();
  await targets.close();
  redis.disconnect();
});

function activitiesWith(registry: TeardownRegistry, log: CapturedLog) {
  return createActivities({
    store,
    teardown: registry,
    settings: TEST_SETTINGS,
    metrics: createMetrics(snapshotReader(store, TEST_SETTINGS.failedGraceMs), { defaultMetrics: false }),
    log: log.logger,
  });
}

async function seedFailedRedisItem(): Promise<PoolItemRef> {
  const [seeded] = await seedItems({
    provisionerPool: db.pool,
    adminUrl: TEST_POSTGRES_URL,
    redisUrl: TEST_REDIS_URL,
    count: 1,
    resourceType: 'redis',
    status: 'failed',
    ageMs: HOUR,
  });
  if (!seeded) throw new Error('no item seeded');
  tokens.push(seeded.poolToken);
  const { id, resourceType, poolToken, providerResourceId } = seeded;
  return { id, resourceType, poolToken, providerResourceId };
}

const rowExists = async (id: string) =>
  (await db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [id])).rowCount === 1;

describe('deprovision over the shared redis walk', () => {
  it('heartbeats while the item waits on the walk, then frees and confirms it', async () => {
    const item = await seedFailedRedisItem();
    const env = new MockActivityEnvironment(
      { heartbeatTimeoutMs: 300 },
      { logger: new DefaultLogger('WARN') },
    );
    const beats: unknown[] = [];
    let enoughBeats: () => void = () => {};
    const threeBeats = new Promise<void>((resolve) => {
      enoughBeats = resolve;
    });
    env.on('heartbeat', (details: unknown) => {
      beats.push(details);
      if (beats.length >= 3) enoughBeats();
    });
    // Hold the walk between its freeing cycle and its confirming one until the activity has
    // heartbeaten three times: the test hangs (and times out) if it does not while waiting.
    let held = false;
    const observer: WalkObserver = {
      async onCycle() {
        if (held) return;
        held = true;
        await threeBeats;
      },
    };
    const log = new CapturedLog();
    const registry = createTeardownRegistry({
      postgresClusters: new Map(),
      redisClusters: new Map([['local:0', TEST_REDIS_URL]]),
      concurrency: 2,
      log: log.logger,
      redis: { scanPauseMs: 0, walkObserver: () => observer },
    });
    try {
      const result = await env.run(activitiesWith(registry, log).deprovision, { item });
      expect(result).toMatchObject({ outcome: 'freed', teardown: { confirmedFreed: true } });
      expect(held).toBe(true);
      expect(beats.length).toBeGreaterThanOrEqual(3);
      // What it was waiting on: the walk's confirm, as its progress step.
      expect(beats).toContainEqual({ step: 'confirm' });
      expect(await keysMatching(redis, `${item.poolToken}:*`)).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  it('keeps the row, retryable, when Redis goes away mid-walk', async () => {
    const item = await seedFailedRedisItem();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(TEST_REDIS_URL).port || 6379));
    let release: () => void = () => {};
    const back = new Promise<void>((resolve) => {
      release = resolve;
    });
    let scans = 0;
    const observer: WalkObserver = {
      onScan() {
        if (++scans === 1) {
          void proxy.refuseUntil(back);
          proxy.cutAll();
        }
      },
    };
    const log = new CapturedLog();
    const registry = createTeardownRegistry({
      postgresClusters: new Map(),
      redisClusters: new Map([['local:0', `redis://127.0.0.1:${proxy.port}`]]),
      concurrency: 2,
      log: log.logger,
      redis: { scanCount: 10, scanPauseMs: 0, walkObserver: () => observer, commandTimeoutMs: 3_000 },
    });
    const env = new MockActivityEnvironment(
      { heartbeatTimeoutMs: 3_000 },
      { logger: new DefaultLogger('WARN') },
    );
    try {
      const failure = await env.run(activitiesWith(registry, log).deprovision, { item }).then(
        () => undefined,
        (err: unknown) => err as { nonRetryable?: boolean; type?: string },
      );
      expect(failure).toBeDefined();
      expect(failure?.nonRetryable).toBe(false);
      expect(failure?.type).toBe('ClusterUnreachableError');
      expect(await rowExists(item.id)).toBe(true);
    } finally {
      release();
      await registry.close();
      await proxy.close();
    }
  });
});
