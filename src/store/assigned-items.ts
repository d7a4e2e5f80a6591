import type { PoolItemRef } from '../shared/types';
import { ItemLockStore, type LockedRow, rowMismatch } from './item-lock';
import { ASSIGNED_SINCE_SQL, olderThanSql, secs, staleAssignedSql } from './predicates';
import { countsOf } from './store-rows';

/** Assigned items: the stuck count, and the checks and delete of an orphan being reclaimed. */
export class AssignedItemsStore extends ItemLockStore {
  /** Without a lock: why the row is no longer the orphan that was listed, or undefined. */
  async assignedRowMismatch(
    item: PoolItemRef,
    assignedAt: string,
    graceMs: number,
  ): Promise<string | undefined> {
    const { rows } = await this.pool.query<LockedRow>(
      `SELECT p.status, p.pool_token, p.resource_type, p.provider_resource_id,
              ${olderThanSql(ASSIGNED_SINCE_SQL, '$2')} AS stale,
              p.assigned_at = $3::timestamptz AS same_assigned_at
         FROM pool_items p WHERE p.id = $1`,
      [item.id, secs(graceMs), assignedAt],
    );
    return rowMismatch(rows[0], item, { status: 'assigned', graceMs, assignedAt });
  }

  /**
   * Deletes an orphan's row only if it is still assigned with the assigned_at it was listed
   * with (a Claim or Discard since then changes it); forgets its failure record.
   */
  async deleteAssignedItem(item: PoolItemRef, assignedAt: string): Promise<boolean> {
    return this.deleteReaped(item, `status = 'assigned' AND assigned_at = $4::timestamptz`, [assignedAt]);
  }

  async countStuckAssigned(graceMs: number): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ resource_type: string; n: string }>(
      `SELECT resource_type, count(*) AS n FROM pool_items p
        WHERE ${staleAssignedSql('$1')}
        GROUP BY resource_type`,
      [secs(graceMs)],
    );
    return countsOf(rows);
  }
}
