import { describe, expect, it } from 'vitest';
import { formatSummary } from '../../src/operator-format';
import type { PassSummary } from '../../src/shared/types';

const summary = (extra: Partial<PassSummary>): PassSummary => ({
  passId: 'pool-reaper-pass-x',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
  durationMs: 1000,
  listed: 0,
  reaped: 0,
  deprovisionErrors: 0,
  deleteErrors: 0,
  refused: 0,
  skipped: 0,
  batchLimit: 50,
  batchFull: false,
  stuckAssigned: { postgres: 0, redis: 2, mongodb: 0, queue: 0 },
  outcomes: [],
  errors: [],
  ...extra,
});

describe('formatSummary: stuck assigned', () => {
  it('lists the non-zero counts', () => {
    expect(formatSummary(summary({}))).toContain('stuck assigned: redis=2');
  });

  it('says "unknown", not "none", while the platform check fails (the count is empty then)', () => {
    const text = formatSummary(
      summary({
        stuckAssigned: {},
        platformCheck: { status: 'failed', reason: 'timeout', message: 'platform check timed out' },
      }),
    );
    expect(text).toContain(
      'stuck assigned: unknown (platform check failed: timeout; nothing treated as orphan)',
    );
    expect(text).not.toContain('stuck assigned: none');
  });
});
