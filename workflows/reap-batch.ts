import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { REAPED_POOL_TOKENS_KEY } from '../src/shared/search-attributes';
import type { ItemError, OutcomeCount, PoolItemRef, ReapOutcome, ReapPassOptions } from '../src/shared/types';

type Activities = ReturnType<typeof createActivities>;

/** Failure types that mean "an operator must look": retrying them cannot help. */
export const REFUSAL_TYPES = ['DropRefusedError', 'UnsupportedResourceTypeError', 'UnknownClusterError'];
export const NON_RETRYABLE_TYPES = [
  ...REFUSAL_TYPES,
  'ForceBlockedError',
  'TeardownPermissionError',
  'RoleStillReferencedError',
];
const MAX_ERRORS_IN_SUMMARY = 20;

export interface ReapBatchInput {
  readonly items: readonly PoolItemRef[];
  readonly options: ReapPassOptions;
}

export interface BatchResult {
  readonly tally: Readonly<Record<ReapOutcome, number>>;
  readonly outcomes: readonly OutcomeCount[];
  readonly errors: readonly ItemError[];
}

function deprovisionActivity(item: PoolItemRef, options: ReapPassOptions) {
  const retry = options.deprovisionRetry ?? {};
  const timeouts = options.activityTimeouts ?? {};
  return proxyActivities<Activities>({
    // A drop waits for a checkpoint: seconds on a busy cluster. The heartbeat catches a dead
    // worker in seconds instead of waiting out startToClose.
    startToCloseTimeout: timeouts.deprovisionStartToCloseMs ?? '5 minutes',
    heartbeatTimeout: timeouts.deprovisionHeartbeatMs ?? '30 seconds',
    retry: {
      initialInterval: retry.initialIntervalMs ?? 1000,
      backoffCoefficient: 2,
      maximumInterval: retry.maximumIntervalMs ?? 30_000,
      maximumAttempts: retry.maximumAttempts ?? 5,
      nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
    },
    summary: `${item.resourceType} ${item.poolToken}`,
  }).deprovision;
}

function deleteItemActivity(item: PoolItemRef, options: ReapPassOptions) {
  return proxyActivities<Activities>({
    startToCloseTimeout: options.activityTimeouts?.deleteStartToCloseMs ?? '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
    summary: `${item.resourceType} ${item.poolToken}`,
  }).deleteItem;
}

/** A fixed number of runners pulling from one queue: bounded concurrency, deterministic order. */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
) {
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, runner));
}

function failureOf(err: unknown): { type: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
}

/**
 * Reaps a slice of one pass's items: for each, deprovision and, only when that succeeded,
 * delete the row. One item's failure never fails the batch. The reaped tokens go into the
 * ReapedPoolTokens search attribute, which is why a pass splits its items into batches: one
 * attribute value holds at most 2 KiB.
 */
export async function reapBatch({ items, options }: ReapBatchInput): Promise<BatchResult> {
  const counts = new Map<string, number>();
  const errors: ItemError[] = [];
  const reapedTokens: string[] = [];
  const tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
  };
  let done = 0;

  const record = (item: PoolItemRef, outcome: ReapOutcome, failure?: { type: string; message: string }) => {
    tally[outcome] += 1;
    const key = `${item.resourceType}\u0000${outcome}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (failure && errors.length < MAX_ERRORS_IN_SUMMARY) {
      errors.push({
        id: item.id,
        poolToken: item.poolToken,
        resourceType: item.resourceType,
        outcome,
        errorType: failure.type,
        message: failure.message,
      });
    }
    done += 1;
    setCurrentDetails(
      `**Reaping** ${done}/${items.length}: reaped ${tally.reaped}, refused ${tally.refused}, ` +
        `deprovision errors ${tally.deprovision_err}, delete errors ${tally.delete_err}, skipped ${tally.skipped}`,
    );
  };

  setCurrentDetails(`**Reaping** 0/${items.length}`);
  await forEachConcurrently(items, options.concurrency, async (item) => {
    try {
      const result = await deprovisionActivity(item, options)({ item });
      if (result.outcome === 'skipped') {
        record(item, 'skipped');
        return;
      }
    } catch (err) {
      const failure = failureOf(err);
      record(item, REFUSAL_TYPES.includes(failure.type) ? 'refused' : 'deprovision_err', failure);
      log.warn('deprovision failed; row kept', { poolToken: item.poolToken, errorType: failure.type });
      return;
    }
    // Only now, with the infra confirmed freed, may the row go.
    try {
      const { deleted } = await deleteItemActivity(item, options)({ item });
      if (deleted) reapedTokens.push(item.poolToken);
      record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      record(item, 'delete_err', failureOf(err));
    }
  });

  if (reapedTokens.length > 0 && options.recordReapedTokens !== false) {
    upsertSearchAttributes([{ key: REAPED_POOL_TOKENS_KEY, value: reapedTokens }]);
  }
  const outcomes: OutcomeCount[] = [...counts].map(([key, count]) => {
    const [resourceType = '', outcome] = key.split('\u0000');
    return { resourceType, outcome: outcome as ReapOutcome, count };
  });
  return { tally, outcomes, errors };
}
