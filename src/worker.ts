import type { Client } from '@temporalio/client';
import { makeTelemetryFilterString, type NativeConnection, Runtime, Worker } from '@temporalio/worker';
import pg from 'pg';
import { createActivities } from '../activities';
import { workflowSource } from './build/workflow-source';
import { registerBuildInfo } from './build-info';
import { ensureSearchAttributes } from './client';
import type { ReaperConfig } from './config';
import { isTlsFailure, TlsRefusedError } from './config/postgres-tls';
import { createHealth } from './health';
import type { Logger } from './logger';
import { createMetrics, type MetricsServer, type SharedSnapshot, serveMetrics } from './metrics';
import { connectNative } from './native-connection';
import { PlatformStore } from './platform/platform-store';
import { SdkLoggerBridge } from './sdk-logger';
import { errorLine } from './shared/error-line';
import { scrubSecrets } from './shared/secrets';
import { assertSchemaCurrent, SchemaOutdatedError } from './store/migrate';
import { PoolStore } from './store/pool-store';
import { STATE_KEYS, type TickerMirror } from './store/state-keys';
import { createTeardownRegistry } from './teardown';
import { connectClient, type TemporalTarget } from './temporal-connection';
import { ensureTrigger } from './trigger/ensure';
import { schedulePauseReader, startFailureWatch } from './trigger/schedule-watch';
import { ProvisionerUnreachableError, TEMPORAL_LOST_EXIT_CODE, TemporalLostError } from './worker-errors';

/**
 * Reads what every replica exports from the shared database at scrape time. `readPaused`, in
 * schedule mode, reads the Schedule's pause instead of the ticker's mirror.
 */
export function snapshotReader(
  store: PoolStore,
  failedGraceMs: number,
  readPaused?: () => Promise<boolean | undefined>,
): () => Promise<SharedSnapshot> {
  return async () => {
    const [stuck, lastPass, quarantined, backlog, clustersDown, ticker, paused] = await Promise.all([
      store.readState<{ stuck: Record<string, number>; classes?: Record<string, Record<string, number>> }>(
        STATE_KEYS.stuckAssigned,
      ),
      store.readState<{ finishedAt: string }>(STATE_KEYS.lastPass),
      store.countQuarantined(),
      store.backlog(failedGraceMs),
      store.listClustersDown(failedGraceMs),
      readPaused ? undefined : store.readState<TickerMirror>(STATE_KEYS.ticker),
      readPaused?.(),
    ]);
    return {
      stuckAssigned: stuck?.value.stuck,
      assignedItems: stuck?.value.classes,
      quarantined,
      lastPassCompletedAt: lastPass ? new Date(lastPass.value.finishedAt) : undefined,
      backlog,
      clustersDown,
      ...(ticker ? { paused: ticker.value.paused === true } : {}),
      ...(paused !== undefined ? { paused } : {}),
    };
  };
}

/**
 * Waits for the provisioner database with a visible log line per failed attempt, then checks
 * that its schema is current. Both before anything touches Temporal: a worker that cannot
 * reap must not start (or signal) a ticker and look healthy. A database that does not exist
 * is a set-up error, not an outage: reported at once (exit 2), like an unmigrated schema.
 */
