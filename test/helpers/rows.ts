import type pg from 'pg';
import { insertPoolItemRow, newPoolToken, type PoolItemStatus, type Queryable } from '../../src/dev/seed';
import type { PoolItemRef } from '../../src/shared/types';

/** A pool_items row with no infra behind it (queue/mongodb items, refused tokens, unreachable clusters). */
export async function insertRow(
  pool: Queryable,
  row: {
    resourceType: string;
    status: PoolItemStatus;
    ageMs: number;
    poolToken?: string;
    providerResourceId?: string;
  },
): Promise<PoolItemRef & { ageMs: number }> {
  const poolToken = row.poolToken ?? newPoolToken();
  const ref = await insertPoolItemRow(pool, {
    ...row,
    poolToken,
    connectionUrl: `nats://usr_${poolToken}:not-a-real-secret@127.0.0.1:4222`,
  });
  return { ...ref, ageMs: row.ageMs };
}

/**
 * Holds a pool_items row's lock (FOR UPDATE, in a transaction of its own) until `release`:
 * the item's teardown then fails with the transient ItemLockedError and is retried, touching
 * nothing. Fault tests use it so that work is left when the fault hits, however fast drops are.
 * `release` may be called more than once.
 */
export async function holdRowLock(pool: pg.Pool, id: string): Promise<() => Promise<void>> {
  const holder = await pool.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM pool_items WHERE id = $1 FOR UPDATE', [id]);
  let held = true;
  return async () => {
    if (!held) return;
    held = false;
    await holder.query('ROLLBACK').catch(() => undefined);
    holder.release();
  };
}
