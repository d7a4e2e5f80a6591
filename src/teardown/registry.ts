import type { Logger } from '../logger';
import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor } from './audit';
import type { BackendPlan, GuardDecision, TeardownBackend } from './backend';
import { DropRefusedError, isRefusal, UnknownClusterError, UnsupportedResourceTypeError } from './errors';
import { createPostgresBackend, type PostgresBackendOptions, type TeardownCallOptions } from './postgres';
import { createQueueBackend } from './queue';
import { createRedisBackend, type RedisBackendOptions } from './redis';

export interface TeardownRegistryOptions {
  /** Admin URL per Postgres cluster id (config `postgresClusters`). */
  readonly postgresClusters: ReadonlyMap<string, string>;
  /** Redis URL per cluster id (config `redisClusters`). */
  readonly redisClusters: ReadonlyMap<string, string>;
  /** Teardowns run at once; each Postgres cluster pool holds one connection more. */
  readonly concurrency: number;
  readonly log: Logger;
  /** Optional tuning of the Postgres backend (timeouts, drop retries). */
  readonly postgres?: Pick<PostgresBackendOptions, 'statementTimeoutMs' | 'connectTimeoutMs' | 'dropRetry'>;
  /** Optional tuning of the Redis backend. */
  readonly redis?: Pick<
    RedisBackendOptions,
    'scanCount' | 'scanPauseMs' | 'walkObserver' | 'commandTimeoutMs' | 'connectTimeoutMs' | 'tlsCa'
  >;
  /**
   * Cluster ids a queue (shared NATS) item may name. Default: every id configured for
   * Postgres or Redis (the shared NATS of a cluster sits beside them).
   */
  readonly queueClusters?: ReadonlySet<string>;
}

export interface TeardownRegistry {
  /** The resource types with a backend. */
  readonly resourceTypes: readonly string[];
  /**
   * Pure checks (type, guard, cluster) that throw a refusal before any connection opens;
   * each refusal is audited once as `provisioner.drop.refused`.
   */
  preflight(item: PoolItemRef, options?: Pick<TeardownCallOptions, 'log'>): void;
  /** The same checks as `preflight`, as a value: no audit line, no connection, never throws. */
  decide(item: PoolItemRef): GuardDecision;
  /**
   * What a teardown would do, read-only: the guard's decision and, when it allows the item,
   * every object the teardown would touch with whether it exists now. Writes no audit line
   * and runs no destructive command.
   */
  plan(item: PoolItemRef): Promise<BackendPlan>;
  /** Read-only: true when none of the item's objects exists any more (the guard must allow it). */
  confirm(item: PoolItemRef): Promise<boolean>;
  /**
   * Frees the item's infra and confirms it gone. Resolves only with `confirmedFreed: true`;
   * anything else throws a TeardownError (with `partial` when something was done).
   */
  teardown(item: PoolItemRef, options?: TeardownCallOptions): Promise<TeardownResult>;
  close(): Promise<void>;
}

const MONGODB_REFUSAL =
  'mongodb teardown refused as unsupported until a MongoDB backend can be tested for real';

/**
 * The backends, one line each: resource_type → factory. Adding a backend (say MySQL) is one
 * module implementing TeardownBackend, its test, and one line here.
 */
const BACKENDS: ReadonlyArray<readonly [string, (options: TeardownRegistryOptions) => TeardownBackend]> = [
  [
    'postgres',
    (o) =>
      createPostgresBackend({
        ...o.postgres,
        clusters: o.postgresClusters,
        concurrency: o.concurrency,
        log: o.log,
      }),
  ],
  ['redis', (o) => createRedisBackend({ ...o.redis, clusters: o.redisClusters, log: o.log })],
  [
    'queue',
    (o) =>
      createQueueBackend({
        clusters: o.queueClusters ?? new Set([...o.postgresClusters.keys(), ...o.redisClusters.keys()]),
        log: o.log,
      }),
  ],
];

function unsupportedError(item: PoolItemRef): UnsupportedResourceTypeError {
  const type = String(item.resourceType);
  return type === 'mongodb'
    ? new UnsupportedResourceTypeError(type, MONGODB_REFUSAL)
    : new UnsupportedResourceTypeError(
        type,
        `resource type ${JSON.stringify(type.slice(0, 40))} has no teardown backend; refused`,
      );
}

/** A refusal as a value: the site and rule the audit line would carry. */
export function decisionOf(
  err: DropRefusedError | UnknownClusterError | UnsupportedResourceTypeError,
): GuardDecision {
  if (err instanceof DropRefusedError) {
    return { allowed: false, site: err.site, reason: err.reason, errorType: err.name, message: err.message };
  }
  if (err instanceof UnknownClusterError) {
    return {
      allowed: false,
      site: 'cluster',
      reason: 'unknown_cluster',
      errorType: err.name,
      message: err.message,
    };
  }
  return {
    allowed: false,
    site: 'resource_type',
    reason: 'unsupported',
    errorType: err.name,
    message: err.message,
  };
}

/** Routes each item to its backend by resource_type. Nothing connects until a teardown needs it. */
export function createTeardownRegistry(options: TeardownRegistryOptions): TeardownRegistry {
  const { log } = options;
  // A Map, not an object: the key comes from a row, and `__proto__` must find nothing.
  const backends = new Map(BACKENDS.map(([type, create]) => [type, create(options)] as const));

  /** The item's backend, or the refusal for a type without one. */
  function backendOf(item: PoolItemRef): TeardownBackend {
    const backend = backends.get(String(item.resourceType));
    if (backend === undefined) throw unsupportedError(item);
    return backend;
  }

  function decide(item: PoolItemRef): GuardDecision {
    try {
      return { allowed: true, cluster: backendOf(item).decide(item).cluster };
    } catch (err) {
      if (isRefusal(err)) return decisionOf(err);
      throw err;
    }
  }

  return {
    resourceTypes: [...backends.keys()],
    decide,
    preflight(item, callOptions = {}) {
      try {
        backendOf(item).decide(item);
      } catch (err) {
        if (isRefusal(err)) auditFor(callOptions.log ?? log, item).refused(err);
        throw err;
      }
    },
    async plan(item) {
      const decision = decide(item);
      const cluster = decision.allowed ? decision.cluster : clusterOf(item.providerResourceId);
      if (!decision.allowed) {
        return {
          verdict: decision.site === 'cluster' || decision.site === 'resource_type' ? 'skip' : 'refuse',
          decision,
          cluster,
          objects: [],
        };
      }
      try {
        return { verdict: 'reap', decision, cluster, objects: await backendOf(item).inspect(item) };
      } catch (err) {
        // The cluster did not answer: a teardown would fail transiently and be retried later.
        return {
          verdict: 'skip',
          decision,
          cluster,
          objects: [],
          inspectError: (err as Error).message.split('\n')[0] ?? String(err),
        };
      }
    },
    async confirm(item) {
      const objects = await backendOf(item).inspect(item);
      return objects.every((o) => o.exists === false || o.kept !== undefined);
    },
    async teardown(item, callOptions) {
      let backend: TeardownBackend;
      try {
        backend = backendOf(item);
      } catch (err) {
        if (isRefusal(err)) auditFor(callOptions?.log ?? log, item).refused(err);
        throw err;
      }
      return backend.teardown(item, callOptions);
    },
    async close() {
      await Promise.allSettled([...backends.values()].map((b) => b.close()));
    },
  };
}
