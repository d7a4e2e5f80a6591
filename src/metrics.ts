import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ownEntries } from './shared/keyed';
import { PASS_FAILURE_REASONS, type PassSummary, PLATFORM_CHECK_FAILURE_REASONS } from './shared/types';
import type { BacklogRow } from './store/pool-store';
import type { WalkObserver } from './teardown';

/**
 * What every replica exports from the shared database at scrape time, so no replica keeps
 * exporting a value that another one has since replaced: the gauges are read, not remembered.
 */
export interface SharedSnapshot {
  readonly stuckAssigned: Readonly<Record<string, number>> | undefined;
  /** Stale failed items per type and cluster (the backlog), with the age of the oldest. */
  readonly backlog?: readonly BacklogRow[];
  /** Clusters marked down (their items wait for retry_at, then a probe). */
  readonly clustersDown?: readonly { readonly resourceType: string; readonly cluster: string }[];
  /** The ticker's pause as mirrored by the ticker, or the Schedule's; undefined when not known. */
  readonly paused?: boolean;
  readonly assignedItems?: Readonly<Record<string, Readonly<Record<string, number>>>> | undefined;
  readonly quarantined: Readonly<Record<string, number>>;
  readonly lastPassCompletedAt: Date | undefined;
}

export type SnapshotReader = () => Promise<SharedSnapshot>;

export const METRIC_NAMES = {
  reapTotal: 'instant_pool_reap_total',
  stuckAssigned: 'instant_pool_stuck_assigned',
  assignedItems: 'instant_pool_assigned_items',
  quarantined: 'instant_pool_quarantined_items',
  passDuration: 'instant_pool_reap_pass_duration_seconds',
  lastPassCompleted: 'instant_pool_reap_last_pass_completed_timestamp_seconds',
  stateReadErrors: 'instant_pool_reaper_state_read_errors_total',
  platformCheckFailures: 'instant_pool_platform_check_failures_total',
  passFailures: 'instant_pool_reap_pass_failures_total',
  clusterErrors: 'instant_pool_cluster_errors_total',
  clusterDown: 'instant_pool_cluster_down',
  staleFailed: 'instant_pool_stale_failed_items',
  staleFailedOldest: 'instant_pool_stale_failed_oldest_age_seconds',
  paused: 'instant_pool_reaper_paused',
  tick: 'instant_pool_reaper_tick_seconds',
  redisScanSteps: 'instant_pool_redis_scan_steps_total',
  redisScanKeys: 'instant_pool_redis_scan_keys_total',
  redisWalkIterations: 'instant_pool_redis_walk_iterations_total',
  /** Registered by src/build-info.ts. */
  buildInfo: 'instant_pool_reaper_build_info',
} as const;

export interface ReaperMetrics {
  readonly registry: Registry;
  readonly reapTotal: Counter<'resource_type' | 'status' | 'outcome'>;
  readonly passDuration: Histogram;
  readonly platformCheckFailures: Counter<'reason'>;
  readonly passFailures: Counter<'reason'>;
  readonly clusterErrors: Counter<'resource_type' | 'cluster' | 'error_type'>;
  /** Counts a finished pass's outcomes and duration (called once per pass, by one activity). */
  recordPass(summary: PassSummary): void;
  /** Counts the SCAN steps, keys and full iterations of a Redis cluster's keyspace walks. */
  redisWalkObserver(cluster: string): WalkObserver;
}

export interface MetricsOptions {
  readonly defaultMetrics?: boolean;
  /** REAPER_TICK, exported so that alerts can scale with it. */
  readonly tickMs?: number;
}

/**
 * Long on purpose (about 240 lines): one declaration per metric, each with its help text and
 * labels, read top to bottom as the metrics' own reference; splitting it would scatter them.
 */
