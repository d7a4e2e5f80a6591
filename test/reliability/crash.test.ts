import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import {
  createCanaries,
  createNeighbourKeys,
  dropEventsFrom,
  InvariantChecker,
  type OwnedCanaries,
  removeKeys,
} from '../helpers/invariants';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { createPrng, seedFor } from '../helpers/prng';
import {
  cleanupTokens,
  countStaleFailed,
  FAILED_GRACE_MS,
  type Population,
  type PrivateTemporal,
  passIntervals,
  seedPopulation,
  sleep,
  startPrivateTemporal,
  waitForIdleTicker,
} from '../helpers/reliability-fixtures';
import { recordFigures } from '../helpers/results';
import { SupervisedWorker } from '../helpers/supervised-worker';
import { testTaskQueue } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

/**
 * kill -9 of the worker process at random moments (seeded) while it works through 120 stale
 * failed items in batches of 5: most kills land a few milliseconds after a `provisioner.drop`
 * line, i.e. in the middle of a teardown (between DROP DATABASE and DROP ROLE, between ACL
 * DELUSER and UNLINK, ...), the others at any moment (between passes, in bookkeeping, in a
 * delete). Every incarnation is started again at once; in the end every stale failed item is
 * reaped and nothing else is touched.
 */
const KILLS = 12;
/** How long a drop-triggered kill waits for its provisioner.drop line before the schedule gives up (and says so). */
const DROP_WAIT_MS = 60_000;
const STALE = { postgres: 16, redis: 52, queue: 52 };

