import { log, upsertSearchAttributes } from '@temporalio/workflow';
import { REAPED_POOL_TOKENS_KEY } from '../src/shared/search-attributes';
import type { ItemError, OutcomeCount, PoolItemRef, ReapOutcome, ReapPassOptions } from '../src/shared/types';
import {
  deleteItemStep,
  deprovisionFailureOutcome,
  deprovisionStep,
  failureOf,
  forEachConcurrently,
  OutcomeTally,
} from './item-steps';

export interface ReapBatchInput {
  readonly items: readonly PoolItemRef[];
  readonly options: ReapPassOptions;
}

export interface BatchResult {
  readonly tally: Readonly<Record<ReapOutcome, number>>;
  readonly outcomes: readonly OutcomeCount[];
  readonly errors: readonly ItemError[];
}

/**
 * Reaps a slice of one pass's items: for each, deprovision and, only when that succeeded,
 * delete the row. One item's failure never fails the batch. The reaped tokens go into the
 * ReapedPoolTokens search attribute, which is why a pass splits its items into batches: one
 * attribute value holds at most 2 KiB.
 */
export async function reapBatch({ items, options }: ReapBatchInput): Promise<BatchResult> {
  const reapedTokens: string[] = [];
  const outcomes = new OutcomeTally(
    items.length,
    (t, done, total) =>
      `**Reaping** ${done}/${total}: reaped ${t.reaped}, refused ${t.refused}, ` +
      `deprovision errors ${t.deprovision_err}, delete errors ${t.delete_err}, skipped ${t.skipped}`,
  );

  await forEachConcurrently(items, options.concurrency, async (item) => {
    try {
      const result = await deprovisionStep(item, options)({ item });
      if (result.outcome === 'skipped') {
        outcomes.record(item, 'skipped');
        return;
      }
    } catch (err) {
      const failure = failureOf(err);
      outcomes.record(item, deprovisionFailureOutcome(failure), failure);
      log.warn('deprovision failed; row kept', { poolToken: item.poolToken, errorType: failure.type });
      return;
    }
    // Only now, with the infra confirmed freed, may the row go.
    try {
      const { deleted } = await deleteItemStep(item, options)({ item });
      if (deleted) reapedTokens.push(item.poolToken);
      outcomes.record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      outcomes.record(item, 'delete_err', failureOf(err));
    }
  });

  if (reapedTokens.length > 0 && options.recordReapedTokens !== false) {
    upsertSearchAttributes([{ key: REAPED_POOL_TOKENS_KEY, value: reapedTokens }]);
  }
  return { tally: outcomes.tally, outcomes: outcomes.outcomes(), errors: outcomes.errors };
}
