import { log } from '@temporalio/workflow';
import { treatmentOf } from '../src/shared/failure-types';
import type { DeprovisionInput, PoolItemRef, ReapOutcome, ReapPassOptions } from '../src/shared/types';
import { deprovisionStep } from './activity-options';
import { type Failure, failureOf, type OutcomeTally } from './outcome-tally';

/**
 * One item's steps, as the pass and the orphan reclaim run them. What they are built from
 * lives next door and is re-exported here, so callers keep one import:
 * activity-options.ts (timeouts, named retry policies), lanes.ts (bounded concurrency),
 * outcome-tally.ts (failures and the per-pass tally).
 */
export * from './activity-options';
export * from './lanes';
export * from './outcome-tally';

/** The outcome of a deprovision that threw, as the taxonomy says (refused, or an error). */
export const deprovisionFailureOutcome = (failure: Failure): ReapOutcome => {
  const { outcome } = treatmentOf(failure.type);
  return outcome === 'refused' ? 'refused' : 'deprovision_err';
};

/** How a deprovision ended: freed (the row may go), kept (skipped or failed), with the failure if any. */
export type DeprovisionVerdict =
  | { readonly freed: true }
  | { readonly freed: false; readonly failure?: Failure };

/**
 * The pass's grace for this item (the orphan grace when it is an orphan), re-checked under the
 * row lock by whichever replica runs the deprovision; none on a pass without rules.
 */
function withPassGrace(input: DeprovisionInput, { rules }: ReapPassOptions): DeprovisionInput {
  if (rules === undefined) return input;
  return { ...input, graceMs: input.expect ? rules.orphanGraceMs : rules.failedGraceMs };
}

/**
 * Runs an item's deprovision and records any outcome other than "freed". `freed` is true
 * only when the infra is confirmed freed, i.e. when the row may be deleted.
 */
export async function deprovisionRecorded(
  item: PoolItemRef,
  input: DeprovisionInput,
  options: ReapPassOptions,
  outcomes: OutcomeTally,
  label = '',
): Promise<DeprovisionVerdict> {
  try {
    const result = await deprovisionStep(item, options, label)(withPassGrace(input, options));
    if (result.outcome === 'freed') return { freed: true };
    log.info(`${label}item kept by deprovision`, { poolToken: item.poolToken, reason: result.reason });
    outcomes.record(item, 'skipped');
    return { freed: false };
  } catch (err) {
    const failure = failureOf(err);
    outcomes.record(item, deprovisionFailureOutcome(failure), failure);
    log.warn(`${label}deprovision failed; row kept`, { poolToken: item.poolToken, errorType: failure.type });
    return { freed: false, failure };
  }
}
