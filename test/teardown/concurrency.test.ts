import { afterAll, describe, expect, it } from 'vitest';
import { listInfra, mapWithConcurrency, newPoolToken, provisionItem } from '../../src/dev/seed';
import { createTeardownRegistry } from '../../src/teardown/registry';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import {
  cleanupToken,
  createTimeline,
  itemRef,
  seedTargets,
  testClusters,
} from '../helpers/teardown-fixtures';

const targets = seedTargets();
const tokens = Array.from({ length: 8 }, () => newPoolToken());

afterAll(async () => {
  for (const token of tokens) await cleanupToken(targets, token);
  await targets.close();
});

describe('concurrent postgres teardowns', () => {
  it('tear down 8 items at once through one registry, each on its own connection, side by side', async () => {
    await mapWithConcurrency(tokens, 4, (token) =>
      provisionItem(targets, { resourceType: 'postgres', token }),
    );
    const timeline = createTimeline();
    const registry = createTeardownRegistry({ ...testClusters(), concurrency: 8, log: timeline.log });
    try {
      const results = await Promise.all(tokens.map((token) => registry.teardown(itemRef(token, 'postgres'))));
      expect(results.every((r) => r.confirmedFreed && r.dropped.length === 2)).toBe(true);
    } finally {
      timeline.restore();
      await registry.close();
    }
    for (const token of tokens) {
      const infra = await listInfra({
        adminUrl: TEST_POSTGRES_URL,
        redisUrl: TEST_REDIS_URL,
        tokenPrefix: token,
      });
      expect(infra.databases).toEqual([]);
      expect(infra.roles).toEqual([]);
    }

    const drops = timeline.entries.filter((e) => e.kind === 'sql' && /^DROP DATABASE/.test(e.text));
    // Each teardown drops on its own connection: 8 different backend pids.
    expect(new Set(drops.map((e) => e.pid)).size).toBe(8);
    // Whole sequences overlap in time: no lock or single connection serialises them.
    const spans = new Map<number, { first: number; last: number }>();
    for (const e of timeline.entries) {
      if (e.kind !== 'sql' || e.pid === undefined) continue;
      const span = spans.get(e.pid) ?? { first: e.seq, last: e.seq };
      span.last = e.seq;
      spans.set(e.pid, span);
    }
    const ordered = [...spans.values()];
    const maxOverlap = Math.max(
      ...ordered.map((s) => ordered.filter((o) => o.first <= s.first && o.last >= s.first).length),
    );
    expect(maxOverlap).toBeGreaterThanOrEqual(4);
    // And DROP DATABASE statements themselves were in flight together (they share a checkpoint).
    let inFlight = 0;
    let maxInFlight = 0;
    for (const e of drops) {
      inFlight += e.phase === 'start' ? 1 : -1;
      maxInFlight = Math.max(maxInFlight, inFlight);
    }
    expect(maxInFlight).toBeGreaterThanOrEqual(4);
  });
});
