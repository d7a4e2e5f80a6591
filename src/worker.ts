import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { STATE_KEYS } from '../activities/deps';
import { ensureSearchAttributes, ensureTicker, tickerSettingsFrom } from './client';
import type { ReaperConfig } from './config';
import type { Logger } from './logger';
import { createMetrics, type MetricsServer, type SharedSnapshot, serveMetrics } from './metrics';
import { PlatformStore } from './platform/platform-store';
import { SdkLoggerBridge } from './sdk-logger';
import { PoolStore } from './store/pool-store';
import { createTeardownRegistry } from './teardown';
import { connectClient, type TemporalTarget } from './temporal-connection';

/** Reads what every replica exports from the shared database at scrape time. */
export function snapshotReader(store: PoolStore): () => Promise<SharedSnapshot> {
  return async () => {
    const [stuck, lastPass, quarantined] = await Promise.all([
      store.readState<{ stuck: Record<string, number>; classes?: Record<string, Record<string, number>> }>(
        STATE_KEYS.stuckAssigned,
      ),
      store.readState<{ finishedAt: string }>(STATE_KEYS.lastPass),
      store.countQuarantined(),
    ]);
    return {
      stuckAssigned: stuck?.value.stuck,
      assignedItems: stuck?.value.classes,
      quarantined,
      lastPassCompletedAt: lastPass ? new Date(lastPass.value.finishedAt) : undefined,
    };
  };
}

/** The bundle `npm run build` wrote, or the workflow sources when running unbuilt. */
function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  const bundle = path.resolve(__dirname, '..', 'workflow-bundle.js');
  return existsSync(bundle)
    ? { workflowBundle: { codePath: bundle } }
    : { workflowsPath: path.join(__dirname, '..', 'workflows') };
}

let runtimeInstalled = false;

/** Runtime.install may run once per process: SDK logs into our stream, SDK metrics on their own port. */
export function installRuntime(config: ReaperConfig, log: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new SdkLoggerBridge(log.child({ component: 'temporal-sdk' })),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} },
      ...(config.temporalMetricsPort !== undefined
        ? {
            metrics: {
              prometheus: {
                bindAddress: `0.0.0.0:${config.temporalMetricsPort}`,
                useSecondsForDurations: true,
              },
            },
          }
        : {}),
    },
  });
}

export interface RunningWorker {
  readonly worker: Worker;
  readonly client: Client;
  readonly metricsServer: MetricsServer;
  /** Resolves once the worker has stopped (after SIGINT/SIGTERM or shutdown()) and everything is closed. */
  readonly done: Promise<void>;
  shutdown(): void;
}

/**
 * The worker process: connects, serves /metrics, makes sure the ticker runs (idempotent
 * across replicas), and polls until a shutdown signal; in-flight activities get the
 * shutdown grace time to finish, then the pools close.
 */
export async function startWorker(
  config: ReaperConfig,
  target: TemporalTarget,
  log: Logger,
  options: { ensureTicker?: boolean } = {},
): Promise<RunningWorker> {
  installRuntime(config, log);
  const connection = await NativeConnection.connect(target.connectionOptions);
  const client = await connectClient(target);
  // Each concurrent teardown holds one provisioner connection (its row lock) and one admin
  // connection on its cluster; the rest serves listings, deletes and scrapes.
  const store = PoolStore.connect(config.provisionerDatabaseUrl, config.concurrency * 2 + 4, (err) =>
    log.warn(
      { event: 'pool_reaper.provisioner_db.connection_lost', error: err.message },
      'idle connection lost; replaced',
    ),
  );
  const teardown = createTeardownRegistry({
    postgresClusters: config.postgresClusters,
    redisClusters: config.redisClusters,
    concurrency: config.concurrency,
    log,
  });
  // Read-only, a few connections: one classification per pass and one re-check per orphan step.
  const platform = config.platformDatabaseUrl
    ? PlatformStore.connect(config.platformDatabaseUrl, { max: 4, log })
    : undefined;
  const metrics = createMetrics(snapshotReader(store));
  const metricsServer = await serveMetrics(metrics.registry, config.metricsPort);
  const searchAttributes = await ensureSearchAttributes(client, target.namespace, log);

  const worker = await Worker.create({
    connection,
    namespace: target.namespace,
    taskQueue: config.taskQueue,
    ...workflowSource(),
    activities: createActivities({
      store,
      teardown,
      ...(platform ? { platform } : {}),
      settings: {
        failedGraceMs: config.failedGraceMs,
        stuckAssignedGraceMs: config.stuckAssignedGraceMs,
        batchLimit: config.batchLimit,
        quarantineAfter: config.quarantineAfter,
        reclaimOrphans: config.reclaimOrphans,
        orphanGraceMs: config.orphanGraceMs,
      },
      metrics,
      log,
    }),
    // Activity slots must never be what limits a pass: room for every concurrent teardown,
    // its delete and the bookkeeping activities.
    maxConcurrentActivityTaskExecutions: config.concurrency * 2 + 4,
    shutdownGraceTime: config.shutdownGraceMs,
  });

  if (options.ensureTicker !== false) {
    await ensureTicker(client, {
      workflowId: config.tickerWorkflowId,
      taskQueue: config.taskQueue,
      settings: tickerSettingsFrom(config, searchAttributes),
      log,
    });
  }

  const done = (async () => {
    try {
      await worker.run();
    } finally {
      await Promise.allSettled([
        teardown.close(),
        store.close(),
        platform?.close(),
        metricsServer.close(),
        client.connection.close(),
      ]);
      await connection.close().catch(() => undefined);
      log.info({ event: 'pool_reaper.worker.stopped' }, 'worker stopped');
    }
  })();

  return { worker, client, metricsServer, done, shutdown: () => worker.shutdown() };
}
