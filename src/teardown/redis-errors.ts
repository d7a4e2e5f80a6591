import { asDriverError, CONNECTION_LOST, describe, type ErrorContext, originOf } from './driver-errors';
import {
  BackendTeardownError,
  ClusterAccessError,
  ClusterUnreachableError,
  TeardownError,
} from './error-classes';

/** Redis reply prefixes (the first word of an error reply). */
const REDIS_ACCESS = new Set(['NOPERM', 'NOAUTH', 'WRONGPASS']);
const REDIS_UNREACHABLE = new Set(['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN']);

/** Maps an ioredis error (reply error, connection loss, timeout) to a typed teardown error. */
export function classifyRedisError(err: unknown, context: ErrorContext): TeardownError {
  if (err instanceof TeardownError) return err;
  const origin = originOf(err);
  const partial = { partial: context.partial };
  switch (origin.kind) {
    case 'reply': {
      const message = describe(err, context, origin.prefix);
      const options = { ...partial, code: origin.prefix };
      if (REDIS_ACCESS.has(origin.prefix)) return new ClusterAccessError(message, options);
      if (REDIS_UNREACHABLE.has(origin.prefix)) return new ClusterUnreachableError(message, options);
      return new BackendTeardownError(message, options);
    }
    case 'system':
      return new ClusterUnreachableError(describe(err, context, origin.code), {
        ...partial,
        code: origin.code,
      });
    case 'tls':
      return new ClusterAccessError(describe(err, context, origin.code), { ...partial, code: origin.code });
    default: {
      const e = asDriverError(err);
      const message = describe(err, context, undefined);
      if (e.name === 'MaxRetriesPerRequestError' || CONNECTION_LOST.test(String(e.message ?? ''))) {
        return new ClusterUnreachableError(message, partial);
      }
      return new BackendTeardownError(message, partial);
    }
  }
}
