import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { ItemError, OutcomeCount, PoolItemRef, ReapOutcome, ReapPassOptions } from '../src/shared/types';

type Activities = ReturnType<typeof createActivities>;

/** Failure types that mean "an operator must look": retrying them cannot help. */
export const REFUSAL_TYPES = [
  'DropRefusedError',
  'UnsupportedResourceTypeError',
  'UnknownClusterError',
  'SharedPoolTokenError',
];
export const NON_RETRYABLE_TYPES = [
  ...REFUSAL_TYPES,
  'ForceBlockedError',
  'TeardownPermissionError',
  'RoleStillReferencedError',
];
const MAX_ERRORS_IN_SUMMARY = 20;

/** The retried teardown of one item; its summary names the item in the UI. */
export function deprovisionStep(item: PoolItemRef, options: ReapPassOptions, label = '') {
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
    summary: `${label}${item.resourceType} ${item.poolToken}`,
  }).deprovision;
}

/**
 * The conditional row delete, as a local activity: one short idempotent statement, run by
 * the worker that just saw the teardown complete. History records it as a marker (type
 * deleteItem, the item in its summary and result) instead of three activity events plus a
 * workflow task, which keeps Temporal's cost per reaped item at about six events.
 */
export function deleteItemStep(item: PoolItemRef, options: ReapPassOptions, label = '') {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: options.activityTimeouts?.deleteStartToCloseMs ?? '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
    summary: `${label}${item.resourceType} ${item.poolToken}`,
  }).deleteItem;
}

/** A fixed number of runners pulling from one queue: bounded concurrency, deterministic order. */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, runner));
}

export interface Failure {
  readonly type: string;
  readonly message: string;
}

export function failureOf(err: unknown): Failure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
}

/** The outcome of a deprovision that threw: refused before touching anything, or an error. */
export const deprovisionFailureOutcome = (failure: Failure): ReapOutcome =>
  REFUSAL_TYPES.includes(failure.type) ? 'refused' : 'deprovision_err';

/**
 * Runs an item's deprovision and records any outcome other than "freed". Returns true only
 * when the infra is confirmed freed, i.e. when the row may be deleted.
 */
export async function deprovisionRecorded(
  item: PoolItemRef,
  input: Parameters<ReturnType<typeof deprovisionStep>>[0],
  options: ReapPassOptions,
  outcomes: OutcomeTally,
  label = '',
): Promise<boolean> {
  try {
    const result = await deprovisionStep(item, options, label)(input);
    if (result.outcome === 'freed') return true;
    log.info(`${label}item kept by deprovision`, { poolToken: item.poolToken, reason: result.reason });
    outcomes.record(item, 'skipped');
  } catch (err) {
    const failure = failureOf(err);
    outcomes.record(item, deprovisionFailureOutcome(failure), failure);
    log.warn(`${label}deprovision failed; row kept`, { poolToken: item.poolToken, errorType: failure.type });
  }
  return false;
}

/** Counts outcomes per type, keeps the first failures, and shows progress in the UI. */
export class OutcomeTally {
  readonly tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
  };
  readonly errors: ItemError[] = [];
  private readonly counts = new Map<string, number>();
  private done = 0;

  constructor(
    private readonly total: number,
    private readonly progress: (
      tally: Readonly<Record<ReapOutcome, number>>,
      done: number,
      total: number,
    ) => string,
  ) {
    setCurrentDetails(progress(this.tally, 0, total));
  }

  record(item: PoolItemRef, outcome: ReapOutcome, failure?: Failure): void {
    this.tally[outcome] += 1;
    const key = `${item.resourceType}\u0000${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (failure && this.errors.length < MAX_ERRORS_IN_SUMMARY) {
      this.errors.push({
        id: item.id,
        poolToken: item.poolToken,
        resourceType: item.resourceType,
        outcome,
        errorType: failure.type,
        message: failure.message,
      });
    }
    this.done += 1;
    setCurrentDetails(this.progress(this.tally, this.done, this.total));
  }

  outcomes(): OutcomeCount[] {
    return [...this.counts].map(([key, count]) => {
      const [resourceType = '', outcome] = key.split('\u0000');
      return { resourceType, outcome: outcome as ReapOutcome, count };
    });
  }
}
