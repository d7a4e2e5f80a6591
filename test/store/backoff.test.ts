import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CLUSTER_BACKOFF, DEFAULT_ITEM_BACKOFF } from '../../activities/deps';
import { type Backoff, backoffMs, backoffSecsSql } from '../../src/store/backoff';
import { PoolStore } from '../../src/store/pool-store';
import { secs } from '../../src/store/predicates';
import { uniqueSuffix } from '../helpers/env';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/postgres';

/**
 * The one backoff rule (src/store/backoff.ts): base × 2^(failing passes − 1), at most max. The
 * JavaScript rule, its SQL twin, and both upserts that use it (an item's deferral and a
 * cluster marked down) give the same waits, counted once per pass.
 */
describe('the backoff rule', () => {
  const bounds: Backoff[] = [
    DEFAULT_ITEM_BACKOFF,
    DEFAULT_CLUSTER_BACKOFF,
    { baseMs: 100, maxMs: 100 },
    { baseMs: 1, maxMs: 3_600_000 },
    { baseMs: 1500, maxMs: 7 * 24 * 3_600_000 },
  ];
  const counts = [1, 2, 3, 4, 5, 10, 20, 30, 31, 32, 100, 1_000_000];

  it('doubles from the base with each failing pass, up to the max', () => {
    const b = { baseMs: 30_000, maxMs: 3_600_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffMs(n, b))).toEqual([
      30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000,
    ]);
    // However many passes failed: the max, never Infinity or NaN.
    expect(backoffMs(1_000_000, b)).toBe(3_600_000);
    expect(backoffMs(1_000_000, { baseMs: 1, maxMs: Number.MAX_SAFE_INTEGER })).toBe(2 ** 30);
  });

  it('gives the same waits in SQL as in JavaScript', async () => {
    for (const b of bounds) {
      const { rows } = await adminQuery<{ s: number }>(
        `SELECT ${backoffSecsSql('n', '$2', '$3')} AS s FROM unnest($1::int[]) WITH ORDINALITY AS t(n, i) ORDER BY i`,
        [counts, secs(b.baseMs), secs(b.maxMs)],
      );
      expect(
        rows.map((r) => Math.round(r.s * 1000)),
        JSON.stringify(b),
      ).toEqual(counts.map((n) => backoffMs(n, b)));
    }
  });

  describe('in the store: an item deferral and a cluster marked down follow it alike', () => {
    let db: TestDatabase;
    let store: PoolStore;
    const backoff: Backoff = { baseMs: 2_000, maxMs: 9_000 };

    beforeAll(async () => {
      db = await createTestDatabase('backoff');
      store = new PoolStore(db.pool);
    });
    afterAll(async () => {
      await db?.drop();
    });

    /** Each wait as the statement wrote it: from the now() of the same statement, so exact. */
    const itemWait = async (id: string) => {
      const { rows } = await db.pool.query<{ ms: number }>(
        `SELECT extract(epoch FROM next_attempt_at - last_failed_at) * 1000 AS ms
           FROM pool_reaper_item_failures WHERE item_id = $1`,
        [id],
      );
      return Math.round(Number(rows[0]!.ms));
    };
    const clusterWait = async (cluster: string) => {
      const { rows } = await db.pool.query<{ ms: number }>(
        `SELECT extract(epoch FROM retry_at - updated_at) * 1000 AS ms
           FROM pool_reaper_clusters WHERE resource_type = 'postgres' AND cluster = $1`,
        [cluster],
      );
      return Math.round(Number(rows[0]!.ms));
    };

    it('waits base, 2 × base, 4 × base, then the max; a pass that fails twice counts once', async () => {
      const item = {
        id: randomUUID(),
        resourceType: 'postgres',
        poolToken: `tok_${uniqueSuffix()}`,
        providerResourceId: 'local:0',
      };
      const cluster = { resourceType: 'postgres', cluster: `local:9${Date.now() % 1000}` };
      const passes = ['p1', 'p1', 'p2', 'p3', 'p4', 'p5'];
      const seen: { item: [number, number]; cluster: [number, number] }[] = [];
      for (const passId of passes) {
        const what = { passId, errorType: 'TransientError', message: 'blip' };
        const deferred = await store.deferItem(item, what, backoff);
        const down = await store.recordClusterFailure(cluster, what, backoff);
        seen.push({
          item: [deferred.deferrals, await itemWait(item.id)],
          cluster: [down.failures, await clusterWait(cluster.cluster)],
        });
      }
      const expected: [number, number][] = [1, 1, 2, 3, 4, 5].map((n) => [n, backoffMs(n, backoff)]);
      expect(expected.map(([, ms]) => ms)).toEqual([2_000, 2_000, 4_000, 8_000, 9_000, 9_000]);
      expect(seen.map((s) => s.item)).toEqual(expected);
      expect(seen.map((s) => s.cluster)).toEqual(expected);
    });
  });
});
