import type { PassShard } from '../shared/shards';
import type { ClusterDown, ListedItem, PoolItemRef } from '../shared/types';
import { AssignedItemsStore } from './assigned-items';
import type { LockedRun } from './item-lock';
import { CLUSTER_SQL, FAILED_SINCE_SQL, secs, staleFailedSql } from './predicates';
import { shardSql } from './shard-rule';
import { toRef } from './store-rows';

/** One (type, cluster) of the stale failed backlog. */
export interface BacklogRow {
  readonly resourceType: string;
  readonly cluster: string;
  readonly items: number;
  readonly oldestAgeSeconds: number;
}

/** Stale failed items: the fair listing, clusters down, the backlog gauge, the row lock and delete. */
export class FailedItemsStore extends AssignedItemsStore {
  /**
   * One batch of stale failed items, fair across clusters: each (type, cluster) contributes
   * its oldest item in turn (round robin by rank, then age), so a large backlog or a broken
   * cluster never keeps the others' items out of the batch. Left out: quarantined items,
   * items deferred after a retryable failure (until next_attempt_at), and the items of a
   * cluster marked down, except one probe item per such cluster once its retry_at has come.
   * With `shard`, only the clusters that map to it (src/store/shard-rule.ts).
   */
  async listStaleFailed(graceMs: number, limit: number, shard?: PassShard): Promise<ListedItem[]> {
    const inShard = shard ? `AND ${shardSql('p.resource_type', CLUSTER_SQL, '$4')} = $3` : '';
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
            ${inShard}
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
      shard ? [secs(graceMs), limit, shard.index, shard.count] : [secs(graceMs), limit],
    );
    return rows.map((r) => (r.probe ? { ...toRef(r), probe: true } : toRef(r)));
  }

  /** Clusters marked down (oldest first), with how many stale failed items wait on each; with `shard`, its own. */
  async listClustersDown(graceMs: number, shard?: PassShard): Promise<ClusterDown[]> {
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
        ${shard ? `WHERE ${shardSql('k.resource_type', 'k.cluster', '$3')} = $2` : ''}
        ORDER BY k.down_since, k.resource_type, k.cluster`,
      shard ? [secs(graceMs), shard.index, shard.count] : [secs(graceMs)],
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

  /** Deletes the row only if it is still the same failed item; forgets its failure record. */
  async deleteFailedItem(item: PoolItemRef): Promise<boolean> {
    return this.deleteReaped(item, `status = 'failed'`, []);
  }
}
