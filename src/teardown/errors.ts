import pg from 'pg';
import { type FailureTreatment, treatmentOf } from '../shared/failure-types';
import { scrubSecrets } from '../shared/secrets';
import type { TeardownResult } from '../shared/types';

/**
 * Typed teardown failures. The class name is the failure type Temporal records, so every
 * class sets `name` to its own name; how each type is treated (retried within the pass,
 * counted towards quarantine, scoped to the item or to its whole cluster) is read from the
 * one table in src/shared/failure-types.ts, never restated here.
 *
 * Messages never carry a connection string: driver messages pass through `scrubSecrets`.
 */
export type TeardownErrorCategory = 'transient' | 'operator' | 'cluster';

export interface TeardownErrorOptions {
  /** What this run had done before it failed (e.g. the role still present after a failed database drop). */
  readonly partial?: TeardownResult;
  /** SQLSTATE, Redis reply prefix or Node errno of the underlying failure, when there was one. */
  readonly code?: string;
}

export class TeardownError extends Error {
  override readonly name: string = 'TeardownError';
  readonly partial?: TeardownResult;
  readonly code?: string;

  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message);
    if (options.partial !== undefined) this.partial = options.partial;
    if (options.code !== undefined) this.code = options.code;
  }

  get treatment(): FailureTreatment {
    return treatmentOf(this.name);
  }

  /** Whether repeating the same teardown soon (within the pass) can help. */
  get retryable(): boolean {
    return this.treatment.retry;
  }

  /** `cluster`: the item's whole cluster; `operator`: a person must act on the item; `transient`: retry. */
  get category(): TeardownErrorCategory {
    const t = this.treatment;
    return t.scope === 'cluster' ? 'cluster' : t.quarantine ? 'operator' : 'transient';
  }
}

/** Object in use after the in-activity retries, lock or statement timeouts: this item, soon again. */
export class TransientTeardownError extends TeardownError {
  override readonly name: string = 'TransientTeardownError';
}

/** The item's cluster does not answer: refused, reset, timed out, shutting down, out of connections. */
export class ClusterUnreachableError extends TeardownError {
  override readonly name: string = 'ClusterUnreachableError';
}

/** The item's cluster answers but refuses the reaper: login, privilege, TLS, the admin database. */
export class ClusterAccessError extends TeardownError {
  override readonly name: string = 'ClusterAccessError';
}

/** Where in the guard a name was refused. */
export type RefusalSite = 'token' | 'database_name' | 'role_name' | 'redis_user';

