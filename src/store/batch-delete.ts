import type { PoolItemRef } from '../shared/types';

/** Anything that can run a query (a pg.Pool). */
interface Queryable {
  query<R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * The batched form of PoolStore.deleteFailedItem: one statement and one round trip for a
 * whole batch of freed items, with the same per-row rules. A row goes only if it is still
 * the same `failed` item (id and token); its failure record is forgotten and a tombstone
 * left. An item whose row is already gone but whose tombstone an earlier attempt left (the
 * worker died after its commit) still counts as deleted, so a retried batch answers the same.
 * Returns one flag per item, in input order.
 */
export async function deleteFailedItems(pool: Queryable, items: readonly PoolItemRef[]): Promise<boolean[]> {
  if (items.length === 0) return [];
  const { rows } = await pool.query<{ ord: number; deleted: boolean; tombstoned: boolean }>(
    `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS i(id, pool_token, resource_type, ord)
     ), gone AS (
       DELETE FROM pool_items p USING input i
        WHERE p.id = i.id AND p.pool_token = i.pool_token AND p.status = 'failed'
       RETURNING p.id, p.pool_token
     ), forgotten AS (
       DELETE FROM pool_reaper_item_failures WHERE item_id IN (SELECT id FROM gone)
     ), tombstone AS (
       INSERT INTO pool_reaper_reaped (item_id, pool_token, resource_type)
       SELECT g.id, g.pool_token, i.resource_type FROM gone g JOIN input i ON i.id = g.id
       ON CONFLICT (item_id) DO NOTHING
     )
     SELECT i.ord::int AS ord,
            EXISTS (SELECT 1 FROM gone g WHERE g.id = i.id) AS deleted,
            EXISTS (SELECT 1 FROM pool_reaper_reaped r WHERE r.item_id = i.id AND r.pool_token = i.pool_token) AS tombstoned
       FROM input i`,
    [items.map((i) => i.id), items.map((i) => i.poolToken), items.map((i) => i.resourceType)],
  );
  const done = new Array<boolean>(items.length).fill(false);
  for (const row of rows) done[row.ord - 1] = row.deleted === true || row.tombstoned === true;
  return done;
}
