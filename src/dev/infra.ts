import Redis from 'ioredis';
import pg from 'pg';
import { ENV_DEFAULTS } from '../config';

/**
 * Inspecting what seeding created: which databases, roles, Redis keys and ACL users exist for
 * a token or a prefix. For tests and benchmarks, which check that a teardown left nothing.
 */

export interface InfraTargets {
  readonly adminUrl: string;
  readonly redisUrl: string;
}

export interface InfraReport {
  /** `db_<prefix>…` databases (an invalid one, datconnlimit -2, is listed too). */
  readonly databases: string[];
  /** `usr_<prefix>…` roles. */
  readonly roles: string[];
  /** `usr_<prefix>…` Redis ACL users. */
  readonly aclUsers: string[];
  /** `<prefix>…` Redis keys. */
  readonly keys: string[];
}

/** The local stack's URLs from the environment (same variables and defaults as the worker). */
export function defaultInfraTargets(
  env: Readonly<Record<string, string | undefined>> = process.env,
): InfraTargets {
  return {
    adminUrl: env['POSTGRES_ADMIN_URL'] || ENV_DEFAULTS.POSTGRES_ADMIN_URL,
    redisUrl: env['REDIS_URL'] || ENV_DEFAULTS.REDIS_URL,
  };
}

const escapeGlob = (text: string) => text.replace(/[\\*?[\]^]/g, (c) => `\\${c}`);

/** Which databases, roles, ACL users and keys derived from tokens starting with `tokenPrefix` exist. */
export async function listInfra(options: InfraTargets & { tokenPrefix?: string }): Promise<InfraReport> {
  const prefix = options.tokenPrefix ?? 'pool-';
  const client = new pg.Client({ connectionString: options.adminUrl });
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2 });
  await client.connect();
  try {
    const databases = await client.query<{ name: string }>(
      'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1',
      [`db_${prefix}`],
    );
    const roles = await client.query<{ name: string }>(
      'SELECT rolname AS name FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1',
      [`usr_${prefix}`],
    );
    const users = ((await redis.call('ACL', 'USERS')) as string[]).filter((u) =>
      u.startsWith(`usr_${prefix}`),
    );
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return {
      databases: databases.rows.map((r) => r.name),
      roles: roles.rows.map((r) => r.name),
      aclUsers: users.sort(),
      keys: keys.sort(),
    };
  } finally {
    await client.end();
    redis.disconnect();
  }
}

export interface ItemInfra {
  readonly database: boolean;
  /** The database exists but is invalid (datconnlimit -2, an interrupted drop). */
  readonly databaseInvalid: boolean;
  readonly role: boolean;
  readonly aclUser: boolean;
  /** The legacy `usr_<first 8 chars>` ACL user (possibly another token's). */
  readonly legacyAclUser: boolean;
  /** Keys under `<token>:`. */
  readonly keys: number;
}

/** What exists of one token's infra. */
export async function infraFor(
  token: string,
  targets: InfraTargets = defaultInfraTargets(),
): Promise<ItemInfra> {
  const client = new pg.Client({ connectionString: targets.adminUrl });
  const redis = new Redis(targets.redisUrl, { maxRetriesPerRequest: 2 });
  await client.connect();
  try {
    const { rows } = await client.query<{ db: boolean; invalid: boolean; role: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS db,
              EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datconnlimit = -2) AS invalid,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
      [`db_${token}`, `usr_${token}`],
    );
    const users = (await redis.call('ACL', 'USERS')) as string[];
    let keys = 0;
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${escapeGlob(token)}:*`, 'COUNT', 1000);
      keys += batch.length;
      cursor = next;
    } while (cursor !== '0');
    return {
      database: rows[0]?.db ?? false,
      databaseInvalid: rows[0]?.invalid ?? false,
      role: rows[0]?.role ?? false,
      aclUser: users.includes(`usr_${token}`),
      legacyAclUser: users.includes(`usr_${token.slice(0, 8)}`),
      keys,
    };
  } finally {
    await client.end();
    redis.disconnect();
  }
}
