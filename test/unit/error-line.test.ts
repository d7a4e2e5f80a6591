import { describe, expect, it } from 'vitest';
import { errorLine } from '../../src/shared/error-line';

describe('errorLine', () => {
  it('is the program name and the first line of the message only', () => {
    expect(
      errorLine('lost Temporal at 127.0.0.1:7233 for 3s (REAPER_TEMPORAL_LOSS_LIMIT)\n    at stack'),
    ).toBe('pool-reaper: lost Temporal at 127.0.0.1:7233 for 3s (REAPER_TEMPORAL_LOSS_LIMIT)');
    expect(errorLine('')).toBe('pool-reaper: ');
  });
});
