import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import pg from 'pg';
import { DEFAULT_CLUSTER, ENV_DEFAULTS } from '../config';
import type { PoolItemRef } from '../shared/types';

/**
 * The provisioner's side, for tests, demos and benchmarks: creates real infra exactly the
 * way the provisioner does and inserts the matching pool_items rows. The generated
 * password lives only in `connection_url`: it is the secret that must never be logged.
 */

export type SeedResourceType = 'postgres' | 'redis' | 'queue' | 'mongodb';
export type PoolItemStatus = 'ready' | 'assigned' | 'failed';

/** Anything that can run a query: a pg.Pool or a connected pg.Client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

export interface ProvisionTargets {
  /** Admin connection to the customer Postgres cluster. */
  readonly admin: Queryable;
  /** Its URL: host and port go into the item's connection_url. */
  readonly adminUrl: string;
  readonly redis: Redis;
  readonly redisUrl: string;
}

export interface ProvisionedItem {
  readonly resourceType: string;
  readonly poolToken: string;
  readonly providerResourceId: string;
  readonly connectionUrl: string;
  readonly databaseName: string;
  readonly username: string;
  readonly keyPrefix: string;
}

export interface ProvisionOptions {
  readonly resourceType: SeedResourceType;
  /** Default: a fresh `pool-<uuid>`. */
  readonly token?: string;
  /** Default `local:0`. */
  readonly providerResourceId?: string;
  /** Redis: how many `<token>:k<n>` keys to write. Default 3. */
  readonly keys?: number;
}

/**
 * A fresh pool token, `pool-<uuid>`. With POOL_TOKEN_TAG set (1 to 12 lowercase hex digits),
 * the uuid ends with the tag instead of random digits: the test suite tags every token with
 * its run and file, so that what a run leaves behind on a shared machine can be found and
 * removed without touching another run's items. The token keeps its shape and length.
 */
export function newPoolToken(): string {
  const uuid = randomUUID();
  const tag = process.env['POOL_TOKEN_TAG'];
  if (tag === undefined || tag === '') return `pool-${uuid}`;
  if (!/^[0-9a-f]{1,12}$/.test(tag)) {
    throw new Error(`POOL_TOKEN_TAG: expected 1 to 12 lowercase hex digits, got ${JSON.stringify(tag)}`);
  }
  return `pool-${uuid.slice(0, uuid.length - tag.length)}${tag}`;
}

const password = () => randomBytes(18).toString('base64url');

function hostOf(url: string, defaultPort: number): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || defaultPort}`;
}

/**
 * Creates one item's infra the way the provisioner does (no pool_items row). Long (about 70
 * lines): one branch per resource type, each the provisioner's exact statements in order.
 */
export async function provisionItem(
  targets: ProvisionTargets,
  options: ProvisionOptions,
): Promise<ProvisionedItem> {
  const token = options.token ?? newPoolToken();
  const providerResourceId = options.providerResourceId ?? DEFAULT_CLUSTER;
  const secret = password();
  const databaseName = `db_${token}`;
  const username = `usr_${token}`;
  switch (options.resourceType) {
    case 'postgres': {
      const db = pg.escapeIdentifier(databaseName);
      const role = pg.escapeIdentifier(username);
      await targets.admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(secret)}`);
      await targets.admin.query(`CREATE DATABASE ${db}`);
      await targets.admin.query(`GRANT ALL ON DATABASE ${db} TO ${role}`);
      await targets.admin.query(`REVOKE CONNECT ON DATABASE ${db} FROM PUBLIC`);
      return {
        resourceType: 'postgres',
        poolToken: token,
        providerResourceId,
        connectionUrl: `postgres://${encodeURIComponent(username)}:${secret}@${hostOf(targets.adminUrl, 5432)}/${encodeURIComponent(databaseName)}`,
        databaseName,
        username,
        keyPrefix: '',
      };
    }
    case 'redis': {
      await targets.redis.call('ACL', 'SETUSER', username, 'on', `>${secret}`, `~${token}:*`, '+@all');
      const count = options.keys ?? 3;
      if (count > 0) {
        const pipeline = targets.redis.pipeline();
        for (let n = 1; n <= count; n++) pipeline.set(`${token}:k${n}`, `v${n}`);
        await pipeline.exec();
      }
      return {
        resourceType: 'redis',
        poolToken: token,
        providerResourceId,
        connectionUrl: `redis://${encodeURIComponent(username)}:${secret}@${hostOf(targets.redisUrl, 6379)}`,
        databaseName: '',
        username,
        keyPrefix: `${token}:`,
      };
    }
    case 'queue':
      return {
        resourceType: 'queue',
        poolToken: token,
        providerResourceId,
        connectionUrl: `nats://${encodeURIComponent(username)}:${secret}@127.0.0.1:4222`,
        databaseName: '',
        username,
        keyPrefix: '',
      };
    case 'mongodb':
      return {
        resourceType: 'mongodb',
        poolToken: token,
        providerResourceId,
        connectionUrl: `mongodb://${encodeURIComponent(username)}:${secret}@127.0.0.1:27017/${encodeURIComponent(databaseName)}`,
        databaseName,
        username,
        keyPrefix: '',
      };
    default:
      throw new Error(`provisionItem: unknown resource type ${JSON.stringify(options.resourceType)}`);
  }
}