export async function checkProvisionerDatabase(
  store: PoolStore,
  log: Logger,
  budgetMs: number,
): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await store.pool.query('SELECT 1');
      break;
    } catch (err) {
      const error = scrubSecrets(String((err as Error).message ?? err).split('\n')[0] ?? '');
      // A certificate that does not verify will not verify on the next attempt either.
      if (isTlsFailure(err)) throw new TlsRefusedError('PROVISIONER_DATABASE_URL', error);
      // The server answered: the database is not there. Waiting will not create it.
      if (err instanceof pg.DatabaseError && err.code === '3D000') {
        throw new SchemaOutdatedError(
          `the provisioner database (PROVISIONER_DATABASE_URL) does not exist (${error}): ` +
            'run `pool-reaper migrate --create-database` first',
        );
      }
      const waitMs = Math.min(5_000, 500 * 2 ** (attempt - 1));
      if (Date.now() + waitMs > deadline) {
        throw new ProvisionerUnreachableError(
          `cannot reach the provisioner database (PROVISIONER_DATABASE_URL) after ${attempt} attempts in ` +
            `${Math.round(budgetMs / 1000)}s: ${error}`,
        );
      }
      log.warn(
        { event: 'pool_reaper.provisioner_db.unreachable', attempt, retryInMs: waitMs, error },
        'provisioner database unreachable at start-up; retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
  await assertSchemaCurrent(store.pool);
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
  // Each concurrent teardown holds one provisioner connection (its row lock) and one admin
  // connection on its cluster; the rest serves listings, deletes and scrapes.
  // REAPER_PASS_SHARDS passes run at once, each with REAPER_CONCURRENCY lanes.
  const lanes = config.concurrency * config.passShards;
  const store = PoolStore.connect(config.provisionerDatabaseUrl, lanes * 2 + 4, (err) =>
    log.warn(
      { event: 'pool_reaper.provisioner_db.connection_lost', error: err.message },
      'idle connection lost; replaced',
    ),
  );
  let client: Client;
  let connection: NativeConnection;
  try {
    await checkProvisionerDatabase(store, log, config.startupTimeoutMs);
    client = await connectClient(target);
    connection = await connectNative(target).catch(async (err: unknown) => {
      await client.connection.close().catch(() => undefined);
      throw err;
    });
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  // Read-only, a few connections: one classification per pass and one re-check per orphan step.
  const platform = config.platformDatabaseUrl
    ? PlatformStore.connect(config.platformDatabaseUrl, { max: 4, log })
    : undefined;
  const scheduleMode = config.trigger === 'schedule';
  const readPaused = scheduleMode ? schedulePauseReader(client, config.tickerWorkflowId) : undefined;
  const metrics = createMetrics(snapshotReader(store, config.failedGraceMs, readPaused), {
    tickMs: config.tickMs,
  });
  registerBuildInfo(metrics.registry);
  const teardown = createTeardownRegistry({
    postgresClusters: config.postgresClusters,
    redisClusters: config.redisClusters,
    concurrency: config.concurrency,
    log,
    redis: {
      scanCount: config.redisScanCount,
      scanPauseMs: config.redisScanPauseMs,
      walkObserver: (cluster) => metrics.redisWalkObserver(cluster),
      ...(config.redisTlsCa !== undefined ? { tlsCa: config.redisTlsCa } : {}),
    },
  });
  let worker: Worker | undefined;
  let temporalLost: TemporalLostError | undefined;
  let failureWatch: { stop(): Promise<void> } | undefined;
  const health = createHealth({
    client,
    db: store.pool,
    workerState: () => worker?.getState() ?? 'INITIALIZED',
    log,
    temporalLossLimitMs: config.temporalLossLimitMs,
    onTemporalLost: (downForMs) => {
      temporalLost = new TemporalLostError(
        `lost Temporal at ${target.address} for ${Math.round(downForMs / 1000)}s ` +
          '(REAPER_TEMPORAL_LOSS_LIMIT): exiting so that the supervisor restarts the worker',
      );
      log.error({ event: 'pool_reaper.temporal.lost', downForMs }, temporalLost.message);
      worker?.shutdown();
      // The SDK's shutdown may itself wait on Temporal: never outlive the grace by much. This
      // path ends the process before the CLI prints its line, so it prints the same one line.
      const lost = temporalLost;
      setTimeout(() => {
        process.stderr.write(`${errorLine(lost.message)}\n`);
        process.exit(TEMPORAL_LOST_EXIT_CODE);
      }, config.shutdownGraceMs + 5_000).unref();
    },
  });
  const metricsServer = await serveMetrics(metrics.registry, config.metricsPort, '0.0.0.0', {
    '/healthz': () => health.live(),
    '/readyz': () => health.ready(),
  });
  const searchAttributes = await ensureSearchAttributes(client, target.namespace, log);

  worker = await Worker.create({
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
        temporalUiUrl: config.temporalUiUrl,
      },
      metrics,
      log,
    }),
    // Activity slots must never be what limits a pass: room for every concurrent teardown,
    // its delete and the bookkeeping activities.
    maxConcurrentActivityTaskExecutions: lanes * 2 + 4,
    shutdownGraceTime: config.shutdownGraceMs,
    // After a crash the server hands a cached workflow's next task to another worker once
    // this passes; 5 s (not 10) keeps a replacement's pickup of a pass within about 10 s.
    stickyQueueScheduleToStartTimeout: '5 seconds',
  });

  const running = worker;

  const done = (async () => {
    try {
      await running.run();
    } finally {
      health.stop();
      await failureWatch?.stop();
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
    if (temporalLost) throw temporalLost;
  })();

  if (options.ensureTicker !== false) {
    // The ticker or the Schedule (REAPER_TRIGGER); the other is retired. Once polling: a
    // switch queries the old ticker and lets its running pass finish, which needs a worker.
    try {
      await ensureTrigger({ client, store, config, recordReapedTokens: searchAttributes, log });
      // No workflow sees a scheduled pass end: the replicas count failed ones (schedule-watch.ts).
      if (scheduleMode) {
        failureWatch = startFailureWatch({
          client,
          store,
          metrics,
          log,
          scheduleId: config.tickerWorkflowId,
        });
      }
    } catch (err) {
      running.shutdown();
      await done.catch(() => undefined);
      throw err;
    }
  }

  return { worker: running, client, metricsServer, done, shutdown: () => running.shutdown() };
}
