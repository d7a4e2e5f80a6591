import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { findTemporalCli } from '../../src/dev/temporal-cli';
import { type DevServer, startDevServer } from '../../src/dev/temporal-server';
import type { Logger } from '../../src/logger';
import { createMetrics } from '../../src/metrics';
import type { PoolStore } from '../../src/store/pool-store';
import { createTeardownRegistry } from '../../src/teardown';

/** Core's Prometheus exporter for the bench process (one runtime per process). */
export const SDK_METRICS_PORT = Number(
  process.env['BENCH_SDK_METRICS_PORT'] ?? 19_000 + (process.pid % 1000),
);
const EAGER = process.env['BENCH_EAGER'] !== '0';

let runtimeInstalled = false;

async function installRuntime(): Promise<void> {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const { Runtime, DefaultLogger } = await import('@temporalio/worker');
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${SDK_METRICS_PORT}` } } },
  });
}

/**
 * Extra worker options for a lever's measurement, as JSON in BENCH_WORKER_OPTIONS, e.g.
 * `{"maxCachedWorkflows":10,"reuseV8Context":false}`: the same run, one option changed.
 */
export function benchWorkerOptions(): Partial<WorkerOptions> {
  const raw = process.env['BENCH_WORKER_OPTIONS'];
  return raw ? (JSON.parse(raw) as Partial<WorkerOptions>) : {};
}

export interface BenchWorkerSetup {
  readonly store: PoolStore;
  readonly postgresClusters: ReadonlyMap<string, string>;
  readonly redisClusters: ReadonlyMap<string, string>;
  readonly concurrency: number;
  readonly batchLimit: number;
  readonly log: Logger;
  /** Each teardown waits this long first (inside its row lock, as a real drop would): a drop's latency without a backend. */
  readonly teardownDelayMs?: number;
}

export interface TemporalBench {
  readonly client: Client;
  readonly taskQueue: string;
  readonly server: DevServer;
}

/** A dev server and one in-process worker with the production activities, for `fn`'s time. */
export async function withTemporalWorker<T>(
  setup: BenchWorkerSetup,
  fn: (bench: TemporalBench) => Promise<T>,
): Promise<T> {
  await installRuntime();
  const { NativeConnection, Worker } = await import('@temporalio/worker');
  const { Client, Connection } = await import('@temporalio/client');
  const server = await startDevServer({
    cliPath: await findTemporalCli(),
    uiPort: false,
    // BENCH_EAGER=0 measures a server without eager activity dispatch (the server's default).
    dynamicConfig: { 'system.enableActivityEagerExecution': EAGER },
  });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const registry = createTeardownRegistry({
    postgresClusters: new Map(setup.postgresClusters),
    redisClusters: new Map(setup.redisClusters),
    concurrency: setup.concurrency,
    log: setup.log,
  });
  const taskQueue = `bench-${Date.now()}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../../workflows'),
    activities: createActivities({
      store: setup.store,
      teardown: setup.teardownDelayMs
        ? {
            ...registry,
            teardown: async (item, options) => {
              await new Promise((resolve) => setTimeout(resolve, setup.teardownDelayMs));
              return registry.teardown(item, options);
            },
          }
        : registry,
      settings: {
        failedGraceMs: 600_000,
        stuckAssignedGraceMs: 1_800_000,
        batchLimit: setup.batchLimit,
        quarantineAfter: 3,
      },
      metrics: createMetrics(undefined, { defaultMetrics: false }),
      log: setup.log,
    }),
    // As src/worker.ts sets it.
    maxConcurrentActivityTaskExecutions: setup.concurrency * 2 + 4,
    stickyQueueScheduleToStartTimeout: '5 seconds',
    ...benchWorkerOptions(),
  });
  try {
    return await worker.runUntil(() => fn({ client, taskQueue, server }));
  } finally {
    await registry.close();
    await connection.close();
    await nativeConnection.close();
    await server.stop();
  }
}

export interface HistoryStats {
  readonly events: number;
  readonly bytes: number;
}

/** Events and encoded size of a workflow's history. */
export async function historyStats(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<HistoryStats> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const bytes = temporal.api.history.v1.History.encode(
    temporal.api.history.v1.History.fromObject(history),
  ).finish().length;
  return { events: history.events?.length ?? 0, bytes };
}
