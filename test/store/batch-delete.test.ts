import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteFailedItems } from '../../src/store/batch-delete';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { insertRow } from '../helpers/rows';

const HOUR = 3_600_000;

/** The pass's batched row delete keeps the per-row rules of PoolStore.deleteFailedItem. */
describe('deleteFailedItems (one statement per batch)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('batch_delete');
  });
  afterAll(async () => {
    await db?.drop();
  });

  const statusOf = async (id: string) =>
    (await db.pool.query<{ status: string }>('SELECT status FROM pool_items WHERE id = $1', [id])).rows[0]
      ?.status;

  it('deletes only rows still failed with the same token, answers in order, and answers a retry the same', async () => {
    const a = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const revived = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const b = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    // Since its teardown, the provisioner took this row back: it must stay.
    await db.pool.query(`UPDATE pool_items SET status = 'ready' WHERE id = $1`, [revived.id]);
    // Another row with a's id but a token that is not the listed one is never the listed item.
    const wrongToken = { ...b, poolToken: 'pool-00000000-0000-4000-8000-000000000000' };
    await db.pool.query(
      `INSERT INTO pool_reaper_item_failures (item_id, pool_token, resource_type, failures, last_error_type)
       VALUES ($1, $2, 'queue', 1, 'TransientTeardownError')`,
      [a.id, a.poolToken],
    );

    expect(await deleteFailedItems(db.pool, [a, revived, wrongToken])).toEqual([true, false, false]);
    expect(await statusOf(a.id)).toBeUndefined();
    expect(await statusOf(revived.id)).toBe('ready');
    expect(await statusOf(b.id)).toBe('failed');
    const { rows: failures } = await db.pool.query(
      'SELECT 1 FROM pool_reaper_item_failures WHERE item_id = $1',
      [a.id],
    );
    expect(failures).toHaveLength(0);

    // A retried batch (the worker died after the commit): a's tombstone answers for it.
    expect(await deleteFailedItems(db.pool, [a, b])).toEqual([true, true]);
    expect(await deleteFailedItems(db.pool, [b, a])).toEqual([true, true]);
    expect(await statusOf(b.id)).toBeUndefined();
    expect(await deleteFailedItems(db.pool, [])).toEqual([]);
  });
});