export interface PoolItemRowInput {
  readonly resourceType: string;
  readonly poolToken: string;
  readonly connectionUrl: string;
  readonly providerResourceId?: string;
  readonly databaseName?: string;
  readonly username?: string;
  readonly keyPrefix?: string;
  readonly status: PoolItemStatus;
  /** created_at = now() - age; assigned_at too, except for `ready` rows (null). Default 0. */
  readonly ageMs?: number;
}

/** Inserts one pool_items row and returns its reference (never the connection_url). */
export async function insertPoolItemRow(pool: Queryable, row: PoolItemRowInput): Promise<PoolItemRef> {
  const providerResourceId = row.providerResourceId ?? DEFAULT_CLUSTER;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO pool_items
       (resource_type, connection_url, provider_resource_id, database_name, username, key_prefix, pool_token,
        status, created_at, assigned_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
             now() - make_interval(secs => $9::double precision / 1000),
             CASE WHEN $8 = 'ready' THEN NULL ELSE now() - make_interval(secs => $9::double precision / 1000) END)
     RETURNING id`,
    [
      row.resourceType,
      row.connectionUrl,
      providerResourceId,
      row.databaseName ?? '',
      row.username ?? '',
      row.keyPrefix ?? '',
      row.poolToken,
      row.status,
      row.ageMs ?? 0,
    ],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('insertPoolItemRow: INSERT returned no id');
  return { id, resourceType: row.resourceType, poolToken: row.poolToken, providerResourceId };
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, runner));
  return results;
}

export interface SeedItemsOptions {
  /** The provisioner database (pool_items). */
  readonly provisionerPool: Queryable;
  readonly adminUrl: string;
  readonly redisUrl: string;
  readonly count: number;
  readonly resourceType: SeedResourceType;
  readonly status: PoolItemStatus;
  readonly ageMs?: number;
  readonly providerResourceId?: string;
  /** Items provisioned at once. Default 4. */
  readonly concurrency?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface SeededItem extends PoolItemRef {
  readonly item: ProvisionedItem;
}

/** Provisions `count` items (bounded concurrency) and inserts their rows. */
export async function seedItems(options: SeedItemsOptions): Promise<SeededItem[]> {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const admin = new pg.Pool({ connectionString: options.adminUrl, max: concurrency });
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2 });
  const targets: ProvisionTargets = { admin, adminUrl: options.adminUrl, redis, redisUrl: options.redisUrl };
  let done = 0;
  try {
    return await mapWithConcurrency(Array.from({ length: options.count }), concurrency, async () => {
      const item = await provisionItem(targets, {
        resourceType: options.resourceType,
        ...(options.providerResourceId === undefined
          ? {}
          : { providerResourceId: options.providerResourceId }),
      });
      const ref = await insertPoolItemRow(options.provisionerPool, {
        ...item,
        status: options.status,
        ageMs: options.ageMs ?? 0,
      });
      done++;
      options.onProgress?.(done, options.count);
      return { ...ref, item };
    });
  } finally {
    await admin.end();
    redis.disconnect();
  }
}

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
