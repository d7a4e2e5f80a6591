import { readFileSync } from 'node:fs';
import ms from 'ms';
import { z } from 'zod';
import { ConfigError } from './config/config-error';
import { withPostgresTls } from './config/postgres-tls';
import { resolveSecretFiles } from './config/secrets-from-files';
import { DEFAULT_CLUSTER } from './shared/clusters';
import { BATCH_LIMIT_RANGE, CONCURRENCY_RANGE, TICKER_DURATION } from './shared/settings-rules';

/**
 * The reaper's own settings, read once from the environment and validated before anything
 * connects. Temporal's connection settings are not here: they follow Temporal's own
 * conventions through @temporalio/envconfig (see temporal-connection.ts).
 */
export interface ReaperConfig {
  readonly taskQueue: string;
  readonly tickerWorkflowId: string;
  /** What starts passes: the ticker workflow, or a Temporal Schedule (docs/triggers.md). */
  readonly trigger: 'ticker' | 'schedule';
  readonly provisionerDatabaseUrl: string;
  /** The role `migrate` connects as (MIGRATE_DATABASE_URL), when it is not the worker's. */
  readonly migrateDatabaseUrl: string | undefined;
  /** Admin URL per Postgres cluster id (`local:0` is POSTGRES_ADMIN_URL). */
  readonly postgresClusters: ReadonlyMap<string, string>;
  /** Redis URL per cluster id (`local:0` is REDIS_URL). */
  readonly redisClusters: ReadonlyMap<string, string>;
  /** PEM of the CA that signs the Redis servers' certificates (REDIS_TLS_CA_FILE), for rediss:// URLs. */
  readonly redisTlsCa: string | undefined;
  /** SCAN COUNT of the shared Redis keyspace walk (REAPER_REDIS_SCAN_COUNT). */
  readonly redisScanCount: number;
  /** Pause after each SCAN step of the walk (REAPER_REDIS_SCAN_PAUSE): bounds the reaper's share of Redis. */
  readonly redisScanPauseMs: number;
  readonly platformDatabaseUrl: string | undefined;
  readonly metricsPort: number;
  readonly temporalMetricsPort: number | undefined;
  readonly tickMs: number;
  readonly failedGraceMs: number;
  readonly stuckAssignedGraceMs: number;
  readonly batchLimit: number;
  readonly concurrency: number;
  /** Teardowns at once on one cluster; at most `concurrency`. */
  readonly clusterConcurrency: number;
  /** Redis teardowns at once on one Redis cluster (they share one keyspace walk). */
  readonly redisClusterConcurrency: number;
  /** A pass running longer is ended by Temporal and counted as timed out. */
  readonly passTimeoutMs: number;
  /** REAPER_PASS_SHARDS: reap passes per tick, each over one shard of the clusters (1: one pass). */
  readonly passShards: number;
  readonly quarantineAfter: number;
  readonly reclaimOrphans: boolean;
  readonly orphanGraceMs: number;
  readonly shutdownGraceMs: number;
  /** How long `worker` start-up waits for the provisioner database before it exits. */
  readonly startupTimeoutMs: number;
  /** Temporal unreachable this long ends the worker (exit 8) so that its supervisor restarts it. */
  readonly temporalLossLimitMs: number;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** REAPER_DRY_RUN: passes plan each item and touch nothing (docs/plan-and-dry-run.md). */
  readonly dryRun: boolean;
  /** TEMPORAL_UI_URL: the Web UI the CLI and log lines link passes to. */
  readonly temporalUiUrl: string;
}

// In a module of its own so that src/config/* can raise it without an import cycle.
export { ConfigError } from './config/config-error';

export { clusterOf, DEFAULT_CLUSTER } from './shared/clusters';

