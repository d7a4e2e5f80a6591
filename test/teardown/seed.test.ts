import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  infraFor,
  insertPoolItemRow,
  listInfra,
  provisionItem,
  type SeededItem,
  seedItems,
} from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

const targets = seedTargets();
const infraTargets = { adminUrl: TEST_POSTGRES_URL, redisUrl: TEST_REDIS_URL };
const seeded: SeededItem[] = [];
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('teardown_seed');
});

afterAll(async () => {
  for (const item of seeded) await cleanupToken(targets, item.poolToken);
  await targets.close();
  await db.drop();
});

interface Row {
  resource_type: string;
  connection_url: string;
  provider_resource_id: string;
  database_name: string;
  username: string;
  key_prefix: string;
  pool_token: string;
  status: string;
  age_s: number;
  assigned_age_s: number | null;
}

async function rowOf(id: string): Promise<Row> {
  const { rows } = await db.pool.query<Row>(
    `SELECT resource_type, connection_url, provider_resource_id, database_name, username, key_prefix, pool_token, status,
            extract(epoch FROM now() - created_at)::float8 AS age_s,
            extract(epoch FROM now() - assigned_at)::float8 AS assigned_age_s
       FROM pool_items WHERE id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) throw new Error(`no row ${id}`);
  return row;
}

describe('seeding the provisioner side', () => {
  it('seedItems provisions real postgres infra with bounded concurrency and inserts aged failed rows', async () => {
    const progress: number[] = [];
    const serverNow = async () =>
      Number((await db.pool.query<{ t: string }>('SELECT extract(epoch FROM now()) AS t')).rows[0]!.t);
    const before = await serverNow();
    const items = await seedItems({
      provisionerPool: db.pool,
      ...infraTargets,
      count: 3,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: 20 * 60_000,
      concurrency: 2,
      onProgress: (done) => progress.push(done),
    });
    const after = await serverNow();
    seeded.push(...items);
    expect(items).toHaveLength(3);
    expect(progress.sort()).toEqual([1, 2, 3]);
    for (const item of items) {
      expect(item.poolToken).toMatch(
        /^pool-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      const row = await rowOf(item.id);
      const url = new URL(row.connection_url);
      expect(row).toMatchObject({
        resource_type: 'postgres',
        provider_resource_id: 'local:0',
        database_name: `db_${item.poolToken}`,
        username: `usr_${item.poolToken}`,
        key_prefix: '',
        status: 'failed',
      });
      expect(url.password.length).toBeGreaterThan(16);
      expect(decodeURIComponent(url.pathname.slice(1))).toBe(`db_${item.poolToken}`);
      // Aged by exactly 20 minutes from the moment of its insert (somewhere between before and
      // after, by the server's clock), however long the seeding took.
      const { rows: at } = await db.pool.query<{ assigned: string; created: string }>(
        `SELECT extract(epoch FROM assigned_at) AS assigned, extract(epoch FROM created_at) AS created
           FROM pool_items WHERE id = $1`,
        [item.id],
      );
      expect(Number(at[0]!.assigned)).toBe(Number(at[0]!.created));
      expect(Number(at[0]!.assigned)).toBeGreaterThanOrEqual(before - 20 * 60);
      expect(Number(at[0]!.assigned)).toBeLessThanOrEqual(after - 20 * 60);
      expect(await infraFor(item.poolToken, infraTargets)).toMatchObject({
        database: true,
        role: true,
        keys: 0,
      });
    }
    const infra = await listInfra({ ...infraTargets, tokenPrefix: items[0]!.poolToken });
    expect(infra.databases).toEqual([`db_${items[0]!.poolToken}`]);
    expect(infra.roles).toEqual([`usr_${items[0]!.poolToken}`]);
  });

  it('redis items get an ACL user limited to <token>:* and keys; ready rows have no assigned_at', async () => {
    const item = await provisionItem(targets, { resourceType: 'redis', keys: 4 });
    const ref = await insertPoolItemRow(db.pool, { ...item, status: 'ready', ageMs: 1000 });
    seeded.push({ ...ref, item });
    const row = await rowOf(ref.id);
    expect(row).toMatchObject({ key_prefix: `${item.poolToken}:`, status: 'ready', assigned_age_s: null });
    expect(new URL(row.connection_url).protocol).toBe('redis:');
    expect(await infraFor(item.poolToken, infraTargets)).toMatchObject({
      aclUser: true,
      keys: 4,
      database: false,
    });
    const user = (await targets.redis.call('ACL', 'GETUSER', `usr_${item.poolToken}`)) as unknown[];
    expect(user[user.indexOf('keys') + 1]).toBe(`~${item.poolToken}:*`);
  });

  it('queue and mongodb items are rows only', async () => {
    for (const resourceType of ['queue', 'mongodb'] as const) {
      const item = await provisionItem(targets, { resourceType, providerResourceId: 'local:1' });
      const ref = await insertPoolItemRow(db.pool, { ...item, status: 'assigned', ageMs: 0 });
      seeded.push({ ...ref, item });
      expect(ref).toMatchObject({ resourceType, providerResourceId: 'local:1' });
      expect(await infraFor(item.poolToken, infraTargets)).toEqual({
        database: false,
        databaseInvalid: false,
        role: false,
        aclUser: false,
        legacyAclUser: false,
        keys: 0,
      });
    }
  });
});
