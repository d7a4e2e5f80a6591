import { Writable } from 'node:stream';
import type { WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import {
  type ActivitySettings,
  createActivities,
  type PlatformLookup,
  type Teardown,
} from '../../activities';
import { DEFAULT_CLUSTER } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';
import { createMetrics, type ReaperMetrics } from '../../src/metrics';
import { PlatformStore } from '../../src/platform/platform-store';
import type { PassSummary, ReapPassOptions } from '../../src/shared/types';
import { PoolStore } from '../../src/store/pool-store';
import { createTeardownRegistry } from '../../src/teardown';
import { snapshotReader } from '../../src/worker';
import { reapPass } from '../../workflows/reap-pass';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from './env';
import { createTestDatabase, type TestDatabase } from './postgres';
import { connectTestTemporal, createTestWorker, type TestTemporal, testTaskQueue } from './temporal';

/** Captures the JSON log stream so tests can read audit events. */
export class CapturedLog {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  readonly logger: Logger;
  constructor() {
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        for (const line of chunk.toString().split('\n')) {
          if (line.trim() === '') continue;
          this.raw.push(line);
          try {
            this.lines.push(JSON.parse(line));
          } catch {
            this.lines.push({ unparsed: line });
          }
        }
        done();
      },
    });
    this.logger = createLogger({ level: 'debug' }, sink);
  }
  events(name: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l['event'] === name);
  }
}

export const TEST_SETTINGS: ActivitySettings = {
  failedGraceMs: 10 * 60_000,
  stuckAssignedGraceMs: 30 * 60_000,
  batchLimit: 50,
  quarantineAfter: 3,
};

/** Fast retries so a failing item does not hold a test for a minute. */
export const TEST_PASS_OPTIONS: ReapPassOptions = {
  concurrency: 8,
  recordReapedTokens: true,
  deprovisionRetry: { maximumAttempts: 3, initialIntervalMs: 100, maximumIntervalMs: 200 },
};

export interface ReaperHarness {
  readonly db: TestDatabase;
  readonly store: PoolStore;
  readonly temporal: TestTemporal;
  readonly taskQueue: string;
  readonly metrics: ReaperMetrics;
  readonly log: CapturedLog;
  readonly settings: ActivitySettings;
  /** The activities the harness worker runs (for a second worker on the same queue). */
  readonly activities: ReturnType<typeof createActivities>;
  /** Starts reapPass on this harness's queue and waits for its summary. */
  runPass(options?: Partial<ReapPassOptions>): Promise<{ summary: PassSummary; handle: WorkflowHandle }>;
  /** Runs `fn` (the harness's worker polls for the file's whole lifetime). */
  withWorker<T>(fn: () => Promise<T>): Promise<T>;
  readonly worker: Worker;
  close(): Promise<void>;
}

export interface HarnessOptions {
  settings?: Partial<ActivitySettings>;
  postgresClusters?: ReadonlyMap<string, string>;
  redisClusters?: ReadonlyMap<string, string>;
  /** Wrap or replace the teardown (e.g. to inject faults). */
  teardown?: (real: Teardown) => Teardown;
  /** PLATFORM_DATABASE_URL for the orphan audit; the harness opens and closes a small pool. */
  platformDatabaseUrl?: string;
  /** Wrap the platform lookup (e.g. to write a binding at a chosen moment); needs platformDatabaseUrl. */
  platform?: (real: PlatformLookup) => PlatformLookup;
  concurrency?: number;
  /** A private Temporal server (e.g. one started with dynamic config); the shared one otherwise. */
  temporalAddress?: string;
}

/**
 * A complete reaper for one test file: its own provisioner database, its own task queue,
 * real activities against the local Postgres and Redis, the shared Temporal test server.
 */
export async function createReaperHarness(
  label: string,
  options: HarnessOptions = {},
): Promise<ReaperHarness> {
  const db = await createTestDatabase(label);
  const store = new PoolStore(db.pool);
  const temporal = await connectTestTemporal(options.temporalAddress);
  const taskQueue = testTaskQueue(label);
  const log = new CapturedLog();
  const settings = { ...TEST_SETTINGS, ...options.settings };
  const registry = createTeardownRegistry({
    postgresClusters: options.postgresClusters ?? new Map([[DEFAULT_CLUSTER, TEST_POSTGRES_URL]]),
    redisClusters: options.redisClusters ?? new Map([[DEFAULT_CLUSTER, TEST_REDIS_URL]]),
    concurrency: options.concurrency ?? 8,
    log: log.logger,
  });
  const teardown = options.teardown ? options.teardown(registry) : registry;
  const metrics = createMetrics(snapshotReader(store, settings.failedGraceMs), { defaultMetrics: false });
  const platformStore = options.platformDatabaseUrl
    ? PlatformStore.connect(options.platformDatabaseUrl, { max: 4, log: log.logger })
    : undefined;
  const platform = platformStore && options.platform ? options.platform(platformStore) : platformStore;
  const activities = createActivities({
    store,
    teardown,
    settings,
    metrics,
    log: log.logger,
    ...(platform ? { platform } : {}),
  });
  const worker: Worker = await createTestWorker(temporal, {
    taskQueue,
    activities,
    maxConcurrentActivityTaskExecutions: 40,
  });

  // One worker for the file's lifetime: a Worker cannot run again once it has stopped.
  const running = worker.run();
  const withWorker = <T>(fn: () => Promise<T>) => fn();

  return {
    db,
    store,
    temporal,
    taskQueue,
    metrics,
    log,
    settings,
    activities,
    withWorker,
    worker,
    async runPass(passOptions = {}) {
      return withWorker(async () => {
        const handle = await temporal.client.workflow.start(reapPass, {
          taskQueue,
          workflowId: `${taskQueue}-pass-${uniqueSuffix()}`,
          args: [{ ...TEST_PASS_OPTIONS, ...passOptions }],
        });
        const summary = await handle.result();
        return { summary, handle };
      });
    },
    async close() {
      // A test may have stopped it already (to hand its workflows to another worker).
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await registry.close();
      await platformStore?.close();
      await temporal.close();
      await db.drop();
    },
  };
}