export function createMetrics(readSnapshot?: SnapshotReader, options: MetricsOptions = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'pool_reaper_' });

  const stateReadErrors = new Counter({
    name: METRIC_NAMES.stateReadErrors,
    help: 'Scrapes that could not read the shared reaper state from the provisioner database.',
    registers: [registry],
  });

  // One read per scrape: the registry collects all gauges at once, and they share the read
  // in flight. Nothing is kept after it, so the next scrape always reads afresh.
  let pending: Promise<SharedSnapshot | undefined> | undefined;
  const read = async () => {
    try {
      return readSnapshot ? await readSnapshot() : undefined;
    } catch {
      stateReadErrors.inc();
      return undefined;
    }
  };
  const snapshot = () => {
    pending ??= read().finally(() => {
      pending = undefined;
    });
    return pending;
  };

  const reapTotal = new Counter({
    name: METRIC_NAMES.reapTotal,
    help: 'Pool items handled by the reaper, by resource type, row status and outcome.',
    labelNames: ['resource_type', 'status', 'outcome'] as const,
    registers: [registry],
  });

  new Gauge({
    name: METRIC_NAMES.stuckAssigned,
    help:
      'Assigned pool items older than the stuck grace (orphans only when the platform database is configured; ' +
      'no series while the platform check fails).',
    labelNames: ['resource_type'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await snapshot();
      // No entry, no series: while the platform check fails, orphans are not known.
      for (const [type, n] of ownEntries(snap?.stuckAssigned)) this.set({ resource_type: type }, n);
    },
  });

  new Gauge({
    name: METRIC_NAMES.assignedItems,
    help:
      'Assigned pool items older than the stuck grace, by class (bound_live, bound_terminal, orphan; ' +
      'unknown while the platform check fails). Only exported when a platform database is configured.',
    labelNames: ['resource_type', 'class'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await snapshot();
      for (const [type, classes] of ownEntries(snap?.assignedItems)) {
        for (const [cls, n] of ownEntries(classes)) this.set({ resource_type: type, class: cls }, n);
      }
    },
  });

  new Gauge({
    name: METRIC_NAMES.quarantined,
    help: 'Failed pool items left out of reap passes after repeated needs-an-operator failures.',
    labelNames: ['resource_type'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await snapshot();
      for (const [type, n] of ownEntries(snap?.quarantined)) this.set({ resource_type: type }, n);
    },
  });

  new Gauge({
    name: METRIC_NAMES.lastPassCompleted,
    help: 'Unix time at which the last reap pass (by any replica) completed.',
    registers: [registry],
    async collect() {
      this.reset();
      const at = (await snapshot())?.lastPassCompletedAt;
      if (at) this.set(at.getTime() / 1000);
    },
  });

  const passDuration = new Histogram({
    name: METRIC_NAMES.passDuration,
    help: 'Wall time of completed reap passes.',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers: [registry],
  });

  const platformCheckFailures = new Counter({
    name: METRIC_NAMES.platformCheckFailures,
    help: 'Stuck-assigned classifications that failed closed (platform database unreadable or implausible).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  // Every reason from 0: the first failure after a start is then an increase that
  // PoolPlatformCheckFailing sees, not the first sample of a new series.
  for (const reason of PLATFORM_CHECK_FAILURE_REASONS) platformCheckFailures.inc({ reason }, 0);

  const passFailures = new Counter({
    name: METRIC_NAMES.passFailures,
    help:
      'Reap passes that ended without doing their work: failed, timed out, terminated or cancelled ' +
      'workflows, or passes that could not list (the ticker goes on either way).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of PASS_FAILURE_REASONS) passFailures.inc({ reason }, 0);

  const clusterErrors = new Counter({
    name: METRIC_NAMES.clusterErrors,
    help:
      'Teardown attempts that failed for a reason of the whole cluster (unreachable, credentials, ' +
      "privileges, TLS, not configured): never an item's fault, never quarantining.",
    labelNames: ['resource_type', 'cluster', 'error_type'] as const,
    registers: [registry],
  });

  new Gauge({
    name: METRIC_NAMES.clusterDown,
    help: 'Clusters marked down after cluster-scoped failures: their items wait, then one item probes.',
    labelNames: ['resource_type', 'cluster'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const c of (await snapshot())?.clustersDown ?? []) {
        this.set({ resource_type: c.resourceType, cluster: c.cluster }, 1);
      }
    },
  });

  new Gauge({
    name: METRIC_NAMES.staleFailed,
    help: 'Failed pool items past the failed grace, waiting to be reaped (the leak backlog).',
    labelNames: ['resource_type', 'cluster'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of (await snapshot())?.backlog ?? []) {
        this.set({ resource_type: b.resourceType, cluster: b.cluster }, b.items);
      }
    },
  });

  new Gauge({
    name: METRIC_NAMES.staleFailedOldest,
    help: 'Age of the oldest failed pool item past the failed grace, per type and cluster.',
    labelNames: ['resource_type', 'cluster'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const b of (await snapshot())?.backlog ?? []) {
        this.set({ resource_type: b.resourceType, cluster: b.cluster }, b.oldestAgeSeconds);
      }
    },
  });

  new Gauge({
    name: METRIC_NAMES.paused,
    help:
      '1 while an operator has paused the reaper (the ticker as it last recorded it, or the ' +
      'Schedule with REAPER_TRIGGER=schedule), else 0.',
    registers: [registry],
    async collect() {
      this.reset();
      const paused = (await snapshot())?.paused;
      if (paused !== undefined) this.set(paused ? 1 : 0);
    },
  });

  if (options.tickMs !== undefined) {
    new Gauge({
      name: METRIC_NAMES.tick,
      help: 'REAPER_TICK of this replica, in seconds: the longest a healthy ticker waits between passes.',
      registers: [registry],
    }).set(options.tickMs / 1000);
  }

  // What the reaper costs each customer Redis: a walk's SCAN steps and the keys they return
  // grow with the cluster's whole keyspace, not with the keys freed (docs/performance.md).
  const redisScanSteps = new Counter({
    name: METRIC_NAMES.redisScanSteps,
    help: "SCAN commands the reaper's keyspace walks sent, per Redis cluster.",
    labelNames: ['cluster'] as const,
    registers: [registry],
  });
  const redisScanKeys = new Counter({
    name: METRIC_NAMES.redisScanKeys,
    help:
      "Keys those SCAN commands returned, per Redis cluster: those matching the waiting items' " +
      'common prefix (MATCH), or every key walked when their tokens share none.',
    labelNames: ['cluster'] as const,
    registers: [registry],
  });
  const redisWalkIterations = new Counter({
    name: METRIC_NAMES.redisWalkIterations,
    help: "Full keyspace iterations (the cursor back at 0) of the reaper's walks, per Redis cluster.",
    labelNames: ['cluster'] as const,
    registers: [registry],
  });

  const metrics: ReaperMetrics = {
    registry,
    reapTotal,
    passDuration,
    platformCheckFailures,
    passFailures,
    clusterErrors,
    recordPass(summary) {
      for (const { resourceType, outcome, count } of summary.outcomes) {
        reapTotal.inc({ resource_type: resourceType, status: 'failed', outcome }, count);
      }
      // Reclaimed (or attempted) orphans: rows that were `assigned`.
      for (const { resourceType, outcome, count } of summary.orphanReclaim?.outcomes ?? []) {
        reapTotal.inc({ resource_type: resourceType, status: 'assigned', outcome }, count);
      }
      passDuration.observe(summary.durationMs / 1000);
    },
    redisWalkObserver(cluster) {
      return {
        onScan: (step) => {
          redisScanSteps.inc({ cluster });
          redisScanKeys.inc({ cluster }, step.returned);
        },
        onCycle: () => {
          redisWalkIterations.inc({ cluster });
        },
      };
    },
  };
  return metrics;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Further GET paths on the metrics port (/healthz, /readyz): a status and a JSON body. */
export type ExtraRoutes = Readonly<
  Record<string, () => Promise<{ status: number; body: Readonly<Record<string, unknown>> }>>
>;

/** GET /metrics in Prometheus text format, GET of an extra route; anything else is a 404. */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = '0.0.0.0',
  routes: ExtraRoutes = {},
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const route = Object.hasOwn(routes, (req.url ?? '').split('?')[0] ?? '')
      ? routes[(req.url ?? '').split('?')[0] ?? '']
      : undefined;
    if (req.method === 'GET' && route) {
      route().then(
        ({ status, body }) =>
          res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`),
        (err: Error) => res.writeHead(503).end(`${JSON.stringify({ ok: false, error: err.message })}\n`),
      );
      return;
    }
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: Error) => res.writeHead(500).end(`metrics collection failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`METRICS_PORT: port ${port} is already in use (another worker on this host?)`)
          : err,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
