import Redis from 'ioredis';
import pg from 'pg';
import { TEST_POSTGRES_URL, TEST_POSTGRES_URL_2, TEST_REDIS_URL } from './env';

/**
 * Cleanup that depends neither on a test's success nor on the code under test: everything a
 * test file creates carries its tag (test/helpers/env.ts: every pool token ends with it,
 * every uniqueSuffix() starts with it), so whatever is left is found by name in the catalogs
 * and removed with plain SQL and Redis commands, never through the teardown registry.
 */

/** What carries a tag: `<kind> <name>` per object, per cluster. */
export interface TaggedObjects {
  readonly postgres: Record<string, string[]>;
  readonly redis: string[];
  /** Clusters that could not be read (a second cluster that is not running here). */
  readonly unreachable: string[];
}

export const POSTGRES_CLUSTERS: ReadonlyMap<string, string> = new Map([
  ['local:0', TEST_POSTGRES_URL],
  ['local:1', TEST_POSTGRES_URL_2],
]);

const likePattern = (tag: string) => `%${tag.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const escapeGlob = (text: string) => text.replace(/[\\*?[\]^]/g, (c) => `\\${c}`);

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const forDatabase = (adminUrl: string, database: string) => {
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
};

/** Every database, role, subscription, prepared transaction and replication slot whose name carries `tag`. */
async function taggedInCluster(url: string, tag: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ what: string }>(
      `SELECT 'database ' || datname AS what FROM pg_database WHERE datname LIKE $1
       UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname LIKE $1
       UNION ALL SELECT 'subscription ' || subname FROM pg_subscription s
                 JOIN pg_database d ON d.oid = s.subdbid WHERE subname LIKE $1 OR d.datname LIKE $1
       UNION ALL SELECT 'prepared transaction ' || gid FROM pg_prepared_xacts
                 WHERE gid LIKE $1 OR database LIKE $1
       UNION ALL SELECT 'replication slot ' || slot_name FROM pg_replication_slots
                 WHERE slot_name LIKE $1 OR database LIKE $1
       ORDER BY 1`,
      [likePattern(tag)],
    );
    return rows.map((r) => r.what);
  });
}

async function taggedInRedis(url: string, tag: string): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const found = ((await redis.call('ACL', 'USERS')) as string[])
      .filter((u) => u.includes(tag))
      .map((u) => `acl user ${u}`);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${escapeGlob(tag)}*`, 'COUNT', 1000);
      found.push(...keys.map((k) => `key ${k}`));
      cursor = next;
    } while (cursor !== '0');
    return found.sort();
  } finally {
    redis.disconnect();
  }
}

/** Everything on the test clusters and the test Redis whose name carries `tag`. */
export async function findTagged(tag: string): Promise<TaggedObjects> {
  if (!/^[0-9a-f]{8,}$/.test(tag)) throw new Error(`findTagged: refusing a tag this short or odd: ${tag}`);
  const postgres: Record<string, string[]> = {};
  const unreachable: string[] = [];
  for (const [cluster, url] of POSTGRES_CLUSTERS) {
    try {
      const found = await taggedInCluster(url, tag);
      if (found.length > 0) postgres[cluster] = found;
    } catch (err) {
      // Only a cluster that refuses connections outright is skipped; any other error is real.
      if ((err as { code?: string }).code !== 'ECONNREFUSED' || cluster === 'local:0') throw err;
      unreachable.push(cluster);
    }
  }
  return { postgres, redis: await taggedInRedis(TEST_REDIS_URL, tag), unreachable };
}

export const countTagged = (found: TaggedObjects) =>
  Object.values(found.postgres).reduce((n, list) => n + list.length, 0) + found.redis.length;

export function describeTagged(found: TaggedObjects): string {
  const parts = Object.entries(found.postgres).map(([cluster, list]) => `${cluster}: ${list.join(', ')}`);
  if (found.redis.length > 0) parts.push(`redis: ${found.redis.join(', ')}`);
  return parts.join('; ');
}

const nameOf = (what: string, kind: string) => what.slice(kind.length + 1);

/** Removes what `findTagged` found: blockers first, then databases, then roles; Redis users, then keys. */
export async function removeTagged(found: TaggedObjects): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    await fn().catch((err: Error) => problems.push(`${what}: ${err.message}`));
  };
  for (const [cluster, list] of Object.entries(found.postgres)) {
    const url = POSTGRES_CLUSTERS.get(cluster);
    if (url === undefined) continue;
    const of = (kind: string) => list.filter((w) => w.startsWith(`${kind} `)).map((w) => nameOf(w, kind));
    await withClient(url, async (admin) => {
      for (const gid of of('prepared transaction')) {
        await attempt(`prepared transaction ${gid}`, () =>
          admin.query(`ROLLBACK PREPARED ${pg.escapeLiteral(gid)}`),
        );
      }
      for (const sub of of('subscription')) {
        // A subscription lives in one database; it must be detached from its (absent) slot first.
        const { rows } = await admin.query<{ datname: string }>(
          'SELECT d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname = $1',
          [sub],
        );
        for (const { datname } of rows) {
          await attempt(`subscription ${sub}`, () =>
            withClient(forDatabase(url, datname), async (inDb) => {
              const name = pg.escapeIdentifier(sub);
              await inDb.query(`ALTER SUBSCRIPTION ${name} DISABLE`);
              await inDb.query(`ALTER SUBSCRIPTION ${name} SET (slot_name = NONE)`);
              await inDb.query(`DROP SUBSCRIPTION ${name}`);
            }),
          );
        }
      }
      for (const slot of of('replication slot')) {
        await attempt(`replication slot ${slot}`, () =>
          admin.query('SELECT pg_drop_replication_slot($1)', [slot]),
        );
      }
      for (const db of of('database')) {
        await attempt(`database ${db}`, () =>
          admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`),
        );
      }
      for (const role of of('role')) {
        await attempt(`role ${role}`, async () => {
          // Privileges or objects left in the admin database keep a role (2BP01): drop them with it.
          await admin.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`).catch(() => undefined);
          await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
        });
      }
    });
  }
  if (found.redis.length > 0) {
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
    redis.on('error', () => undefined);
    try {
      for (const user of found.redis
        .filter((w) => w.startsWith('acl user '))
        .map((w) => nameOf(w, 'acl user'))) {
        await attempt(`acl user ${user}`, () => redis.call('ACL', 'DELUSER', user));
      }
      const keys = found.redis.filter((w) => w.startsWith('key ')).map((w) => nameOf(w, 'key'));
      for (let i = 0; i < keys.length; i += 500) {
        const batch = keys.slice(i, i + 500);
        await attempt(`${batch.length} keys`, () => redis.unlink(...batch));
      }
    } finally {
      redis.disconnect();
    }
  }
  return problems;
}

/** Finds and removes everything carrying `tag`; returns what was there (empty when the tests cleaned up). */
export async function sweepTag(tag: string): Promise<{ found: TaggedObjects; problems: string[] }> {
  const found = await findTagged(tag);
  const problems = countTagged(found) > 0 ? await removeTagged(found) : [];
  return { found, problems };
}
