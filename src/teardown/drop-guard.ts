import { DropRefusedError, type RefusalSite } from './errors';

/**
 * The drop guard: pure checks run on every name before any connection opens. A refusal is
 * a DropRefusedError (never retryable) naming the check (`site`) and the rule (`reason`).
 * Everything here is table-driven; each refusal reason is documented where it is defined.
 */

/** Postgres silently truncates longer identifiers, so a longer name could hit another object. */
export const MAX_NAME_BYTES = 63;

/** Characters a pool token (and the tenant part of a name) may contain: no quoting, globbing or paths. */
export const TOKEN_CHARSET = /^[A-Za-z0-9._-]+$/;

/** Tokens (compared case-insensitively) that name platform infrastructure, never a tenant. */
export const RESERVED_TOKENS: readonly string[] = [
  'postgres',
  'template0',
  'template1',
  'admin',
  'default',
  'root',
  'instant_customers',
  'instant_platform',
  'instant_cust',
  'instanode_admin',
  'doadmin',
];

/** Databases never dropped, whatever their name looks like (compared case-insensitively). */
export const SYSTEM_DATABASES: readonly string[] = [
  'postgres',
  'template0',
  'template1',
  'instant_customers',
  'instant_platform',
  'admin',
  'local',
  'config',
];

/** Roles / ACL users never dropped (compared case-insensitively). */
export const SYSTEM_ROLES: readonly string[] = [
  'postgres',
  'instant_cust',
  'instanode_admin',
  'doadmin',
  'admin',
  'root',
  'default',
  'replication',
];

/** Tenant prefixes a droppable database name must start with (exact case), longest first. */
export const DATABASE_PREFIXES: readonly string[] = ['dedicated_db_', 'db_'];

/** Tenant prefixes a droppable role / ACL user name must start with (exact case), longest first. */
export const USER_PREFIXES: readonly string[] = ['dedicated_usr_', 'usr_', 'ded_'];

/** Every prefix a tenant name may carry; used to spot a name passed where a token was expected. */
const ALL_TENANT_PREFIXES: readonly string[] = [...DATABASE_PREFIXES, ...USER_PREFIXES].sort(
  (a, b) => b.length - a.length,
);

/** The legacy Redis ACL user kept the first 8 characters of the token. */
export const LEGACY_REDIS_USER_CHARS = 8;

const encoder = new TextEncoder();
const byteLength = (s: string): number => encoder.encode(s).length;
const isOneOf = (list: readonly string[], value: string): boolean =>
  list.some((entry) => entry.toLowerCase() === value.toLowerCase());

