import type { TeardownResult } from '../shared/types';

/**
 * Typed teardown failures. The class name is the failure type Temporal records, so every
 * class sets `name` to its own name; `retryable` says whether repeating the same teardown
 * soon can help (`transient`) or whether a person has to act first (`operator`).
 *
 * Messages never carry a connection string: driver messages pass through `scrubSecrets`.
 */
export type TeardownErrorCategory = 'transient' | 'operator';

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

  constructor(
    message: string,
    readonly retryable: boolean,
    readonly category: TeardownErrorCategory,
    options: TeardownErrorOptions = {},
  ) {
    super(message);
    if (options.partial !== undefined) this.partial = options.partial;
    if (options.code !== undefined) this.code = options.code;
  }
}

/** Connection refused/reset, timeouts, object still in use after the in-activity retries, Redis connection errors. */
export class TransientTeardownError extends TeardownError {
  override readonly name: string = 'TransientTeardownError';
  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message, true, 'transient', options);
  }
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
    super(message, false, 'operator');
  }
}

/** `mongodb` (no backend that could be tested for real yet) and any type this worker does not know. */
export class UnsupportedResourceTypeError extends TeardownError {
  override readonly name: string = 'UnsupportedResourceTypeError';
  constructor(
    readonly resourceType: string,
    message: string,
  ) {
    super(message, false, 'operator');
  }
}

/** The item names a cluster id with no configured URL: never sent to a default cluster instead. */
export class UnknownClusterError extends TeardownError {
  override readonly name: string = 'UnknownClusterError';
  constructor(
    readonly cluster: string,
    readonly backend: string,
  ) {
    super(
      `no ${backend} URL is configured for cluster ${JSON.stringify(cluster.slice(0, 80))}; ` +
        'refusing to fall back to another cluster',
      false,
      'operator',
    );
  }
}

/** `DROP DATABASE ... WITH (FORCE)` blocked by prepared transactions, logical replication slots or subscriptions. */
export class ForceBlockedError extends TeardownError {
  override readonly name: string = 'ForceBlockedError';
  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message, false, 'operator', options);
  }
}

/** The admin credentials lack a privilege (42501), or authentication failed. */
export class TeardownPermissionError extends TeardownError {
  override readonly name: string = 'TeardownPermissionError';
  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message, false, 'operator', options);
  }
}

/** `DROP ROLE` refused because objects or privileges elsewhere still depend on the role (2BP01). */
export class RoleStillReferencedError extends TeardownError {
  override readonly name: string = 'RoleStillReferencedError';
  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message, false, 'operator', options);
  }
}

/** A server error no rule above recognises: not retried blindly, left for an operator (and the next pass). */
export class BackendTeardownError extends TeardownError {
  override readonly name: string = 'BackendTeardownError';
  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message, false, 'operator', options);
  }
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

const MAX_MESSAGE = 400;

/**
 * Removes credentials from free text: `scheme://user:pass@host` loses its user info and
 * libpq-style `password=...` its value. Driver messages can embed the URL they failed on.
 */
export function scrubSecrets(text: string): string {
  const scrubbed = text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@')
    .replace(/(password\s*=\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1[redacted]');
  return scrubbed.length > MAX_MESSAGE ? `${scrubbed.slice(0, MAX_MESSAGE)}…` : scrubbed;
}

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

/** Node socket/DNS errno codes that mean "the network or server was not there right now". */
const TRANSIENT_NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** Messages pg and ioredis use for connection loss and client-side timeouts (no code attached). */
const TRANSIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection is closed|Command timed out|Stream isn't writeable|Reached the max retries per request|socket hang up/i;

function netCode(err: unknown): string | undefined {
  const e = asDriverError(err);
  if (typeof e.code === 'string' && TRANSIENT_NET_CODES.has(e.code)) return e.code;
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const found = netCode(inner);
      if (found) return found;
    }
  }
  return undefined;
}

/** `FORCE` cannot get past these: an operator must resolve or drop them first. */
const FORCE_BLOCKERS = /prepared transaction|replication slot|subscription/i;