describe('crash: kill -9 the worker at random moments', () => {
  let db: TestDatabase;
  let temporal: PrivateTemporal;
  let canaries: OwnedCanaries;
  let neighbours: string[] = [];
  let population: Population | undefined;
  let worker: SupervisedWorker | undefined;
  const taskQueue = testTaskQueue('rel-crash');
  const tickerId = `${taskQueue}-ticker`;

  beforeAll(async () => {
    db = await createTestDatabase('rel_crash');
    // Its own server, with a 2 s default workflow task timeout instead of 10 s: each kill that
    // lands while a workflow task is in flight (most do) then costs seconds, not ten.
    temporal = await startPrivateTemporal({ workflowTaskTimeout: '2s' });
    canaries = await createCanaries();
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
    await temporal?.client.workflow
      .getHandle(tickerId)
      .terminate('test over')
      .catch(() => undefined);
    if (population) await cleanupTokens(population.tokens);
    await removeKeys(neighbours);
    await canaries?.cleanup();
    await db?.drop();
    await temporal?.close();
  });

  it(`reaps ${STALE.postgres + STALE.redis + STALE.queue} stale failed items through ${KILLS} kills, every invariant kept`, async () => {
    const startedAt = Date.now();
    const rng = createPrng(seedFor('crash'));
    population = await seedPopulation(db.pool, {
      stale: STALE,
      keepPerType: 1,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      rng,
    });
    const redisStale = population.stale.filter((i) => i.resourceType === 'redis').map((i) => i.poolToken);
    neighbours = await createNeighbourKeys(redisStale.slice(0, 12));
    const checker = new InvariantChecker({
      pool: db.pool,
      failedGraceMs: FAILED_GRACE_MS,
      canaries: { ...canaries, keys: [...canaries.keys, ...neighbours] },
    });
    const before = await checker.snapshot();
    expect(before.staleFailed).toBe(population.stale.length);

    // Kill triggers: the n-th provisioner.drop line after the trigger was armed.
    let drops = 0;
    let dropWaiter: { at: number; resolve: () => void } | undefined;
    worker = new SupervisedWorker({
      client: temporal.client,
      taskQueue,
      env: {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_TASK_QUEUE: taskQueue,
        REAPER_WORKFLOW_ID: tickerId,
        PROVISIONER_DATABASE_URL: db.url,
        REAPER_TICK: '1s',
        REAPER_BATCH_LIMIT: '5',
        REAPER_CONCURRENCY: '3',
        REAPER_QUARANTINE_AFTER: '100',
      },
      passOptions: {
        deprovisionRetry: { maximumAttempts: 10, initialIntervalMs: 200, maximumIntervalMs: 1000 },
        activityTimeouts: {
          deprovisionHeartbeatMs: 3000,
          deprovisionStartToCloseMs: 60_000,
          deleteStartToCloseMs: 5000,
        },
      },
      onLine: (line) => {
        if (line['event'] !== 'provisioner.drop') return;
        drops++;
        if (dropWaiter && drops >= dropWaiter.at) {
          dropWaiter.resolve();
          dropWaiter = undefined;
        }
      },
    });
    await worker.start();

    const killTimes: number[] = [];
    const plans: string[] = [];
    let midTeardown = 0;
    /** Why the kill schedule ended: all kills done, or the reason it stopped early. */
    let stopReason = `all ${KILLS} kills done`;
    for (let k = 0; k < KILLS; k++) {
      const left = await countStaleFailed(db.pool);
      if (left === 0) {
        stopReason = `stopped after ${k} of ${KILLS} kills: every stale item was already reaped, nothing left to interrupt`;
        break;
      }
      if (rng.chance(0.7)) {
        const n = rng.int(1, 12);
        const delay = rng.int(0, 50);
        const triggered = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), DROP_WAIT_MS);
          dropWaiter = {
            at: drops + n,
            resolve: () => {
              clearTimeout(timer);
              resolve(true);
            },
          };
        });
        if (!triggered) {
          dropWaiter = undefined;
          stopReason =
            `stopped after ${k} of ${KILLS} kills: waited ${DROP_WAIT_MS / 1000} s for provisioner.drop ` +
            `#${drops + n} (${drops} so far, ${await countStaleFailed(db.pool)} stale items left) and none came`;
          break;
        }
        await sleep(delay);
        plans.push(`drop+${n}+${delay}ms`);
        midTeardown++;
      } else {
        const delay = rng.int(200, 2500);
        await sleep(delay);
        plans.push(`${delay}ms`);
      }
      killTimes.push(Date.now());
      await worker.kill9();
      await worker.start();
    }

    await waitFor(
      () => countStaleFailed(db.pool),
      (n) => n === 0,
      { timeoutMs: 300_000, intervalMs: 250, what: 'every stale failed item to be reaped' },
    );
    await waitForIdleTicker(temporal.client, tickerId);
    await worker.stop();

    const report = await checker.check({
      dropEvents: dropEventsFrom(worker.lines),
      temporal: { client: temporal.client, taskQueue },
    });
    const passes = await passIntervals(temporal.client, taskQueue);
    const killedDuringPass = killTimes.filter((t) =>
      passes.some((p) => p.startMs <= t && (p.closeMs === undefined || p.closeMs >= t)),
    ).length;
    recordFigures({
      scenario: 'crash (kill -9)',
      runs: 1,
      items: population.stale.length + population.keep.length,
      faults: `${worker.kills} kill -9 (${midTeardown} a few ms after a provisioner.drop, ${killedDuringPass} during a pass)`,
      wrongfulDrops: report.wrongfulDrops,
      leaks: report.leaks,
      rowsLost: report.rowsLost,
      durationMs: Date.now() - startedAt,
      passes: passes.length,
      reapedPerSummaries: worker.lines
        .filter((l) => l['event'] === 'pool_reaper.pass.completed')
        .reduce((n, l) => n + Number(l['reaped'] ?? 0), 0),
      rowsReaped: report.rowsDeleted,
      objectsDropped: report.objectsDropped,
      historiesChecked: report.history?.workflows,
      stickyResets: worker.stickyResets,
      rescuedBookkeepingActivities: worker.rescuedActivities,
      plans,
      stopReason,
    });

    expect(report.violations).toEqual([]);
    expect(report.staleFailedLeft).toEqual([]);
    expect(worker.crashes).toEqual([]);
    const schedule = `kill schedule: ${stopReason}; plans ${plans.join(', ')}`;
    expect(worker.kills, schedule).toBeGreaterThanOrEqual(10);
    expect(killedDuringPass, `kills that landed during a pass; ${schedule}`).toBeGreaterThanOrEqual(8);
    expect(passes.length, `passes run; ${schedule}`).toBeGreaterThanOrEqual(20);
    expect(report.rowsDeleted).toBe(population.stale.length);
    expect(report.history?.deletes).toBeGreaterThanOrEqual(population.stale.length);
    // Every kept item still has its row and all of its infra.
    for (const item of population.keep) {
      const { rowCount } = await db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [item.id]);
      expect(rowCount).toBe(1);
      const infra = await checker.infraOf(item.poolToken);
      expect(infra.length).toBeGreaterThanOrEqual(item.resourceType === 'postgres' ? 2 : 4);
    }
  }, 600_000);
});