/** Shows a refused value safely: quoted (so newlines and NULs are visible) and bounded. */
function show(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

interface Rule {
  /** Stable machine-readable reason carried by the error. */
  readonly reason: string;
  readonly refuses: (value: string) => boolean;
  readonly explain: string;
}

/**
 * Token rules, checked in order; the first that matches refuses. They apply to a pool
 * token and, unchanged, to the part of a database/user name after its tenant prefix.
 */
const TOKEN_RULES: readonly Rule[] = [
  // An empty token would derive the bare prefix (`db_`, `usr_`), or a SCAN of `:*`.
  { reason: 'empty', refuses: (t) => t.length === 0, explain: 'the token is empty' },
  // Longer than any identifier Postgres keeps: the derived name would be truncated onto another.
  {
    reason: 'too_long',
    refuses: (t) => byteLength(t) > MAX_NAME_BYTES,
    explain: `the token is longer than ${MAX_NAME_BYTES} bytes`,
  },
  // Quotes, `;`, spaces, control characters, glob specials (`*?[]`), `%`, `/`, `:`, non-ASCII
  // (look-alike letters): none appear in a real `pool-<uuid>` token, all could widen a statement.
  {
    reason: 'invalid_characters',
    refuses: (t) => !TOKEN_CHARSET.test(t),
    explain: 'the token has characters outside [A-Za-z0-9._-]',
  },
  // Platform names: the derived names must never land on platform infrastructure.
  {
    reason: 'reserved',
    refuses: (t) => isOneOf(RESERVED_TOKENS, t),
    explain: 'the token is a reserved name',
  },
  // Beyond the documented list, same intent: a token that is itself a tenant-prefixed reserved
  // name (`DB_POSTGRES`, `usr_root`) is a system name passed where a token was expected.
  {
    reason: 'reserved_after_prefix',
    refuses: (t) => {
      const prefix = ALL_TENANT_PREFIXES.find((p) => t.toLowerCase().startsWith(p));
      return prefix !== undefined && isOneOf(RESERVED_TOKENS, t.slice(prefix.length));
    },
    explain: 'the token is a tenant prefix followed by a reserved name',
  },
];

function checkToken(value: unknown, site: RefusalSite, what: string): string {
  if (typeof value !== 'string') {
    // A null/undefined token from a malformed row must never become the string "undefined".
    throw new DropRefusedError(site, 'not_a_string', `refused ${what} ${show(value)}: not a string`);
  }
  for (const rule of TOKEN_RULES) {
    if (rule.refuses(value)) {
      throw new DropRefusedError(site, rule.reason, `refused ${what} ${show(value)}: ${rule.explain}`);
    }
  }
  return value;
}

/** Throws DropRefusedError (site `token`) unless `token` is a safe pool token. */
export function assertSafeToken(token: string): void {
  checkToken(token, 'token', 'token');
}

interface NameTable {
  readonly system: readonly string[];
  readonly prefixes: readonly string[];
  readonly kind: string;
}

const DATABASE_TABLE: NameTable = { system: SYSTEM_DATABASES, prefixes: DATABASE_PREFIXES, kind: 'database' };
const ROLE_TABLE: NameTable = { system: SYSTEM_ROLES, prefixes: USER_PREFIXES, kind: 'user' };

function assertDroppableName(name: string, table: NameTable, site: RefusalSite): void {
  const what = `${table.kind} name`;
  if (typeof name !== 'string') {
    throw new DropRefusedError(site, 'not_a_string', `refused ${what} ${show(name)}: not a string`);
  }
  // Refuse, never truncate: Postgres would silently cut the name to 63 bytes.
  if (byteLength(name) > MAX_NAME_BYTES) {
    throw new DropRefusedError(
      site,
      'name_too_long',
      `refused ${what} ${show(name)}: longer than ${MAX_NAME_BYTES} bytes (Postgres would truncate it)`,
    );
  }
  // System objects are never dropped, in any letter case.
  if (isOneOf(table.system, name)) {
    throw new DropRefusedError(
      site,
      `system_${table.kind === 'database' ? 'database' : 'role'}`,
      `refused ${what} ${show(name)}: a system ${table.kind}`,
    );
  }
  // Only tenant objects are droppable, and the provisioner always writes the prefix in lower case.
  const prefix = table.prefixes.find((p) => name.startsWith(p));
  if (prefix === undefined) {
    throw new DropRefusedError(
      site,
      'missing_prefix',
      `refused ${what} ${show(name)}: it does not start with ${table.prefixes.join(' or ')}`,
    );
  }
  // The tenant part obeys the token rules (non-empty, charset, not reserved).
  checkToken(name.slice(prefix.length), site, `${what} ${show(name)} with tenant part`);
}

/** Throws DropRefusedError unless `name` is a droppable tenant database (site `database_name` by default). */
export function assertDroppableDatabase(name: string, site: RefusalSite = 'database_name'): void {
  assertDroppableName(name, DATABASE_TABLE, site);
}

/** Throws DropRefusedError unless `name` is a droppable tenant role / ACL user (site `role_name` by default). */
export function assertDroppableRole(name: string, site: RefusalSite = 'role_name'): void {
  assertDroppableName(name, ROLE_TABLE, site);
}

/** `db_<token>`, validated (token, then the derived name). */
export function databaseNameFor(token: string): string {
  assertSafeToken(token);
  const name = `db_${token}`;
  assertDroppableDatabase(name, 'database_name');
  return name;
}

/** `usr_<token>`, validated (token, then the derived name). */
export function roleNameFor(token: string): string {
  assertSafeToken(token);
  const name = `usr_${token}`;
  assertDroppableRole(name, 'role_name');
  return name;
}

/** The Redis ACL user `usr_<token>`, validated like a role (site `redis_user`); never `default`. */
export function redisUserFor(token: string): string {
  assertSafeToken(token);
  const name = `usr_${token}`;
  assertDroppableRole(name, 'redis_user');
  return name;
}

/**
 * The legacy Redis ACL user `usr_<first 8 chars of token>`, validated (site `redis_user`).
 * It may be shared by every token with the same first 8 characters: callers must check
 * that it belongs to this token alone before deleting it.
 */
export function legacyRedisUserFor(token: string): string {
  assertSafeToken(token);
  const name = `usr_${token.slice(0, LEGACY_REDIS_USER_CHARS)}`;
  assertDroppableRole(name, 'redis_user');
  return name;
}

/**
 * The legacy alias of a token the guard already accepted, or the guard's refusal of that one
 * name. A valid token can still have a reserved alias (`postgres-…` gives `usr_postgres`):
 * the original guard refused the name it was asked to drop, not the whole item, so the
 * caller skips that name (audited) and tears down the rest.
 */
export type LegacyRedisAlias =
  | { readonly name: string; readonly refused?: undefined }
  | { readonly name: string; readonly refused: DropRefusedError };

export function legacyRedisAliasOf(token: string): LegacyRedisAlias {
  assertSafeToken(token);
  const name = `usr_${token.slice(0, LEGACY_REDIS_USER_CHARS)}`;
  try {
    assertDroppableRole(name, 'redis_user');
    return { name };
  } catch (err) {
    if (err instanceof DropRefusedError) return { name, refused: err };
    throw err;
  }
}

/**
 * True when the token is at most LEGACY_REDIS_USER_CHARS long: then its own user `usr_<token>`
 * is also the legacy alias of every longer token starting with it, so its name alone does not
 * prove it is this item's.
 */
export function redisUserIsShared(token: string): boolean {
  return token.length <= LEGACY_REDIS_USER_CHARS;
}
