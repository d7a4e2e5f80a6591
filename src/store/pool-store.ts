import pg from 'pg';
import { countsByType } from '../shared/keyed';
import type { PoolItemRef } from '../shared/types';
import { inTransaction } from './checked-out-client';

/** Another reaper (or a provisioner transaction) holds the row: try again shortly. */
export class ItemLockedError extends Error {
  override readonly name = 'ItemLockedError';
}

/** Another live (ready or assigned) row carries the same pool token: an operator must look. */
export class SharedPoolTokenError extends Error {
  override readonly name = 'SharedPoolTokenError';
  readonly retryable = false;
  readonly category = 'operator';
}

export type LockedRun<T> =
  | { readonly ran: true; readonly value: T }
  | { readonly ran: false; readonly reason: string };

export interface QuarantineRow {
  readonly itemId: string;
  readonly poolToken: string;
  readonly resourceType: string;
  readonly failures: number;
  readonly lastErrorType: string;
  readonly lastError: string;
  readonly firstFailedAt: Date;
  readonly lastFailedAt: Date;
  readonly quarantinedAt: Date | null;
  /** False when the provisioner has since deleted the row. */
  readonly rowExists: boolean;
}

export interface FailureRecord {
  readonly failures: number;
  readonly quarantined: boolean;
}

export type ReleaseSelector =
  | { readonly itemId: string }
  | { readonly poolToken: string }
  | { readonly all: true };

/**
 * What a locked teardown requires of its row. `failed`: still failed and past the failed
 * grace (as listed). `assigned` (an orphan): still assigned with exactly the listed
 * assigned_at, the same type and cluster, and past the orphan grace.
 */
export type RowExpectation =
  | { readonly status: 'failed'; readonly graceMs: number }
  | { readonly status: 'assigned'; readonly graceMs: number; readonly assignedAt: string };

interface LockedRow {
  status: string;
  pool_token: string;
  resource_type: string;
  provider_resource_id: string;
  stale: boolean | null;
  same_assigned_at: boolean | null;
  token_shared?: boolean;
}

