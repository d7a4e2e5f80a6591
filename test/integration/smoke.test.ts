import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/migrate';
import { MIGRATIONS } from '../../src/store/schema';
import { historyOrder } from '../helpers/history';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';

const HOUR = 3_600_000;

/** The provisioner's table exactly as production has it (domain.md). */
const PROVISIONER_DDL = `
  CREATE TABLE pool_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type text NOT NULL,
    connection_url text NOT NULL,
    provider_resource_id text NOT NULL DEFAULT '',
    database_name text NOT NULL DEFAULT '',
    username text NOT NULL DEFAULT '',
    key_prefix text NOT NULL DEFAULT '',
    pool_token text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'ready',
    created_at timestamptz NOT NULL DEFAULT now(),
    assigned_at timestamptz
  );
  CREATE INDEX idx_pool_ready ON pool_items (resource_type, created_at) WHERE status = 'ready';`;

const columns = async (db: TestDatabase) =>
  (
    await db.pool.query(
      `SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
        WHERE table_name = 'pool_items' ORDER BY ordinal_position`,
    )
  ).rows;

describe('smoke: the real Temporal server runs a workflow with activities', () => {
  let h: ReaperHarness;
  beforeAll(async () => {
    h = await createReaperHarness('smoke');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs reapPass with its activities on an empty pool', async () => {
    const { summary, handle } = await h.runPass();
    expect(summary.listed).toBe(0);
    expect(summary.passId).toBe(handle.workflowId);
    const activities = (await historyOrder(handle)).map((a) => a.activity);
    expect(activities).toEqual(['listStaleFailed', 'reportStuckAssigned', 'recordPassSummary']);
  });

  it('reads and writes pool_items', async () => {
    const row = await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const listed = await h.store.listStaleFailed(10 * 60_000, 10);
    expect(listed).toEqual([
      { id: row.id, resourceType: 'queue', poolToken: row.poolToken, providerResourceId: 'local:0' },
    ]);
    expect(await h.store.deleteFailedItem(row)).toBe(true);
    expect(await h.store.listStaleFailed(10 * 60_000, 10)).toEqual([]);
    // A retried delete (the worker died after the commit) still reports the row as reaped...
    expect(await h.store.deleteFailedItem(row)).toBe(true);
    // ...but a row the reaper never deleted is not claimed.
    const never = await insertRow(h.db.pool, { resourceType: 'queue', status: 'ready', ageMs: HOUR });
    expect(await h.store.deleteFailedItem(never)).toBe(false);
  });
});

describe('migrate against an existing provisioner table', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('migrate', { migrate: false });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('is idempotent, keeps the provisioner columns and rows, and adds only its own objects', async () => {
    await db.pool.query(PROVISIONER_DDL);
    await db.pool.query(
      `INSERT INTO pool_items (resource_type, connection_url, pool_token) VALUES ('redis', 'x', 'pool-a')`,
    );
    const before = await columns(db);

    const first = await migrate(db.url);
    const second = await migrate(db.url);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(second.applied).toEqual([]);
    expect(await columns(db)).toEqual(before);
    expect((await db.pool.query('SELECT pool_token FROM pool_items')).rows).toEqual([
      { pool_token: 'pool-a' },
    ]);
    const tables = (
      await db.pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
    ).rows
      .map((r) => r.tablename)
      .sort();
    expect(tables).toEqual([
      'pool_items',
      'pool_reaper_assigned',
      'pool_reaper_assigned_counts',
      'pool_reaper_clusters',
      'pool_reaper_item_failures',
      'pool_reaper_migrations',
      'pool_reaper_passes',
      'pool_reaper_reaped',
      'pool_reaper_state',
      'pool_reaper_sweep',
    ]);
    const indexes = (
      await db.pool.query(
        `SELECT indexname FROM pg_indexes WHERE tablename = 'pool_items' ORDER BY indexname`,
      )
    ).rows
      .map((r) => r.indexname)
      .sort();
    expect(indexes).toEqual([
      'idx_pool_ready',
      'idx_pool_reaper_failed_since',
      'idx_pool_reaper_stale',
      'pool_items_pkey',
    ]);
  });

  it('lets two replicas migrate at once', async () => {
    const fresh = await createTestDatabase('migrate_race', { migrate: false });
    try {
      const results = await Promise.all([migrate(fresh.url), migrate(fresh.url), migrate(fresh.url)]);
      // Every migration applied exactly once across the racing replicas.
      expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(
        MIGRATIONS.map((m) => m.version),
      );
    } finally {
      await fresh.drop();
    }
  });
});
