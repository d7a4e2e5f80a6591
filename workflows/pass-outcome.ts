import { upsertSearchAttributes } from '@temporalio/workflow';
import { type PassOutcome, REAP_OUTCOME_KEY, REAPED_COUNT_KEY } from '../src/shared/search-attributes';
import type { PassSummary, ReapPassOptions } from '../src/shared/types';

/**
 * Passes record ReapOutcome and ReapedCount when they end (so the Web UI and
 * `pool-reaper passes` can find the few that did something among thousands of empty ones),
 * and a dry-run branch. Passes started before this replay without either.
 */
export const DRY_RUN_PATCH = 'dry-run-v1';

/** What a pass did, first match wins (see PASS_OUTCOMES in src/shared/search-attributes.ts). */
export function passOutcomeOf(s: PassSummary): PassOutcome {
  if (s.dryRun) return 'dry_run';
  if (s.aborted || s.deprovisionErrors + s.deleteErrors > 0) return 'errors';
  if (s.reaped > 0 || (s.orphanReclaim?.reclaimed ?? 0) > 0) return 'reaped';
  if (s.refused > 0) return 'refused';
  return 'empty';
}

/**
 * Sets the pass's outcome search attributes and returns the summary carrying the outcome.
 * One command in the pass's last workflow task: an empty pass stays one task, one event more.
 */
export function withPassOutcome(summary: PassSummary, options: ReapPassOptions): PassSummary {
  const outcome = passOutcomeOf(summary);
  // Only when the worker said the namespace has them: a pass started by an older ticker's
  // settings must not upsert attributes that may not exist (that fails every workflow task).
  if (options.recordPassOutcome === true) {
    upsertSearchAttributes([
      { key: REAP_OUTCOME_KEY, value: outcome },
      { key: REAPED_COUNT_KEY, value: summary.reaped + (summary.orphanReclaim?.reclaimed ?? 0) },
    ]);
  }
  return { ...summary, outcome };
}
