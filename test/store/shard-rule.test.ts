import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPassShard, MAX_PASS_SHARDS, shardOfWorkflowId, shardWorkflowId } from '../../src/shared/shards';
import { CLUSTER_SQL } from '../../src/store/predicates';
import { shardOf, shardSql } from '../../src/store/shard-rule';
import { adminQuery } from '../helpers/postgres';

/**
 * The listing (SQL) and the TypeScript rule must put every (type, cluster) in the same shard,
 * and the rule keys on the cluster as the listing names it (CLUSTER_SQL), so all items of a
 * cluster share one shard whatever else their provider_resource_id carries.
 */
async function sqlShards(
  rows: readonly { type: string; cluster: string; count: number }[],
): Promise<number[]> {
  const { rows: out } = await adminQuery<{ shard: string }>(
    `SELECT ${shardSql('t', 'c', 'k')} AS shard
       FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS x(t, c, k, n) ORDER BY n`,
    [rows.map((r) => r.type), rows.map((r) => r.cluster), rows.map((r) => r.count)],
  );
  return out.map((r) => Number(r.shard));
}

describe('the shard rule', () => {
  it('puts every (type, cluster) in the same shard in SQL and in TypeScript', async () => {
    const text = fc
      .string({ unit: 'grapheme', maxLength: 24 })
      .map((s) => s.split(String.fromCharCode(0)).join(''));
    const rows = fc.sample(
      fc.record({
        type: fc.oneof(fc.constantFrom('postgres', 'redis', 'queue', 'mongodb'), text),
        cluster: fc.oneof(fc.constantFrom('local:0', 'local:1', 'eu-west:7', 'ünïcode'), text),
        count: fc.integer({ min: 1, max: MAX_PASS_SHARDS }),
      }),
      2000,
    );
    expect(await sqlShards(rows)).toEqual(rows.map((r) => shardOf(r.type, r.cluster, r.count)));
  });

  it("hashes as Node's MD5 does (the rule's own pure MD5, first 32 bits)", () => {
    const keys = [
      ['queue', 'c1'],
      ['', ''],
      ['ünïcode', '😀 local:1'],
      ['postgres', 'x'.repeat(200)],
      ...fc.sample(
        fc.tuple(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme', maxLength: 120 })),
        500,
      ),
    ];
    for (const [type, cluster] of keys) {
      const digest = createHash('md5').update(`${type}/${cluster}`, 'utf8').digest('hex');
      expect(shardOf(type!, cluster!, 2 ** 32)).toBe(Number.parseInt(digest.slice(0, 8), 16));
    }
  });

  it('keys on the cluster the listing names, so one cluster never spans shards', async () => {
    const ids = ['local:5', ' local:5 ;pooltok:pool-a', 'local:5;pooltok:pool-b', '\tlocal:5\r\n'];
    const { rows } = await adminQuery<{ shard: string }>(
      `SELECT ${shardSql("'postgres'", CLUSTER_SQL, '7')} AS shard
         FROM unnest($1::text[]) AS p(provider_resource_id)`,
      [ids],
    );
    expect(new Set(rows.map((r) => Number(r.shard)))).toEqual(new Set([shardOf('postgres', 'local:5', 7)]));
  });

  it('spreads 50 clusters over the shards and never leaves the range', () => {
    for (const count of [1, 2, 4, 8]) {
      const shards = Array.from({ length: 50 }, (_, i) => shardOf('queue', `c${i}`, count));
      expect(shards.every((s) => s >= 0 && s < count)).toBe(true);
      expect(new Set(shards).size).toBe(count);
    }
  });

  it('names shard passes by id and back', () => {
    const shard = { index: 3, count: 4 };
    expect(shardWorkflowId('reaper-pass-1', shard)).toBe('reaper-pass-1-shard-3of4');
    expect(shardOfWorkflowId('reaper-pass-1-shard-3of4')).toEqual(shard);
    expect(shardOfWorkflowId('reaper-pass-1')).toBeUndefined();
    expect(isPassShard({ index: 4, count: 4 })).toBe(false);
    expect(isPassShard({ index: 0, count: 65 })).toBe(false);
  });
});
