import type pg from 'pg';
import type { PoolItemRef } from '../shared/types';
import { withCheckedOutClient } from '../store/checked-out-client';
import { TOKEN_SHARED_SQL } from '../store/item-lock';
import { CLUSTER_SQL, FAILED_SINCE_SQL, secs, staleFailedSql } from '../store/predicates';

/**
 * Reads for `plan`, `explain` and dry-run passes: a pool item with everything a pass would
 * weigh before touching it (grace, quarantine, backoff, its cluster's circuit, a shared
 * token). SELECTs only; the predicates are the listing's own (src/store/predicates.ts).
 */

/** A pool item as a pass would see it, with the reaper's records about it. */
export interface ItemStanding extends PoolItemRef {
  readonly status: string;
  readonly cluster: string;
  readonly createdAt: Date;
  readonly assignedAt: Date | null;
  /** COALESCE(assigned_at, created_at): since when a failed row counts as failed. */
  readonly failedSince: Date;
  readonly ageMs: number;
  /** Failed and past the failed grace. */
  readonly stale: boolean;
  readonly failures: number;
  readonly quarantinedAt: Date | null;
  readonly deferrals: number;
  readonly nextAttemptAt: Date | null;
  readonly lastErrorType: string | null;
  readonly lastError: string | null;
  /** Set when the item's (type, cluster) is marked down. */
  readonly clusterDown: { readonly retryAt: Date; readonly lastErrorType: string } | null;
  /** A ready or assigned row carries the same pool token. */
  readonly tokenShared: boolean;
}

interface StandingRow {
  id: string;
  resource_type: string;
  pool_token: string;
  provider_resource_id: string;
  status: string;
  cluster: string;
  created_at: Date;
  assigned_at: Date | null;
  failed_since: Date;
  age_s: number;
  stale: boolean;
  failures: number | null;
  quarantined_at: Date | null;
  deferrals: number | null;
  next_attempt_at: Date | null;
  last_error_type: string | null;
  last_error: string | null;
  cluster_retry_at: Date | null;
  cluster_error_type: string | null;
  token_shared: boolean;
}

const standingSql = (where: string, limit: string) => `
  SELECT p.id, p.resource_type, p.pool_token, p.provider_resource_id, p.status, p.created_at, p.assigned_at,
         ${CLUSTER_SQL} AS cluster,
         ${FAILED_SINCE_SQL} AS failed_since,
         extract(epoch FROM now() - ${FAILED_SINCE_SQL})::float8 AS age_s,
         (${staleFailedSql('$1')}) AS stale,
         f.failures, f.quarantined_at, f.deferrals,
         CASE WHEN f.next_attempt_at > now() THEN f.next_attempt_at END AS next_attempt_at,
         f.last_error_type, f.last_error,
         k.retry_at AS cluster_retry_at, k.last_error_type AS cluster_error_type,
         ${TOKEN_SHARED_SQL} AS token_shared
    FROM pool_items p
    LEFT JOIN pool_reaper_item_failures f ON f.item_id = p.id
    LEFT JOIN pool_reaper_clusters k ON k.resource_type = p.resource_type AND k.cluster = ${CLUSTER_SQL}
   WHERE ${where}
   ORDER BY ${FAILED_SINCE_SQL}, p.id
   LIMIT ${limit}`;

function toStanding(r: StandingRow): ItemStanding {
  return {
    id: r.id,
    resourceType: r.resource_type,
    poolToken: r.pool_token,
    providerResourceId: r.provider_resource_id,
    status: r.status,
    cluster: r.cluster,
    createdAt: r.created_at,
    assignedAt: r.assigned_at,
    failedSince: r.failed_since,
    ageMs: Math.max(0, Math.round(r.age_s * 1000)),
    stale: r.stale === true,
    failures: r.failures ?? 0,
    quarantinedAt: r.quarantined_at,
    deferrals: r.deferrals ?? 0,
    nextAttemptAt: r.next_attempt_at,
    lastErrorType: r.last_error_type,
    lastError: r.last_error,
    clusterDown:
      r.cluster_retry_at === null
        ? null
        : { retryAt: r.cluster_retry_at, lastErrorType: r.cluster_error_type ?? 'unknown' },
    tokenShared: r.token_shared === true,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class PlanStore {
  constructor(readonly pool: pg.Pool) {}

  /** Every stale failed item (quarantined and deferred ones too), oldest first, at most `limit`. */
  async staleFailed(graceMs: number, limit: number): Promise<ItemStanding[]> {
    const { rows } = await this.pool.query<StandingRow>(standingSql(staleFailedSql('$1'), '$2'), [
      secs(graceMs),
      limit,
    ]);
    return rows.map(toStanding);
  }

  /** How many stale failed items there are in all (the plan shows at most its limit). */
  async countStaleFailed(graceMs: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pool_items p WHERE ${staleFailedSql('$1')}`,
      [secs(graceMs)],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The rows whose id or pool token is `idOrToken`, whatever their status. */
  async find(idOrToken: string, graceMs: number): Promise<ItemStanding[]> {
    const id = UUID.test(idOrToken) ? idOrToken : null;
    const { rows } = await this.pool.query<StandingRow>(
      standingSql('(p.id = $2::uuid OR p.pool_token = $3)', '100'),
      [secs(graceMs), id, idOrToken],
    );
    return rows.map(toStanding);
  }

  /** One row by id (a dry-run pass plans the item it listed). */
  async byId(id: string, graceMs: number): Promise<ItemStanding | undefined> {
    const { rows } = await this.pool.query<StandingRow>(standingSql('p.id = $2::uuid', '1'), [
      secs(graceMs),
      id,
    ]);
    return rows[0] ? toStanding(rows[0]) : undefined;
  }

  /** Tombstones (items this reaper deleted) matching an id or pool token. */
  async tombstones(
    idOrToken: string,
  ): Promise<{ itemId: string; poolToken: string; resourceType: string; reapedAt: Date }[]> {
    const id = UUID.test(idOrToken) ? idOrToken : null;
    const { rows } = await this.pool.query<{
      item_id: string;
      pool_token: string;
      resource_type: string;
      reaped_at: Date;
    }>(
      `SELECT item_id, pool_token, resource_type, reaped_at FROM pool_reaper_reaped
        WHERE item_id = $1::uuid OR pool_token = $2 ORDER BY reaped_at DESC LIMIT 100`,
      [id, idOrToken],
    );
    return rows.map((r) => ({
      itemId: r.item_id,
      poolToken: r.pool_token,
      resourceType: r.resource_type,
      reapedAt: r.reaped_at,
    }));
  }

  /**
   * The ids among `ids` whose row another transaction holds locked now (a teardown in
   * progress takes FOR UPDATE). Found with FOR KEY SHARE SKIP LOCKED in a transaction that is
   * rolled back: the weakest row lock, which blocks no Claim or Discard (they take FOR NO KEY
   * UPDATE) and changes no data; it conflicts only with a teardown's FOR UPDATE in the same
   * instant.
   */
  async lockedIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    return withCheckedOutClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        const { rows } = await client.query<{ id: string }>(
          'SELECT id FROM pool_items WHERE id = ANY($1::uuid[]) FOR KEY SHARE SKIP LOCKED',
          [ids],
        );
        const free = new Set(rows.map((r) => r.id));
        return new Set(ids.filter((id) => !free.has(id)));
      } finally {
        await client.query('ROLLBACK');
      }
    });
  }
}
