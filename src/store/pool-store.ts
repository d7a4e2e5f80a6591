import pg from 'pg';
import { countsByType } from '../shared/keyed';
import type { ClusterDown, ListedItem, PoolItemRef } from '../shared/types';
import { inTransaction } from './checked-out-client';
import { CLUSTER_SQL, FAILED_SINCE_SQL, secs, staleFailedSql } from './predicates';

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
const TOKEN_SHARED_SQL = `EXISTS (SELECT 1 FROM pool_items o
                           WHERE o.pool_token = p.pool_token AND o.id <> p.id AND o.status <> 'failed')`;

/** Exponential backoff bounds. */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** One (type, cluster) of the stale failed backlog. */
export interface BacklogRow {
  readonly resourceType: string;
  readonly cluster: string;
  readonly items: number;
  readonly oldestAgeSeconds: number;
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
  /** Passes in which a retryable failure of its own deferred it. */
  readonly deferrals: number;
  /** Not listed before this (after a retryable failure); null when not deferred. */
  readonly nextAttemptAt: Date | null;
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

  /**
   * One batch of stale failed items, fair across clusters: each (type, cluster) contributes
   * its oldest item in turn (round robin by rank, then age), so a large backlog or a broken
   * cluster never keeps the others' items out of the batch. Left out: quarantined items,
   * items deferred after a retryable failure (until next_attempt_at), and the items of a
   * cluster marked down, except one probe item per such cluster once its retry_at has come.
   */
  async listStaleFailed(graceMs: number, limit: number): Promise<ListedItem[]> {
    const { rows } = await this.pool.query<{
      id: string;
      resource_type: string;
      pool_token: string;
      provider_resource_id: string;
      probe: boolean;
    }>(
      `WITH candidates AS (
         SELECT p.id, p.resource_type, p.pool_token, p.provider_resource_id,
                ${FAILED_SINCE_SQL} AS failed_since, ${CLUSTER_SQL} AS cluster
           FROM pool_items p
          WHERE ${staleFailedSql('$1')}
            AND NOT EXISTS (SELECT 1 FROM pool_reaper_item_failures f
                             WHERE f.item_id = p.id
                               AND (f.quarantined_at IS NOT NULL OR f.next_attempt_at > now()))
       ), ranked AS (
         SELECT c.*, k.retry_at,
                row_number() OVER (PARTITION BY c.resource_type, c.cluster
                                   ORDER BY c.failed_since, c.id) AS rank
           FROM candidates c
           LEFT JOIN pool_reaper_clusters k ON k.resource_type = c.resource_type AND k.cluster = c.cluster
       )
       SELECT id, resource_type, pool_token, provider_resource_id, retry_at IS NOT NULL AS probe
         FROM ranked
        WHERE retry_at IS NULL OR (retry_at <= now() AND rank = 1)
        ORDER BY rank, failed_since, id
        LIMIT $2`,
      [secs(graceMs), limit],
    );
    return rows.map((r) => (r.probe ? { ...toRef(r), probe: true } : toRef(r)));
  }

