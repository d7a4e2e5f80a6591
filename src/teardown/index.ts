/** Safe teardown of pool items: guarded, audited, typed errors. Knows nothing of Temporal. */
export { AUDIT_EVENTS, auditFor, auditResourceType, type DropAction, type ItemAudit } from './audit';
export type {
  BackendPlan,
  GuardDecision,
  PlannedObject,
  PlannedObjectKind,
  TeardownBackend,
} from './backend';
export {
  assertDroppableDatabase,
  assertDroppableRole,
  assertSafeToken,
  DATABASE_PREFIXES,
  databaseNameFor,
  LEGACY_REDIS_USER_CHARS,
  type LegacyRedisAlias,
  legacyRedisAliasOf,
  legacyRedisUserFor,
  MAX_NAME_BYTES,
  RESERVED_TOKENS,
  redisUserFor,
  redisUserIsShared,
  roleNameFor,
  SYSTEM_DATABASES,
  SYSTEM_ROLES,
  TOKEN_CHARSET,
  USER_PREFIXES,
} from './drop-guard';
export {
  BackendTeardownError,
  ClusterAccessError,
  ClusterUnreachableError,
  classifyPostgresError,
  classifyRedisError,
  DropRefusedError,
  type ErrorContext,
  ForceBlockedError,
  isPlainObjectInUse,
  isRefusal,
  isSqlError,
  type RefusalSite,
  RoleStillReferencedError,
  scrubSecrets,
  TeardownError,
  type TeardownErrorCategory,
  TransientTeardownError,
  UnknownClusterError,
  UnsupportedResourceTypeError,
} from './errors';
export {
  createPostgresBackend,
  type PostgresBackend,
  type PostgresBackendOptions,
  type PostgresPlan,
  type TeardownCallOptions,
} from './postgres';
export {
  createQueueBackend,
  type QueueBackend,
  type QueueBackendOptions,
  teardownQueueItem,
} from './queue';
export {
  createRedisBackend,
  escapeRedisGlob,
  type RedisBackend,
  type RedisBackendOptions,
  type RedisPlan,
} from './redis';
export type { SweepResult, WalkObserver } from './redis-walker';
export {
  createTeardownRegistry,
  decisionOf,
  type TeardownRegistry,
  type TeardownRegistryOptions,
} from './registry';
