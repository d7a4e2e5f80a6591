/**
 * The shard rule, in SQL and in TypeScript. A (type, cluster) key maps to shard
 * `first 32 bits of md5("type/cluster") mod count`: stable across processes, releases and
 * Postgres versions, and every item of one cluster lands in one shard, so per-cluster lanes and
 * breakers keep working. The listing computes it in SQL (shardSql); shardOf is the same rule
 * for Node code and tests, held to the SQL's answers by test/store/shard-rule.test.ts.
 */
import { createHash } from 'node:crypto';
import { clusterKey } from '../shared/clusters';

/** The shard of a (type, cluster) among `count` shards. */
export function shardOf(resourceType: string, cluster: string, count: number): number {
  const digest = createHash('md5').update(clusterKey(resourceType, cluster), 'utf8').digest();
  return digest.readUInt32BE(0) % count;
}

/**
 * The same rule as a SQL expression over a resource type and a cluster expression (both text);
 * `count` is the SQL of the shard count (a bind parameter). `clusterKey` joins with `/`.
 */
export function shardSql(typeExpr: string, clusterExpr: string, count: string): string {
  return `((('x' || substr(md5(${typeExpr} || '/' || ${clusterExpr}), 1, 8))::bit(32)::bigint) % (${count})::bigint)`;
}
