import type { Logger } from '../logger';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor } from './audit';
import { UnsupportedResourceTypeError } from './errors';
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
  readonly redis?: Pick<RedisBackendOptions, 'scanCount' | 'commandTimeoutMs' | 'connectTimeoutMs' | 'tlsCa'>;
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
  /**
   * Frees the item's infra and confirms it gone. Resolves only with `confirmedFreed: true`;
   * anything else throws a TeardownError (with `partial` when something was done).
   */
  teardown(item: PoolItemRef, options?: TeardownCallOptions): Promise<TeardownResult>;
  close(): Promise<void>;
}

const MONGODB_REFUSAL =
  'mongodb teardown refused as unsupported until a MongoDB backend can be tested for real';

/** Routes each item to its backend by resource_type. Nothing connects until a teardown needs it. */
export function createTeardownRegistry(options: TeardownRegistryOptions): TeardownRegistry {
  const { log } = options;
  const postgres = createPostgresBackend({
    ...options.postgres,
    clusters: options.postgresClusters,
    concurrency: options.concurrency,
    log,
  });
  const redis = createRedisBackend({ ...options.redis, clusters: options.redisClusters, log });
  const queue = createQueueBackend({
    clusters:
      options.queueClusters ?? new Set([...options.postgresClusters.keys(), ...options.redisClusters.keys()]),
    log,
  });

  function unsupported(item: PoolItemRef, itemLog: Logger = log): UnsupportedResourceTypeError {
    const type = String(item.resourceType);
    const error =
      type === 'mongodb'
        ? new UnsupportedResourceTypeError(type, MONGODB_REFUSAL)
        : new UnsupportedResourceTypeError(
            type,
            `resource type ${JSON.stringify(type.slice(0, 40))} has no teardown backend; refused`,
          );
    auditFor(itemLog, item).refused(error);
    return error;
  }

  return {
    resourceTypes: ['postgres', 'redis', 'queue'],
    preflight(item, callOptions = {}) {
      switch (item.resourceType) {
        case 'postgres':
          postgres.preflight(item, callOptions);
          return;
        case 'redis':
          redis.preflight(item, callOptions);
          return;
        case 'queue':
          queue.preflight(item, callOptions);
          return;
        default:
          throw unsupported(item, callOptions.log);
      }
    },
    async teardown(item, callOptions) {
      switch (item.resourceType) {
        case 'postgres':
          return postgres.teardown(item, callOptions);
        case 'redis':
          return redis.teardown(item, callOptions);
        case 'queue':
          return queue.teardown(item, callOptions);
        default:
          throw unsupported(item, callOptions?.log);
      }
    },
    async close() {
      await Promise.allSettled([postgres.close(), redis.close()]);
    },
  };
}
