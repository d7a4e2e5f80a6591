import { existsSync } from 'node:fs';
import { ConfigError } from './config-error';

type Env = Readonly<Record<string, string | undefined>>;

/** libpq's sslmode values (pg follows them; `verify-full` checks the CA and the host name). */
export const SSL_MODES = ['disable', 'prefer', 'require', 'no-verify', 'verify-ca', 'verify-full'] as const;

/** libpq's variables, applied to every Postgres URL that does not set the parameter itself. */
const PG_TLS_VARIABLES = [
  ['PGSSLMODE', 'sslmode'],
  ['PGSSLROOTCERT', 'sslrootcert'],
  ['PGSSLCERT', 'sslcert'],
  ['PGSSLKEY', 'sslkey'],
] as const;

/**
 * Postgres TLS from the URL (`?sslmode=verify-full&sslrootcert=/etc/ssl/pg-ca.pem`) or, for
 * what the URL leaves out, libpq's variables (PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY).
 * pg reads the files when it connects; they are checked here so that a missing CA is one
 * start-up line naming the variable, not a failure at the first teardown.
 */
export function withPostgresTls(variable: string, raw: string, env: Env): string {
  const url = new URL(raw);
  for (const [envName, param] of PG_TLS_VARIABLES) {
    const value = env[envName]?.trim();
    if (value && !url.searchParams.has(param)) url.searchParams.set(param, value);
  }
  const mode = url.searchParams.get('sslmode');
  if (mode !== null && !(SSL_MODES as readonly string[]).includes(mode)) {
    throw new ConfigError(variable, `sslmode one of ${SSL_MODES.join(', ')}, got "${mode}"`);
  }
  for (const param of ['sslrootcert', 'sslcert', 'sslkey']) {
    const file = url.searchParams.get(param);
    if (file !== null && !existsSync(file)) {
      throw new ConfigError(variable, `${param} to name a readable file, got ${file} (not found)`);
    }
  }
  // Unchanged when nothing applies, so a URL without TLS settings stays byte-for-byte the same.
  return url.searchParams.size === new URL(raw).searchParams.size ? raw : url.toString();
}

/** Node's and OpenSSL's certificate codes, plus pg's own words when the server will not speak TLS. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;
const TLS_MESSAGE = /does not support SSL|SSL connection|certificate|pg_hba\.conf .* no encryption/i;

export function isTlsFailure(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return (typeof e?.code === 'string' && TLS_CODE.test(e.code)) || TLS_MESSAGE.test(String(e?.message ?? ''));
}

/**
 * A TLS handshake or certificate check that failed: a setting to fix, not an outage to wait
 * out, so start-up stops at once (exit 2) with one line naming the variable.
 */
export class TlsRefusedError extends ConfigError {
  constructor(variable: string, detail: string) {
    super(variable, 'a server whose certificate the configured CA verifies');
    this.message =
      `${variable}: TLS to the server failed (${detail}); check sslmode and sslrootcert ` +
      '(in the URL, or PGSSLMODE/PGSSLROOTCERT) name the CA that signed the server certificate';
  }
}
