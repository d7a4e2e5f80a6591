import { describe, expect, it } from 'vitest';
import { formatSummary } from '../../src/operator-format';
import { combineShardSummaries } from '../../src/shared/shards';
import type { PassFailure, PassSummary } from '../../src/shared/types';

const summary = (passId: string, over: Partial<PassSummary> = {}): PassSummary => ({
  passId,
  startedAt: '2026-11-30T10:00:00.000Z',
  finishedAt: '2026-11-30T10:00:05.000Z',
  durationMs: 5000,
  listed: 10,
  reaped: 9,
  deprovisionErrors: 1,
  deleteErrors: 0,
  refused: 0,
  skipped: 0,
  deferred: 0,
  batchLimit: 50,
  batchFull: false,
  stuckAssigned: {},
  outcomes: [{ resourceType: 'queue', outcome: 'reaped', count: 9 }],
  errors: [],
  ...over,
});

describe("a sharded tick's summary", () => {
  it('sums its shard passes, takes the stuck report from shard 0 and names every shard', () => {
    const failure: PassFailure = { passId: 'p-shard-2of3', reason: 'terminated', message: 'x', at: 'now' };
    const combined = combineShardSummaries('p', [
      { passId: 'p-shard-0of3', summary: summary('p-shard-0of3', { stuckAssigned: { queue: 2 } }) },
      {
        passId: 'p-shard-1of3',
        summary: summary('p-shard-1of3', { finishedAt: '2026-11-30T10:00:09.000Z', batchFull: true }),
      },
      { passId: 'p-shard-2of3', failure },
    ])!;
    expect(combined.passId).toBe('p');
    expect(combined.reaped).toBe(18);
    expect(combined.listed).toBe(20);
    expect(combined.deprovisionErrors).toBe(2);
    expect(combined.durationMs).toBe(9000);
    expect(combined.stuckAssigned).toEqual({ queue: 2 });
    // Full with progress in one shard: the ticker catches up at once.
    expect(combined.batchFull).toBe(true);
    expect(combined.shards?.map((s) => [s.passId, s.reaped, s.failure])).toEqual([
      ['p-shard-0of3', 9, undefined],
      ['p-shard-1of3', 9, undefined],
      ['p-shard-2of3', 0, 'terminated'],
    ]);
    const text = formatSummary(combined);
    expect(text).toContain('reaped 18');
    expect(text).toContain('shard p-shard-2of3: terminated (recorded as a failed pass)');
    expect(text).toContain('shard p-shard-1of3: reaped 9/10 (batch full)');
  });

  it('has no summary when no shard ended with one', () => {
    const failure: PassFailure = { passId: 'p-shard-0of2', reason: 'failed', message: 'x', at: 'now' };
    expect(combineShardSummaries('p', [{ passId: 'p-shard-0of2', failure }])).toBeUndefined();
  });
});