  /** Clusters marked down (oldest first), with how many stale failed items wait on each. */
  async listClustersDown(graceMs: number): Promise<ClusterDown[]> {
    const { rows } = await this.pool.query<{
      resource_type: string;
      cluster: string;
      failures: number;
      last_error_type: string;
      last_error: string;
      down_since: Date;
      retry_at: Date;
      waiting: string;
    }>(
      `SELECT k.resource_type, k.cluster, k.failures, k.last_error_type, k.last_error, k.down_since, k.retry_at,
              (SELECT count(*) FROM pool_items p
                WHERE ${staleFailedSql('$1')} AND p.resource_type = k.resource_type
                  AND ${CLUSTER_SQL} = k.cluster) AS waiting
         FROM pool_reaper_clusters k
        ORDER BY k.down_since, k.resource_type, k.cluster`,
      [secs(graceMs)],
    );
    return rows.map((r) => ({
      resourceType: r.resource_type,
      cluster: r.cluster,
      failures: r.failures,
      lastErrorType: r.last_error_type,
      lastError: r.last_error,
      downSince: r.down_since.toISOString(),
      retryAt: r.retry_at.toISOString(),
      waiting: Number(r.waiting),
    }));
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
        let rows: LockedRow[];
        try {
          ({ rows } = await client.query<LockedRow>(
            `SELECT p.status, p.pool_token, p.resource_type, p.provider_resource_id,
                    ${FAILED_SINCE_SQL} < now() - make_interval(secs => $2) AS stale,
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

  /** Without a lock: why the row is no longer the orphan that was listed, or undefined. */
  async assignedRowMismatch(
    item: PoolItemRef,
    assignedAt: string,
    graceMs: number,
  ): Promise<string | undefined> {
    const { rows } = await this.pool.query<LockedRow>(
      `SELECT p.status, p.pool_token, p.resource_type, p.provider_resource_id,
              p.assigned_at < now() - make_interval(secs => $2) AS stale,
              p.assigned_at = $3::timestamptz AS same_assigned_at
         FROM pool_items p WHERE p.id = $1`,
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

  /**
   * Defers an item after a retryable failure of its own, so it stops heading every listing:
   * its next attempt waits base × 2^(passes it failed in − 1), capped. Counted once per pass
   * however many attempts the pass made. Never counts towards quarantine.
   */
  async deferItem(
    item: PoolItemRef,
    failure: { passId: string; errorType: string; message: string },
    backoff: Backoff,
  ): Promise<{ deferrals: number; nextAttemptAt: Date }> {
    const { rows } = await this.pool.query<{ deferrals: number; next_attempt_at: Date }>(
      `INSERT INTO pool_reaper_item_failures AS f
              (item_id, pool_token, resource_type, deferrals, last_error_type, last_error,
               next_attempt_at, last_pass_id)
       VALUES ($1, $2, $3, 1, $4, $5, now() + make_interval(secs => $7), $6)
       ON CONFLICT (item_id) DO UPDATE SET
         deferrals = f.deferrals + (f.last_pass_id IS DISTINCT FROM EXCLUDED.last_pass_id)::int,
         last_error_type = EXCLUDED.last_error_type,
         last_error = EXCLUDED.last_error,
         last_failed_at = now(),
         last_pass_id = EXCLUDED.last_pass_id,
         next_attempt_at = now() + make_interval(secs => least($8::float8,
           $7::float8 * power(2, least(30, f.deferrals + (f.last_pass_id IS DISTINCT FROM EXCLUDED.last_pass_id)::int - 1))))
       RETURNING deferrals, next_attempt_at`,
      [
        item.id,
        item.poolToken,
        item.resourceType,
        failure.errorType,
        failure.message.slice(0, 2000),
        failure.passId,
        secs(backoff.baseMs),
        secs(backoff.maxMs),
      ],
    );
    const row = rows[0]!;
    return { deferrals: row.deferrals, nextAttemptAt: row.next_attempt_at };
  }

  /**
   * Marks a cluster down after a cluster-scoped failure: listings leave its items out until
   * retry_at (base × 2^(passes it failed in − 1), capped), then probe it with one item.
   */
  async recordClusterFailure(
    cluster: { resourceType: string; cluster: string },
    failure: { passId: string; errorType: string; message: string },
    backoff: Backoff,
  ): Promise<{ failures: number; retryAt: Date }> {
    const { rows } = await this.pool.query<{ failures: number; retry_at: Date }>(
      `INSERT INTO pool_reaper_clusters AS k
              (resource_type, cluster, failures, last_error_type, last_error, last_pass_id, retry_at)
       VALUES ($1, $2, 1, $3, $4, $5, now() + make_interval(secs => $6))
       ON CONFLICT (resource_type, cluster) DO UPDATE SET
         failures = k.failures + (k.last_pass_id IS DISTINCT FROM EXCLUDED.last_pass_id)::int,
         last_error_type = EXCLUDED.last_error_type,
         last_error = EXCLUDED.last_error,
         last_pass_id = EXCLUDED.last_pass_id,
         updated_at = now(),
         retry_at = now() + make_interval(secs => least($7::float8,
           $6::float8 * power(2, least(30, k.failures + (k.last_pass_id IS DISTINCT FROM EXCLUDED.last_pass_id)::int - 1))))
       RETURNING failures, retry_at`,
      [
        cluster.resourceType,
        cluster.cluster,
        failure.errorType,
        failure.message.slice(0, 2000),
        failure.passId,
        secs(backoff.baseMs),
        secs(backoff.maxMs),
      ],
    );
    const row = rows[0]!;
    return { failures: row.failures, retryAt: row.retry_at };
  }

  /** The cluster answered again: its items are listed as usual from the next pass on. */
  async clearClusterDown(cluster: { resourceType: string; cluster: string }): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM pool_reaper_clusters WHERE resource_type = $1 AND cluster = $2',
      [cluster.resourceType, cluster.cluster],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Claims the right to count a pass: true once per pass id, however often it is asked. */
  async claimPassRecord(passId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'INSERT INTO pool_reaper_passes (pass_id) VALUES ($1) ON CONFLICT (pass_id) DO NOTHING',
      [passId],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Pass records only guard against retried recordings; drop them with the tombstones. */
  async prunePassRecords(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM pool_reaper_passes WHERE recorded_at < now() - make_interval(secs => $1)',
      [secs(olderThanMs)],
    );
    return rowCount ?? 0;
  }

  /** Stale failed items per type and cluster, with the age of the oldest (the backlog gauges). */
  async backlog(graceMs: number): Promise<BacklogRow[]> {
    const { rows } = await this.pool.query<{
      resource_type: string;
      cluster: string;
      n: string;
      oldest_age_s: number;
    }>(
      `SELECT p.resource_type, ${CLUSTER_SQL} AS cluster, count(*) AS n,
              extract(epoch FROM now() - min(${FAILED_SINCE_SQL}))::float8 AS oldest_age_s
         FROM pool_items p
        WHERE ${staleFailedSql('$1')}
        GROUP BY 1, 2`,
      [secs(graceMs)],
    );
    return rows.map((r) => ({
      resourceType: r.resource_type,
      cluster: r.cluster,
      items: Number(r.n),
      oldestAgeSeconds: r.oldest_age_s,
    }));
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
      deferrals: r.deferrals ?? 0,
      nextAttemptAt: r.next_attempt_at ?? null,
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
