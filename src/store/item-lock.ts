import type { PoolItemRef } from '../shared/types';
import { inTransaction } from './checked-out-client';
import { FAILED_SINCE_SQL, olderThanSql, secs } from './predicates';
import { QuarantineStore } from './quarantine';

/** Another reaper (or a provisioner transaction) holds the row: try again shortly. */
export class ItemLockedError extends Error {
  override readonly name = 'ItemLockedError';
}

/** Another live (ready or assigned) row carries the same pool token: an operator must look. */
export class SharedPoolTokenError extends Error {
  override readonly name = 'SharedPoolTokenError';
  /** True when the live row appeared while this item's teardown ran (the race, not a standing share). */
  readonly raced: boolean;
  constructor(message: string, options: { raced?: boolean } = {}) {
    super(message);
    this.raced = options.raced ?? false;
  }
}

/** Another row, not failed, with the same token as `p`. */
export const TOKEN_SHARED_SQL = `EXISTS (SELECT 1 FROM pool_items o
                           WHERE o.pool_token = p.pool_token AND o.id <> p.id AND o.status <> 'failed')`;

export type LockedRun<T> =
  | { readonly ran: true; readonly value: T }
  | { readonly ran: false; readonly reason: string };

/**
 * What a locked teardown requires of its row. `failed`: still failed and past the failed
 * grace (as listed). `assigned` (an orphan): still assigned with exactly the listed
 * assigned_at, the same type and cluster, and past the orphan grace.
 */
export type RowExpectation =
  | { readonly status: 'failed'; readonly graceMs: number }
  | { readonly status: 'assigned'; readonly graceMs: number; readonly assignedAt: string };

export interface LockedRow {
  status: string;
  pool_token: string;
  resource_type: string;
  provider_resource_id: string;
  stale: boolean | null;
  same_assigned_at: boolean | null;
  token_shared?: boolean;
}

/** Why the row is no longer the one the caller expects, or undefined when it still is. */
export function rowMismatch(
  row: LockedRow | undefined,
  item: PoolItemRef,
  expected: RowExpectation,
): string | undefined {
  if (!row) return 'row no longer exists';
  if (row.pool_token !== item.poolToken) return 'row pool_token changed since listing';
  if (expected.status === 'failed') {
    // Exactly the checks a stale failed item has always had.
    if (row.status !== 'failed') return `row status is now ${row.status}`;
    if (!row.stale) return 'row is no longer past the failed grace';
    return undefined;
  }
  if (row.status !== 'assigned') return `row status is now ${row.status}`;
  if (row.same_assigned_at !== true) return 'row assigned_at changed since listing';
  if (row.resource_type !== item.resourceType) return 'row resource_type changed since listing';
  if (row.provider_resource_id !== item.providerResourceId)
    return 'row provider_resource_id changed since listing';
  if (!row.stale) return 'row is not past the orphan grace';
  return undefined;
}

/** The item row lock every teardown runs under, and the conditional delete that follows it. */
export class ItemLockStore extends QuarantineStore {
  /**
   * Runs `fn` while holding the item's row lock (FOR UPDATE NOWAIT), only if the row still
   * matches `expected`; otherwise nothing runs and the reason is returned. Claim and Discard
   * both update the row, so neither can move it while `fn` runs.
   */
  async withItemLocked<T>(
    item: PoolItemRef,
    expected: RowExpectation,
    fn: () => Promise<T>,
  ): Promise<LockedRun<T>> {
    const outcome = await inTransaction(
      this.pool,
      async (client): Promise<LockedRun<T> | { mismatch: string }> => {
        let rows: LockedRow[];
        try {
          ({ rows } = await client.query<LockedRow>(
            `SELECT p.status, p.pool_token, p.resource_type, p.provider_resource_id,
                    ${olderThanSql(FAILED_SINCE_SQL, '$2')} AS stale,
                    p.assigned_at = $3::timestamptz AS same_assigned_at,
                    ${TOKEN_SHARED_SQL} AS token_shared
               FROM pool_items p WHERE p.id = $1 FOR UPDATE OF p NOWAIT`,
            [item.id, secs(expected.graceMs), expected.status === 'assigned' ? expected.assignedAt : null],
          ));
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') {
            throw new ItemLockedError(`pool item ${item.id} is locked by another transaction`);
          }
          throw err;
        }
        const reason = rowMismatch(rows[0], item, expected);
        if (reason !== undefined) return { mismatch: reason };
        if (rows[0]?.token_shared) {
          // Every infra name derives from the token: tearing this one down would take a live
          // item's database, keys and users with it. Needs an operator, never a retry.
          throw new SharedPoolTokenError(
            `pool token ${item.poolToken} is also used by a ready or assigned row; refusing to tear it down`,
          );
        }
        const value = await fn();
        // The provisioner may have inserted a live row with this token while the teardown ran
        // (pool_items has no unique token, and nothing the reaper may touch can stop an
        // insert): look again before the teardown counts as done. The row stays, the item is
        // refused and quarantined, and the audit line says so; see docs/reliability.md.
        const { rows: after } = await client.query<{ token_shared: boolean }>(
          `SELECT ${TOKEN_SHARED_SQL} AS token_shared FROM pool_items p WHERE p.id = $1`,
          [item.id],
        );
        if (after[0]?.token_shared) {
          throw new SharedPoolTokenError(
            `pool token ${item.poolToken} was given to a ready or assigned row while its teardown ran; ` +
              'the failed row is kept and an operator must check the live item',
            { raced: true },
          );
        }
        return { ran: true, value };
      },
      // A worker that hangs must not hold the row forever. Sent with BEGIN: one round trip.
      "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '15min'",
    );
    return 'mismatch' in outcome ? { ran: false, reason: outcome.mismatch } : outcome;
  }

  /**
   * One statement, so one round trip and atomic: delete the row if it still matches, forget
   * its failure record, leave a tombstone. When nothing matched, a tombstone left by an
   * earlier attempt (the worker died after its commit) still counts as deleted: the CTE's
   * own insert is invisible to this statement's snapshot, so `tombstoned` sees only those.
   */
  protected async deleteReaped(item: PoolItemRef, condition: string, extra: unknown[]): Promise<boolean> {
    const { rows } = await this.pool.query<{ deleted: boolean; tombstoned: boolean }>(
      `WITH gone AS (
         DELETE FROM pool_items WHERE id = $1 AND pool_token = $2 AND ${condition}
         RETURNING id, pool_token
       ), forgotten AS (
         DELETE FROM pool_reaper_item_failures WHERE item_id IN (SELECT id FROM gone)
       ), tombstone AS (
         INSERT INTO pool_reaper_reaped (item_id, pool_token, resource_type)
         SELECT id, pool_token, $3 FROM gone
         ON CONFLICT (item_id) DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM gone) AS deleted,
              EXISTS (SELECT 1 FROM pool_reaper_reaped WHERE item_id = $1 AND pool_token = $2) AS tombstoned`,
      [item.id, item.poolToken, item.resourceType, ...extra],
    );
    return rows[0]?.deleted === true || rows[0]?.tombstoned === true;
  }
}
