import { DEFAULT_CLUSTER } from '../shared/clusters';

/**
 * The SQL rules every statement about pool_items shares, written once. Statements alias
 * pool_items as `p`.
 */

/**
 * Since when a failed row has been failed: Discard sets assigned_at; a row that reached
 * `failed` without one (a provisioner bug, a hand edit) ages by created_at instead of
 * never being listed (and leaking for good). Indexed by idx_pool_reaper_failed_since.
 */
export const FAILED_SINCE_SQL = 'COALESCE(p.assigned_at, p.created_at)';

/** A failed row past the failed grace; `$grace` is the grace in seconds. */
export const staleFailedSql = (graceParam: string) =>
  `p.status = 'failed' AND ${FAILED_SINCE_SQL} < now() - make_interval(secs => ${graceParam})`;

/**
 * The item's cluster, as clusterOf() in src/shared/clusters.ts computes it: the first
 * `;`-segment of provider_resource_id, trimmed of space, tab, CR and LF, or the default.
 * A test holds the two to the same answers on adversarial inputs.
 */
export const CLUSTER_SQL = `COALESCE(NULLIF(btrim(split_part(p.provider_resource_id, ';', 1), E' \\t\\r\\n'), ''), '${DEFAULT_CLUSTER}')`;

export const secs = (ms: number) => ms / 1000;
