import type { TickerStatus } from '../../src/shared/messages';

/**
 * How long after its last pass ended the ticker's next tick is due, in the server's workflow
 * time (both ends come from the same clock). At least a whole tick means the timer was started
 * after that pass: no elapsed time on the test's side enters the comparison.
 */
export function tickDueAfterLastPassMs(status: TickerStatus): number {
  const last = status.lastSummary;
  if (status.nextTickAt === undefined || last === undefined) {
    throw new Error(`ticker has no next tick or no last pass: ${JSON.stringify(status)}`);
  }
  return Date.parse(status.nextTickAt) - (Date.parse(last.startedAt) + last.durationMs);
}