/** Every variable the reaper reads, with its default; the README table and compose test use it. */
export const ENV_DEFAULTS = {
  TEMPORAL_TASK_QUEUE: 'pool-reaper',
  REAPER_WORKFLOW_ID: 'pool-reaper',
  REAPER_TRIGGER: 'ticker',
  PROVISIONER_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/pool_provisioner',
  MIGRATE_DATABASE_URL: '',
  POSTGRES_ADMIN_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
  POSTGRES_ADMIN_URLS: '',
  REDIS_URL: 'redis://127.0.0.1:6379',
  REDIS_URLS: '',
  REDIS_TLS_CA_FILE: '',
  REAPER_REDIS_SCAN_COUNT: '1000',
  REAPER_REDIS_SCAN_PAUSE: '1ms',
  PLATFORM_DATABASE_URL: '',
  METRICS_PORT: '9464',
  TEMPORAL_METRICS_PORT: '',
  REAPER_TICK: '30s',
  REAPER_FAILED_GRACE: '10m',
  REAPER_STUCK_ASSIGNED_GRACE: '30m',
  REAPER_BATCH_LIMIT: '50',
  REAPER_CONCURRENCY: '8',
  REAPER_CLUSTER_CONCURRENCY: '4',
  REAPER_REDIS_CLUSTER_CONCURRENCY: '64',
  REAPER_PASS_TIMEOUT: '1h',
  REAPER_PASS_SHARDS: '1',
  REAPER_QUARANTINE_AFTER: '3',
  REAPER_RECLAIM_ORPHANS: 'false',
  REAPER_ORPHAN_GRACE: '24h',
  REAPER_SHUTDOWN_GRACE: '30s',
  REAPER_STARTUP_TIMEOUT: '30s',
  REAPER_TEMPORAL_LOSS_LIMIT: '2m',
  LOG_LEVEL: 'info',
  REAPER_DRY_RUN: 'false',
  TEMPORAL_UI_URL: 'http://localhost:8233',
} as const;

export type EnvName = keyof typeof ENV_DEFAULTS;
type Env = Readonly<Record<string, string | undefined>>;

const CLUSTER_ID = /^local:\d+$/;

function read(env: Env, name: EnvName): string {
  const value = env[name];
  return value === undefined || value.trim() === '' ? ENV_DEFAULTS[name] : value.trim();
}

export function parseDuration(name: string, raw: string): number {
  // `ms` accepts bare numbers as milliseconds; require a unit so "30" is not read as 30 ms.
  const parsed = /[a-z]\s*$/i.test(raw) ? ms(raw as ms.StringValue) : undefined;
  if (parsed === undefined || !Number.isFinite(parsed) || parsed <= 0) {
    throw new ConfigError(name, `a positive duration such as 30s, 10m or 1h, got "${raw}"`);
  }
  return parsed;
}

/** A pause: `0` or a duration with a unit, at most 1s. */
function parsePause(name: string, raw: string): number {
  if (/^0+(ms|s)?$/.test(raw.trim())) return 0;
  const parsed = parseDuration(name, raw);
  if (parsed > 1_000) throw new ConfigError(name, `at most 1s, got "${raw}"`);
  return parsed;
}

/**
 * A duration the ticker carries: held to the same rule as the `configure` payload
 * (TICKER_DURATION in src/shared/settings-rules.ts, at most 365 days).
 */
function parseTickerDuration(name: string, raw: string): number {
  const parsed = parseDuration(name, raw);
  if (!TICKER_DURATION.test(parsed)) {
    throw new ConfigError(name, `a positive duration of at most 365d, got "${raw}"`);
  }
  return parsed;
}

function parseInteger(name: string, raw: string, min: number, max: number): number {
  const result = z.coerce.number().int().min(min).max(max).safeParse(raw);
  if (!/^\d+$/.test(raw) || !result.success) {
    throw new ConfigError(name, `an integer from ${min} to ${max}, got "${raw}"`);
  }
  return result.data;
}

function parseBoolean(name: string, raw: string): boolean {
  const value = raw.toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(name, `true or false, got "${raw}"`);
}

/** Validates a URL without ever echoing it: it may carry a password. */
function parseUrl(name: string, raw: string, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `a ${protocols.join(' or ')} URL (the value did not parse as a URL)`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `a ${protocols.join(' or ')} URL, got a ${url.protocol} URL`);
  }
  return raw;
}

/** `local:1=postgres://...,local:2=postgres://...` → map; the default cluster comes from its own var. */
function parseClusterList(
  name: string,
  raw: string,
  defaultUrl: string,
  protocols: readonly string[],
): Map<string, string> {
  const clusters = new Map<string, string>([[DEFAULT_CLUSTER, defaultUrl]]);
  if (raw === '') return clusters;
  for (const entry of raw.split(',')) {
    const eq = entry.indexOf('=');
    const id = entry.slice(0, eq).trim();
    if (eq < 0 || !CLUSTER_ID.test(id)) {
      throw new ConfigError(name, `comma-separated local:<n>=<url> pairs, got an entry without a cluster id`);
    }
    if (clusters.has(id)) throw new ConfigError(name, `each cluster once, got ${id} twice`);
    clusters.set(id, parseUrl(`${name} (${id})`, entry.slice(eq + 1).trim(), protocols));
  }
  return clusters;
}

/**
 * With reclamation on, a grace is what stands between a just-claimed item (its platform
 * binding is written only after the provisioning call returns) and a DROP: floors that no
 * typo can go under.
 */