/** SQLSTATEs worth repeating soon: connection exceptions, resource limits, shutdowns, cancels, lock waits. */
function isTransientSqlState(code: string): boolean {
  return (
    code.startsWith('08') || // connection_exception
    code.startsWith('53') || // insufficient_resources (too_many_connections, ...)
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now
    code === '57014' || // query_canceled (statement_timeout)
    code === '40001' || // serialization_failure
    code === '40P01' || // deadlock_detected
    code === '55P03' // lock_not_available
  );
}

/** True for the plain "object in use" 55006 that `FORCE` may clear on a retry. */
export function isPlainObjectInUse(err: unknown): boolean {
  const e = asDriverError(err);
  if (e.code !== '55006') return false;
  const text = `${String(e.message ?? '')} ${String(e.detail ?? '')}`;
  return !FORCE_BLOCKERS.test(text) && !/currently open database/i.test(text);
}

/** Maps a pg driver error (or anything thrown while talking to Postgres) to a typed teardown error. */
export function classifyPostgresError(err: unknown, context: ErrorContext): TeardownError {
  if (err instanceof TeardownError) return err;
  const e = asDriverError(err);
  const options = { partial: context.partial };
  const sqlState = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  if (sqlState !== undefined) {
    const message = describe(err, context, sqlState);
    const withCode = { ...options, code: sqlState };
    if (sqlState === '55006') {
      const text = `${String(e.message ?? '')} ${String(e.detail ?? '')}`;
      if (FORCE_BLOCKERS.test(text)) return new ForceBlockedError(message, withCode);
      // The admin URL itself is connected to the database being dropped: a configuration error.
      if (/currently open database/i.test(text)) return new BackendTeardownError(message, withCode);
      return new TransientTeardownError(message, withCode);
    }
    // insufficient_privilege: the admin role lacks a right on this item's objects.
    if (sqlState === '42501') return new TeardownPermissionError(message, withCode);
    // invalid_authorization_specification, invalid_password: the admin login itself is
    // refused, for every item of the cluster alike. Retried and counted as deprovision_err
    // (PoolReapErrors pages), never quarantined item by item.
    if (sqlState === '28000' || sqlState === '28P01') return new TransientTeardownError(message, withCode);
    if (sqlState === '2BP01') return new RoleStillReferencedError(message, withCode);
    if (isTransientSqlState(sqlState)) return new TransientTeardownError(message, withCode);
    return new BackendTeardownError(message, withCode);
  }
  const code = netCode(err);
  if (code !== undefined)
    return new TransientTeardownError(describe(err, context, code), { ...options, code });
  const message = describe(err, context, undefined);
  if (TRANSIENT_MESSAGES.test(String(e.message ?? ''))) return new TransientTeardownError(message, options);
  return new BackendTeardownError(message, options);
}

/** Redis reply prefixes (the first word of an error reply). */
const REDIS_PERMISSION = new Set(['NOPERM', 'NOAUTH', 'WRONGPASS']);
const REDIS_TRANSIENT = new Set(['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN']);

/** Maps an ioredis error (reply error, connection loss, timeout) to a typed teardown error. */
export function classifyRedisError(err: unknown, context: ErrorContext): TeardownError {
  if (err instanceof TeardownError) return err;
  const e = asDriverError(err);
  const options = { partial: context.partial };
  const raw = String(e.message ?? '');
  if (e.name === 'ReplyError') {
    const prefix = raw.split(' ', 1)[0] ?? '';
    const message = describe(err, context, prefix);
    const withCode = { ...options, code: prefix };
    if (REDIS_PERMISSION.has(prefix)) return new TeardownPermissionError(message, withCode);
    if (REDIS_TRANSIENT.has(prefix)) return new TransientTeardownError(message, withCode);
    return new BackendTeardownError(message, withCode);
  }
  const code = netCode(err);
  if (code !== undefined)
    return new TransientTeardownError(describe(err, context, code), { ...options, code });
  const message = describe(err, context, undefined);
  if (e.name === 'MaxRetriesPerRequestError' || TRANSIENT_MESSAGES.test(raw)) {
    return new TransientTeardownError(message, options);
  }
  return new BackendTeardownError(message, options);
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
