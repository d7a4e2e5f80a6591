import pg from 'pg';
import { scrubSecrets } from '../shared/secrets';
import type { TeardownResult } from '../shared/types';

/**
 * What both classifiers (postgres-errors.ts, redis-errors.ts) need to read a driver's error:
 * where it came from, and one scrubbed line that says what failed.
 */

/** What a failing statement was doing, for the message and the partial result. */
export interface ErrorContext {
  /** e.g. drop_database, drop_role, acl_deluser, connect. */
  readonly action: string;
  /** The object acted on, e.g. `db_pool-…`. */
  readonly target: string;
  readonly cluster: string;
  readonly partial?: TeardownResult;
}

export interface DriverError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly code?: unknown;
  readonly detail?: unknown;
  readonly errors?: unknown;
  readonly errno?: unknown;
  readonly syscall?: unknown;
}

export function asDriverError(err: unknown): DriverError {
  return typeof err === 'object' && err !== null ? (err as DriverError) : { message: String(err) };
}

export function describe(err: unknown, context: ErrorContext, code: string | undefined): string {
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
export type Origin =
  | { readonly kind: 'sql'; readonly sqlState: string }
  | { readonly kind: 'reply'; readonly prefix: string }
  | { readonly kind: 'system'; readonly code: string }
  | { readonly kind: 'tls'; readonly code: string }
  | { readonly kind: 'other' };

/** OpenSSL verification codes Node puts in `code` (no errno), plus its own ERR_TLS_* / ERR_SSL_*. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;
/** pg's own words when the server will not (or cannot) speak TLS as asked. */
const TLS_MESSAGE = /does not support SSL|SSL connection|self[- ]signed certificate|certificate/i;

export function originOf(err: unknown): Origin {
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
export const CONNECTION_LOST =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection is closed|Command timed out|Stream isn't writeable|Reached the max retries per request|socket hang up/i;
