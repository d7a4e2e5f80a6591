import type { PoolItemRef } from '../shared/types';
import { type Backoff, backoffSecsSql, countOncePerPassSql } from './backoff';
import { secs } from './predicates';
import { ReaperStateStore } from './reaper-state';
import { countsOf } from './store-rows';

export type { Backoff } from './backoff';

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

/** A retryable failure, as the backoff upserts record it. */
interface RetryableFailure {
  readonly passId: string;
  readonly errorType: string;
  readonly message: string;
}

/**
 * What both backoff upserts take after their key, in this order: error type, message (cut
 * to 2,000 characters), pass id, then the backoff's base and max in seconds.
 */
const backoffParams = (failure: RetryableFailure, backoff: Backoff) => [
  failure.errorType,
  failure.message.slice(0, 2000),
  failure.passId,
  secs(backoff.baseMs),
  secs(backoff.maxMs),
];

/** Needs-an-operator failures, deferrals after retryable ones, clusters marked down; quarantine listing and release. */
export class QuarantineStore extends ReaperStateStore {
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
   * its next attempt waits base × 2^(passes it failed in − 1), capped (backoffMs in
   * src/store/backoff.ts, the same rule as a cluster's). Counted once per pass
   * however many attempts the pass made. Never counts towards quarantine.
   */
  async deferItem(
    item: PoolItemRef,
    failure: RetryableFailure,
    backoff: Backoff,
  ): Promise<{ deferrals: number; nextAttemptAt: Date }> {
    const deferrals = countOncePerPassSql('f', 'deferrals');
    const { rows } = await this.pool.query<{ deferrals: number; next_attempt_at: Date }>(
      `INSERT INTO pool_reaper_item_failures AS f
              (item_id, pool_token, resource_type, deferrals, last_error_type, last_error,
               next_attempt_at, last_pass_id)
       VALUES ($1, $2, $3, 1, $4, $5, now() + make_interval(secs => ${backoffSecsSql('1', '$7', '$8')}), $6)
       ON CONFLICT (item_id) DO UPDATE SET
         deferrals = ${deferrals},
         last_error_type = EXCLUDED.last_error_type,
         last_error = EXCLUDED.last_error,
         last_failed_at = now(),
         last_pass_id = EXCLUDED.last_pass_id,
         next_attempt_at = now() + make_interval(secs => ${backoffSecsSql(deferrals, '$7', '$8')})
       RETURNING deferrals, next_attempt_at`,
      [item.id, item.poolToken, item.resourceType, ...backoffParams(failure, backoff)],
    );
    const row = rows[0]!;
    return { deferrals: row.deferrals, nextAttemptAt: row.next_attempt_at };
  }

  /**
   * Marks a cluster down after a cluster-scoped failure: listings leave its items out until
   * retry_at (base × 2^(passes it failed in − 1), capped: backoffMs in src/store/backoff.ts,
   * the same rule as an item's), then probe it with one item.
   */
  async recordClusterFailure(
    cluster: { resourceType: string; cluster: string },
    failure: RetryableFailure,
    backoff: Backoff,
  ): Promise<{ failures: number; retryAt: Date }> {
    const failures = countOncePerPassSql('k', 'failures');
    const { rows } = await this.pool.query<{ failures: number; retry_at: Date }>(
      `INSERT INTO pool_reaper_clusters AS k
              (resource_type, cluster, failures, last_error_type, last_error, last_pass_id, retry_at)
       VALUES ($1, $2, 1, $3, $4, $5, now() + make_interval(secs => ${backoffSecsSql('1', '$6', '$7')}))
       ON CONFLICT (resource_type, cluster) DO UPDATE SET
         failures = ${failures},
         last_error_type = EXCLUDED.last_error_type,
         last_error = EXCLUDED.last_error,
         last_pass_id = EXCLUDED.last_pass_id,
         updated_at = now(),
         retry_at = now() + make_interval(secs => ${backoffSecsSql(failures, '$6', '$7')})
       RETURNING failures, retry_at`,
      [cluster.resourceType, cluster.cluster, ...backoffParams(failure, backoff)],
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
}
