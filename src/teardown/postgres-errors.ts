import { asDriverError, CONNECTION_LOST, describe, type ErrorContext, originOf } from './driver-errors';
import {
  BackendTeardownError,
  ClusterAccessError,
  ClusterUnreachableError,
  ForceBlockedError,
  RoleStillReferencedError,
  TeardownError,
  TransientTeardownError,
} from './error-classes';

/** How a Postgres failure (SQLSTATE, socket, TLS, driver message) becomes a typed teardown error. */

/** `FORCE` cannot get past these: an operator must resolve or drop them first. */
const FORCE_BLOCKERS = /prepared transaction|replication slot|subscription/i;

/** SQLSTATEs that say the cluster is not answering right now: connection exceptions, limits, shutdowns. */
function isUnreachableSqlState(code: string): boolean {
  return (
    code.startsWith('08') || // connection_exception
    code.startsWith('53') || // insufficient_resources (too_many_connections, ...)
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' // cannot_connect_now
  );
}

/** SQLSTATEs that say the cluster refuses the reaper itself, for every item alike. */
function isAccessSqlState(code: string, action: string): boolean {
  return (
    code === '28000' || // invalid_authorization_specification (login not permitted)
    code === '28P01' || // invalid_password
    code === '42501' || // insufficient_privilege: the admin role lost (or never had) a right
    (code === '3D000' && action === 'connect') // the admin URL names a database that is not there
  );
}

/** SQLSTATEs worth repeating soon for this item: cancels, serialization, deadlocks, lock waits. */
function isTransientSqlState(code: string): boolean {
  return code === '57014' || code === '40001' || code === '40P01' || code === '55P03';
}

/** True for the plain "object in use" 55006 that `FORCE` may clear on a retry. */
export function isPlainObjectInUse(err: unknown): boolean {
  const origin = originOf(err);
  if (origin.kind !== 'sql' || origin.sqlState !== '55006') return false;
  const e = asDriverError(err);
  const text = `${String(e.message ?? '')} ${String(e.detail ?? '')}`;
  return !FORCE_BLOCKERS.test(text) && !/currently open database/i.test(text);
}

/** True when the server answered with an SQL error: the connection itself is still usable. */
export function isSqlError(err: unknown): boolean {
  return originOf(err).kind === 'sql';
}

function classifySqlState(err: unknown, sqlState: string, context: ErrorContext): TeardownError {
  const e = asDriverError(err);
  const options = { partial: context.partial, code: sqlState };
  const message = describe(err, context, sqlState);
  if (sqlState === '55006') {
    const text = `${String(e.message ?? '')} ${String(e.detail ?? '')}`;
    if (FORCE_BLOCKERS.test(text)) return new ForceBlockedError(message, options);
    // The admin URL itself is connected to the database being dropped: a configuration error.
    if (/currently open database/i.test(text)) return new BackendTeardownError(message, options);
    return new TransientTeardownError(message, options);
  }
  if (sqlState === '2BP01') return new RoleStillReferencedError(message, options);
  if (isAccessSqlState(sqlState, context.action)) return new ClusterAccessError(message, options);
  if (isUnreachableSqlState(sqlState)) return new ClusterUnreachableError(message, options);
  if (isTransientSqlState(sqlState)) return new TransientTeardownError(message, options);
  return new BackendTeardownError(message, options);
}

/** Maps a pg driver error (or anything thrown while talking to Postgres) to a typed teardown error. */
export function classifyPostgresError(err: unknown, context: ErrorContext): TeardownError {
  if (err instanceof TeardownError) return err;
  const origin = originOf(err);
  const partial = { partial: context.partial };
  switch (origin.kind) {
    case 'sql':
      return classifySqlState(err, origin.sqlState, context);
    case 'system':
      return new ClusterUnreachableError(describe(err, context, origin.code), {
        ...partial,
        code: origin.code,
      });
    case 'tls':
      return new ClusterAccessError(describe(err, context, origin.code), { ...partial, code: origin.code });
    default: {
      const message = describe(err, context, undefined);
      if (CONNECTION_LOST.test(String(asDriverError(err).message ?? ''))) {
        return new ClusterUnreachableError(message, partial);
      }
      return new BackendTeardownError(message, partial);
    }
  }
}
