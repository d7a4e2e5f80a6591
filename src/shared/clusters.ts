/**
 * Which backend cluster an item lives on. One rule, shared by the teardown (which URL to
 * use), the pass (which items share a cluster's lanes and its circuit) and the listing SQL
 * (CLUSTER_SQL in src/store/failed-items.ts), which a test holds to the same answers.
 * Pure: imported into the workflow sandbox too.
 */
export const DEFAULT_CLUSTER = 'local:0';

/** What both sides trim: exactly these four characters (Postgres's btrim takes the same set). */
const EDGE_WHITESPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

/** The first `;`-separated segment of provider_resource_id, trimmed; empty means the default cluster. */
export function clusterOf(providerResourceId: string): string {
  const first = String(providerResourceId).split(';')[0]?.replace(EDGE_WHITESPACE, '') ?? '';
  return first === '' ? DEFAULT_CLUSTER : first;
}

/** The key of a circuit and of a lane budget: a resource type's backend on one cluster. */
export function clusterKey(resourceType: string, cluster: string): string {
  return `${resourceType}/${cluster}`;
}