/** The drop guard refused a name before anything was touched. Never retryable. */
export class DropRefusedError extends TeardownError {
  override readonly name: string = 'DropRefusedError';
  constructor(
    readonly site: RefusalSite,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** `mongodb` (no backend that could be tested for real yet) and any type this worker does not know. */
export class UnsupportedResourceTypeError extends TeardownError {
  override readonly name: string = 'UnsupportedResourceTypeError';
  constructor(
    readonly resourceType: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The item names a cluster id with no configured URL: never sent to a default cluster instead.
 * Scoped to the cluster (a replica mid config rollout may lack it), so never quarantining.
 */
export class UnknownClusterError extends TeardownError {
  override readonly name: string = 'UnknownClusterError';
  constructor(
    readonly cluster: string,
    readonly backend: string,
  ) {
    super(
      `no ${backend} URL is configured for cluster ${JSON.stringify(cluster.slice(0, 80))}; ` +
        'refusing to fall back to another cluster',
    );
  }
}

/** `DROP DATABASE ... WITH (FORCE)` blocked by prepared transactions, logical replication slots or subscriptions. */
export class ForceBlockedError extends TeardownError {
  override readonly name: string = 'ForceBlockedError';
}

/** `DROP ROLE` refused because objects or privileges elsewhere still depend on the role (2BP01). */
export class RoleStillReferencedError extends TeardownError {
  override readonly name: string = 'RoleStillReferencedError';
}

/** A server error no rule above recognises: not retried blindly, left for an operator (and the next pass). */
export class BackendTeardownError extends TeardownError {
  override readonly name: string = 'BackendTeardownError';
}

/** The refusals: raised before any connection opens, audited as `provisioner.drop.refused`. */
export function isRefusal(
  err: unknown,
): err is DropRefusedError | UnsupportedResourceTypeError | UnknownClusterError {
  return (
    err instanceof DropRefusedError ||
    err instanceof UnsupportedResourceTypeError ||
    err instanceof UnknownClusterError
  );
}

/** Re-exported: callers inside the teardown and its tests import it from here. */
export { scrubSecrets };

/** What a failing statement was doing, for the message and the partial result. */
export interface ErrorContext {
  /** e.g. drop_database, drop_role, acl_deluser, connect. */
  readonly action: string;
  /** The object acted on, e.g. `db_pool-…`. */
  readonly target: string;
  readonly cluster: string;
  readonly partial?: TeardownResult;
}

interface DriverError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly code?: unknown;
  readonly detail?: unknown;
  readonly errors?: unknown;
  readonly errno?: unknown;
  readonly syscall?: unknown;
}

function asDriverError(err: unknown): DriverError {
  return typeof err === 'object' && err !== null ? (err as DriverError) : { message: String(err) };
}

function describe(err: unknown, context: ErrorContext, code: string | undefined): string {
  const e = asDriverError(err);
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const detail = typeof e.detail === 'string' && e.detail !== '' ? ` (${e.detail})` : '';
  const suffix = code ? ` [${code}]` : '';
  return scrubSecrets(
    `${context.action} ${context.target} on ${context.cluster} failed: ${message}${detail}${suffix}`,
  );
}

/**
 * Where a failure came from decides how it is read, never the shape of its code: `EPIPE` is
 * five capital letters, like a SQLSTATE, but it is a broken socket.
 * - `sql`: the server answered with an ErrorResponse (pg's DatabaseError: `code` is a SQLSTATE).
 * - `reply`: Redis answered with an error reply (ioredis's ReplyError: the first word is the code).
 * - `system`: Node's own error for a socket, DNS or timer (`errno`/`syscall`, `code` like ECONNRESET),
 *   possibly wrapped in the AggregateError of a happy-eyeballs connect.
 * - `tls`: the TLS handshake or certificate check failed (Node's `ERR_TLS_*`, OpenSSL's `CERT_*`…).
 * - `other`: anything else (a driver's own message, a bug).
 */
type Origin =
  | { readonly kind: 'sql'; readonly sqlState: string }
  | { readonly kind: 'reply'; readonly prefix: string }
  | { readonly kind: 'system'; readonly code: string }
  | { readonly kind: 'tls'; readonly code: string }
  | { readonly kind: 'other' };

/** OpenSSL verification codes Node puts in `code` (no errno), plus its own ERR_TLS_* / ERR_SSL_*. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;
/** pg's own words when the server will not (or cannot) speak TLS as asked. */
const TLS_MESSAGE = /does not support SSL|SSL connection|self[- ]signed certificate|certificate/i;

function originOf(err: unknown): Origin {
  if (err instanceof pg.DatabaseError && typeof err.code === 'string')
    return { kind: 'sql', sqlState: err.code };
  const e = asDriverError(err);
  if (e.name === 'ReplyError') {
    return { kind: 'reply', prefix: String(e.message ?? '').split(' ', 1)[0] ?? '' };
  }
  if (typeof e.code === 'string' && (typeof e.errno === 'number' || typeof e.syscall === 'string')) {
    return { kind: 'system', code: e.code };
  }
  if (typeof e.code === 'string' && TLS_CODE.test(e.code)) return { kind: 'tls', code: e.code };
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const found = originOf(inner);
      if (found.kind === 'system' || found.kind === 'tls') return found;
    }
  }
  if (TLS_MESSAGE.test(String(e.message ?? ''))) return { kind: 'tls', code: 'TLS' };
  return { kind: 'other' };
}

/**
 * Messages pg and ioredis use for connection loss and client-side timeouts (they attach no
 * code): the cluster stopped answering, whatever the item.
 */
const CONNECTION_LOST =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection is closed|Command timed out|Stream isn't writeable|Reached the max retries per request|socket hang up/i;

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

/** What a teardown knows about one object it looked at. */
export type ObjectState = 'unknown' | 'present' | 'dropped' | 'absent' | 'kept';

/**
 * The running account of one teardown: the result it returns on success and the `partial`
 * it attaches to an error. Objects not yet confirmed absent count as remaining.
 */
export class TeardownLedger {
  private readonly objects = new Map<string, { state: ObjectState; note?: string }>();

  constructor(
    readonly resourceType: string,
    readonly poolToken: string,
    readonly cluster: string,
  ) {}

  set(object: string, state: ObjectState, note?: string): void {
    this.objects.set(object, note === undefined ? { state } : { state, note });
  }

  state(object: string): ObjectState | undefined {
    return this.objects.get(object)?.state;
  }

  result(confirmedFreed: boolean): TeardownResult {
    const pick = (...states: ObjectState[]) =>
      [...this.objects]
        .filter(([, o]) => states.includes(o.state))
        .map(([name, o]) => (o.note === undefined ? name : `${name} (${o.note})`));
    return {
      resourceType: this.resourceType,
      poolToken: this.poolToken,
      cluster: this.cluster,
      dropped: pick('dropped'),
      alreadyGone: pick('absent'),
      remaining: pick('present', 'unknown'),
      kept: pick('kept'),
      confirmedFreed,
    };
  }
}