/** Why the row is no longer the one the caller expects, or undefined when it still is. */
function rowMismatch(
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

const secs = (ms: number) => ms / 1000;

function toRef(row: {
  id: string;
  resource_type: string;
  pool_token: string;
  provider_resource_id: string;
}): PoolItemRef {
  return {
    id: row.id,
    resourceType: row.resource_type,
    poolToken: row.pool_token,
    providerResourceId: row.provider_resource_id,
  };
}

/**
 * Per type, with every known type present so a type that went to zero is exported as 0.
 * Prototype-free: a resource_type of `__proto__` is an ordinary key.
 */
export function withKnownTypes(counts: Readonly<Record<string, number>>): Record<string, number> {
  return countsByType(Object.entries(counts));
}

/** `resource_type, n` rows of a GROUP BY as counts per type (every known type present). */
function countsOf(rows: readonly { resource_type: string; n: string }[]): Record<string, number> {
  return countsByType(rows.map((r) => [r.resource_type, Number(r.n)] as const));
}

/**
 * All SQL the reaper runs against the provisioner's database: reads of pool_items, the
 * conditional delete, and the reaper's own tables. It never updates a provisioner column.
 */
export class PoolStore {
  constructor(
    readonly pool: pg.Pool,
    onIdleError: (err: Error) => void = () => undefined,
  ) {
    // An idle connection that the server closes (restart, pg_terminate_backend, failover) is
    // discarded by the pool; without a listener Node would treat it as an uncaught error.
    pool.on('error', onIdleError);
  }

  static connect(url: string, maxConnections: number, onIdleError?: (err: Error) => void): PoolStore {
    return new PoolStore(
      new pg.Pool({
        connectionString: url,
        max: maxConnections,
        application_name: 'pool-reaper',
        connectionTimeoutMillis: 10_000,
        statement_timeout: 30_000,
      }),
      onIdleError,
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Oldest first; quarantined rows are left out so one bad row cannot starve the batch. */
  async listStaleFailed(graceMs: number, limit: number): Promise<PoolItemRef[]> {
    const { rows } = await this.pool.query(
      `SELECT p.id, p.resource_type, p.pool_token, p.provider_resource_id
         FROM pool_items p
        WHERE p.status = 'failed'
          AND p.assigned_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM pool_reaper_item_failures f
                           WHERE f.item_id = p.id AND f.quarantined_at IS NOT NULL)
        ORDER BY p.assigned_at ASC, p.id
        LIMIT $2`,
      [secs(graceMs), limit],
    );
    return rows.map(toRef);
  }

  /**
   * Runs `fn` while holding the item's row lock, only if the row is still the stale failed
   * item that was listed. The lock keeps the provisioner (and any other reaper) from moving
   * the row while its infra is being torn down.
   */
  async withStaleFailedItemLocked<T>(
    item: PoolItemRef,
    graceMs: number,
    fn: () => Promise<T>,
  ): Promise<LockedRun<T>> {
    return this.withItemLocked(item, { status: 'failed', graceMs }, fn);
  }

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
        // A worker that hangs must not hold the row forever.
        await client.query("SET LOCAL idle_in_transaction_session_timeout = '15min'");
        let rows: LockedRow[];
        try {
          ({ rows } = await client.query<LockedRow>(
            `SELECT status, pool_token, resource_type, provider_resource_id,
                  assigned_at < now() - make_interval(secs => $2) AS stale,
                  assigned_at = $3::timestamptz AS same_assigned_at,
                  EXISTS (SELECT 1 FROM pool_items o
                           WHERE o.pool_token = pool_items.pool_token AND o.id <> pool_items.id
                             AND o.status <> 'failed') AS token_shared
             FROM pool_items WHERE id = $1 FOR UPDATE NOWAIT`,
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
        return { ran: true, value: await fn() };
      },
    );
    return 'mismatch' in outcome ? { ran: false, reason: outcome.mismatch } : outcome;
  }

  /** Without a lock: why the row is no longer the orphan that was listed, or undefined. */
  async assignedRowMismatch(
    item: PoolItemRef,
    assignedAt: string,
    graceMs: number,
  ): Promise<string | undefined> {
    const { rows } = await this.pool.query<LockedRow>(
      `SELECT status, pool_token, resource_type, provider_resource_id,
              assigned_at < now() - make_interval(secs => $2) AS stale,
              assigned_at = $3::timestamptz AS same_assigned_at
         FROM pool_items WHERE id = $1`,
      [item.id, secs(graceMs), assignedAt],
    );
    return rowMismatch(rows[0], item, { status: 'assigned', graceMs, assignedAt });
  }

  /** Deletes the row only if it is still the same failed item; forgets its failure record. */
  async deleteFailedItem(item: PoolItemRef): Promise<boolean> {
    return this.deleteReaped(item, `status = 'failed'`, []);
  }

  /**
   * Deletes an orphan's row only if it is still assigned with the assigned_at it was listed
   * with (a Claim or Discard since then changes it); forgets its failure record.
   */
  async deleteAssignedItem(item: PoolItemRef, assignedAt: string): Promise<boolean> {
    return this.deleteReaped(item, `status = 'assigned' AND assigned_at = $4::timestamptz`, [assignedAt]);
  }

  /**
   * One statement, so one round trip and atomic: delete the row if it still matches, forget
   * its failure record, leave a tombstone. When nothing matched, a tombstone left by an
   * earlier attempt (the worker died after its commit) still counts as deleted: the CTE's
   * own insert is invisible to this statement's snapshot, so `tombstoned` sees only those.
   */
  private async deleteReaped(item: PoolItemRef, condition: string, extra: unknown[]): Promise<boolean> {
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

  /** Tombstones only answer retries; keep them a while for audits, then drop them. */
  async pruneReaped(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM pool_reaper_reaped WHERE reaped_at < now() - make_interval(secs => $1)',
      [secs(olderThanMs)],
    );
    return rowCount ?? 0;
  }

  async countStuckAssigned(graceMs: number): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ resource_type: string; n: string }>(
      `SELECT resource_type, count(*) AS n FROM pool_items
        WHERE status = 'assigned' AND assigned_at < now() - make_interval(secs => $1)
        GROUP BY resource_type`,
      [secs(graceMs)],
    );
    return countsOf(rows);
  }

  /** Counts one needs-an-operator failure; quarantines the row at the threshold. */
  async recordFailure(
    item: PoolItemRef,
    errorType: string,
    message: string,
    quarantineAfter: number,
  ): Promise<FailureRecord> {
    const { rows } = await this.pool.query<{ failures: number; quarantined: boolean }>(
      `INSERT INTO pool_reaper_item_failures AS f
              (item_id, pool_token, resource_type, failures, last_error_type, last_error, quarantined_at)
       VALUES ($1, $2, $3, 1, $4, $5, CASE WHEN 1 >= $6 THEN now() END)
       ON CONFLICT (item_id) DO UPDATE SET
         failures = f.failures + 1,
         last_error_type = EXCLUDED.last_error_type,
         last_error = EXCLUDED.last_error,
         last_failed_at = now(),
         quarantined_at = COALESCE(f.quarantined_at, CASE WHEN f.failures + 1 >= $6 THEN now() END)
       RETURNING failures, quarantined_at IS NOT NULL AS quarantined`,
      [item.id, item.poolToken, item.resourceType, errorType, message.slice(0, 2000), quarantineAfter],
    );
    const row = rows[0]!;
    return { failures: row.failures, quarantined: row.quarantined };
  }

  async listFailures(options: { quarantinedOnly?: boolean } = {}): Promise<QuarantineRow[]> {
    const { rows } = await this.pool.query(
      `SELECT f.*, (p.id IS NOT NULL) AS row_exists
         FROM pool_reaper_item_failures f LEFT JOIN pool_items p ON p.id = f.item_id
        ${options.quarantinedOnly ? 'WHERE f.quarantined_at IS NOT NULL' : ''}
        ORDER BY f.last_failed_at DESC`,
    );
    return rows.map((r) => ({
      itemId: r.item_id,
      poolToken: r.pool_token,
      resourceType: r.resource_type,
      failures: r.failures,
      lastErrorType: r.last_error_type,
      lastError: r.last_error,
      firstFailedAt: r.first_failed_at,
      lastFailedAt: r.last_failed_at,
      quarantinedAt: r.quarantined_at,
      rowExists: r.row_exists,
    }));
  }

  /** Forgets the failure history of the selected rows, so the next pass tries them again. */
  async releaseQuarantine(selector: ReleaseSelector): Promise<QuarantineRow[]> {
    const released = await this.listFailures({ quarantinedOnly: true });
    const chosen = released.filter((r) =>
      'all' in selector
        ? true
        : 'itemId' in selector
          ? r.itemId === selector.itemId
          : r.poolToken === selector.poolToken,
    );
    if (chosen.length === 0) return [];
    await this.pool.query('DELETE FROM pool_reaper_item_failures WHERE item_id = ANY($1::uuid[])', [
      chosen.map((r) => r.itemId),
    ]);
    return chosen;
  }

  /** Quarantined rows that still exist as failed items, per type. */
  async countQuarantined(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ resource_type: string; n: string }>(
      `SELECT p.resource_type, count(*) AS n
         FROM pool_reaper_item_failures f JOIN pool_items p ON p.id = f.item_id
        WHERE f.quarantined_at IS NOT NULL AND p.status = 'failed'
        GROUP BY p.resource_type`,
    );
    return countsOf(rows);
  }

  async writeState(key: string, value: unknown): Promise<void> {
    await this.pool.query(
      `INSERT INTO pool_reaper_state (key, value, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [key, JSON.stringify(value)],
    );
  }

  async readState<T>(key: string): Promise<{ value: T; updatedAt: Date } | undefined> {
    const { rows } = await this.pool.query('SELECT value, updated_at FROM pool_reaper_state WHERE key = $1', [
      key,
    ]);
    const row = rows[0];
    return row ? { value: row.value as T, updatedAt: row.updated_at } : undefined;
  }
}
