import { DEFAULT_CLUSTER } from '../shared/clusters';
import { ASSIGNED_SINCE_COLUMNS, FAILED_SINCE_COLUMNS, type SinceColumn } from '../shared/grace';

/**
 * The SQL rules every statement about pool_items shares, written once. Statements alias
 * pool_items as `p`.
 */

/** `COALESCE(p.<first>, p.<second>, …)`: a row's age origin from the shared column list. */
const sinceSql = (columns: readonly SinceColumn[]) =>
  columns.length === 1 ? `p.${columns[0]}` : `COALESCE(${columns.map((c) => `p.${c}`).join(', ')})`;

/**
 * Since when a failed row has been failed (src/shared/grace.ts says why the fallback).
 * Indexed by idx_pool_reaper_failed_since: the expression must stay exactly this.
 */
export const FAILED_SINCE_SQL = sinceSql(FAILED_SINCE_COLUMNS);

/** Since when an assigned row has been assigned. */
export const ASSIGNED_SINCE_SQL = sinceSql(ASSIGNED_SINCE_COLUMNS);

/** `since` is older than the grace, `graceParam` being a parameter holding it in seconds. */
export const olderThanSql = (since: string, graceParam: string) =>
  `${since} < now() - make_interval(secs => ${graceParam})`;

/** A failed row past the failed grace; the JavaScript twin is isStaleFailed (src/shared/grace.ts). */
export const staleFailedSql = (graceParam: string) =>
  `p.status = 'failed' AND ${olderThanSql(FAILED_SINCE_SQL, graceParam)}`;

/** An assigned row past a grace (stuck-assigned, orphan); `p` is pool_items. */
export const staleAssignedSql = (graceParam: string) =>
  `p.status = 'assigned' AND ${olderThanSql(ASSIGNED_SINCE_SQL, graceParam)}`;

/**
 * The item's cluster, as clusterOf() in src/shared/clusters.ts computes it: the first
 * `;`-segment of provider_resource_id, trimmed of space, tab, CR and LF, or the default.
 * A test holds the two to the same answers on adversarial inputs.
 */
export const CLUSTER_SQL = `COALESCE(NULLIF(btrim(split_part(p.provider_resource_id, ';', 1), E' \\t\\r\\n'), ''), '${DEFAULT_CLUSTER}')`;

export const secs = (ms: number) => ms / 1000;