export const RECLAIM_FLOORS = { stuckAssignedGraceMs: 5 * 60_000, orphanGraceMs: 3_600_000 } as const;

function checkReclaimGraces(stuckAssignedGraceMs: number, orphanGraceMs: number): void {
  if (stuckAssignedGraceMs < RECLAIM_FLOORS.stuckAssignedGraceMs) {
    throw new ConfigError('REAPER_STUCK_ASSIGNED_GRACE', 'at least 5m while REAPER_RECLAIM_ORPHANS=true');
  }
  if (orphanGraceMs < RECLAIM_FLOORS.orphanGraceMs) {
    throw new ConfigError('REAPER_ORPHAN_GRACE', 'at least 1h while REAPER_RECLAIM_ORPHANS=true');
  }
  if (orphanGraceMs < stuckAssignedGraceMs) {
    throw new ConfigError(
      'REAPER_ORPHAN_GRACE',
      'at least REAPER_STUCK_ASSIGNED_GRACE while REAPER_RECLAIM_ORPHANS=true',
    );
  }
}

function readRedisCa(file: string): string | undefined {
  if (file === '') return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'REDIS_TLS_CA_FILE',
      `a readable PEM file, got ${(err as NodeJS.ErrnoException).code} for ${file}`,
    );
  }
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function loadConfig(rawEnv: Env = process.env): ReaperConfig {
  // <NAME>_FILE first (mounted secrets), so every check below sees one value per variable.
  const env = resolveSecretFiles(rawEnv);
  const pgProtocols = ['postgres:', 'postgresql:'];
  const pgUrl = (variable: string, raw: string) =>
    withPostgresTls(variable, parseUrl(variable, raw, pgProtocols), env);
  const redisProtocols = ['redis:', 'rediss:'];
  const logLevel = read(env, 'LOG_LEVEL');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const temporalMetricsPort = read(env, 'TEMPORAL_METRICS_PORT');
  const platform = read(env, 'PLATFORM_DATABASE_URL');
  const reclaimOrphans = parseBoolean('REAPER_RECLAIM_ORPHANS', read(env, 'REAPER_RECLAIM_ORPHANS'));
  if (reclaimOrphans && platform === '') {
    // Only the platform database can tell an orphan from a customer's item: refuse to start
    // rather than run with a setting that silently does nothing.
    throw new ConfigError('REAPER_RECLAIM_ORPHANS', 'false unless PLATFORM_DATABASE_URL is set, got "true"');
  }
  const name = (n: EnvName) => n;
  const taskQueue = read(env, 'TEMPORAL_TASK_QUEUE');
  const tickerWorkflowId = read(env, 'REAPER_WORKFLOW_ID');
  for (const [variable, value] of [
    [name('TEMPORAL_TASK_QUEUE'), taskQueue],
    [name('REAPER_WORKFLOW_ID'), tickerWorkflowId],
  ] as const) {
    if (!/^[A-Za-z0-9._:/-]{1,200}$/.test(value)) {
      throw new ConfigError(variable, `1-200 characters of [A-Za-z0-9._:/-], got "${value}"`);
    }
  }
  const trigger = read(env, 'REAPER_TRIGGER');
  if (trigger !== 'ticker' && trigger !== 'schedule') {
    throw new ConfigError('REAPER_TRIGGER', `ticker or schedule, got "${trigger}"`);
  }
  // The same ranges as the `configure` payload's (src/shared/settings-rules.ts).
  const { min: minLanes, max: maxLanes } = CONCURRENCY_RANGE;
  const concurrency = parseInteger('REAPER_CONCURRENCY', read(env, 'REAPER_CONCURRENCY'), minLanes, maxLanes);
  const clusterConcurrency = parseInteger(
    'REAPER_CLUSTER_CONCURRENCY',
    read(env, 'REAPER_CLUSTER_CONCURRENCY'),
    minLanes,
    maxLanes,
  );
  const redisClusterConcurrency = parseInteger(
    'REAPER_REDIS_CLUSTER_CONCURRENCY',
    read(env, 'REAPER_REDIS_CLUSTER_CONCURRENCY'),
    minLanes,
    maxLanes,
  );
  const passShards = parseInteger('REAPER_PASS_SHARDS', read(env, 'REAPER_PASS_SHARDS'), 1, 64);
  if (passShards > 1 && trigger === 'schedule') {
    // A Schedule starts one pass per firing; only the ticker starts shard passes.
    throw new ConfigError('REAPER_PASS_SHARDS', `1 with REAPER_TRIGGER=schedule, got "${passShards}"`);
  }
  const stuckAssignedGraceMs = parseDuration(
    'REAPER_STUCK_ASSIGNED_GRACE',
    read(env, 'REAPER_STUCK_ASSIGNED_GRACE'),
  );
  const orphanGraceMs = parseDuration('REAPER_ORPHAN_GRACE', read(env, 'REAPER_ORPHAN_GRACE'));
  if (reclaimOrphans) checkReclaimGraces(stuckAssignedGraceMs, orphanGraceMs);
  return {
    taskQueue,
    tickerWorkflowId,
    trigger,
    provisionerDatabaseUrl: pgUrl('PROVISIONER_DATABASE_URL', read(env, 'PROVISIONER_DATABASE_URL')),
    migrateDatabaseUrl:
      read(env, 'MIGRATE_DATABASE_URL') === ''
        ? undefined
        : pgUrl('MIGRATE_DATABASE_URL', read(env, 'MIGRATE_DATABASE_URL')),
    postgresClusters: new Map(
      [
        ...parseClusterList(
          'POSTGRES_ADMIN_URLS',
          read(env, 'POSTGRES_ADMIN_URLS'),
          pgUrl('POSTGRES_ADMIN_URL', read(env, 'POSTGRES_ADMIN_URL')),
          pgProtocols,
        ),
      ].map(([id, url]) => [id, withPostgresTls(`POSTGRES_ADMIN_URLS (${id})`, url, env)]),
    ),
    redisClusters: parseClusterList(
      'REDIS_URLS',
      read(env, 'REDIS_URLS'),
      parseUrl('REDIS_URL', read(env, 'REDIS_URL'), redisProtocols),
      redisProtocols,
    ),
    redisTlsCa: readRedisCa(read(env, 'REDIS_TLS_CA_FILE')),
    redisScanCount: parseInteger(
      'REAPER_REDIS_SCAN_COUNT',
      read(env, 'REAPER_REDIS_SCAN_COUNT'),
      10,
      100_000,
    ),
    redisScanPauseMs: parsePause('REAPER_REDIS_SCAN_PAUSE', read(env, 'REAPER_REDIS_SCAN_PAUSE')),
    platformDatabaseUrl: platform === '' ? undefined : pgUrl('PLATFORM_DATABASE_URL', platform),
    metricsPort: parseInteger('METRICS_PORT', read(env, 'METRICS_PORT'), 0, 65535),
    temporalMetricsPort:
      temporalMetricsPort === ''
        ? undefined
        : parseInteger('TEMPORAL_METRICS_PORT', temporalMetricsPort, 0, 65535),
    tickMs: parseTickerDuration('REAPER_TICK', read(env, 'REAPER_TICK')),
    failedGraceMs: parseDuration('REAPER_FAILED_GRACE', read(env, 'REAPER_FAILED_GRACE')),
    stuckAssignedGraceMs,
    batchLimit: parseInteger(
      'REAPER_BATCH_LIMIT',
      read(env, 'REAPER_BATCH_LIMIT'),
      BATCH_LIMIT_RANGE.min,
      BATCH_LIMIT_RANGE.max,
    ),
    concurrency,
    // More per cluster than in all would only read as a promise the pass cannot keep.
    clusterConcurrency: Math.min(clusterConcurrency, concurrency),
    redisClusterConcurrency: Math.min(redisClusterConcurrency, concurrency),
    passTimeoutMs: parseTickerDuration('REAPER_PASS_TIMEOUT', read(env, 'REAPER_PASS_TIMEOUT')),
    passShards,
    quarantineAfter: parseInteger('REAPER_QUARANTINE_AFTER', read(env, 'REAPER_QUARANTINE_AFTER'), 1, 1000),
    reclaimOrphans,
    orphanGraceMs,
    shutdownGraceMs: parseDuration('REAPER_SHUTDOWN_GRACE', read(env, 'REAPER_SHUTDOWN_GRACE')),
    startupTimeoutMs: parseDuration('REAPER_STARTUP_TIMEOUT', read(env, 'REAPER_STARTUP_TIMEOUT')),
    temporalLossLimitMs: parseDuration('REAPER_TEMPORAL_LOSS_LIMIT', read(env, 'REAPER_TEMPORAL_LOSS_LIMIT')),
    logLevel: logLevel as ReaperConfig['logLevel'],
    dryRun: parseBoolean('REAPER_DRY_RUN', read(env, 'REAPER_DRY_RUN')),
    temporalUiUrl: parseUrl('TEMPORAL_UI_URL', read(env, 'TEMPORAL_UI_URL'), ['http:', 'https:']).replace(
      /\/+$/,
      '',
    ),
  };
}
