import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { NON_RETRYABLE_TYPES, treatmentOf } from '../src/shared/failure-types';
import type {
  DeprovisionInput,
  ItemError,
  OutcomeCount,
  PoolItemRef,
  ReapOutcome,
  ReapPassOptions,
} from '../src/shared/types';

type Activities = ReturnType<typeof createActivities>;

const MAX_ERRORS_IN_SUMMARY = 20;

/**
 * A killed worker's teardown is retried once this passes without a heartbeat; the activity
 * heartbeats at a third of it. Short, so a crash costs seconds: with the sticky queue's
 * 5 s (src/worker.ts) a replacement worker picks the pass up within about 10 s.
 */
export const DEPROVISION_HEARTBEAT_TIMEOUT_MS = 10_000;

/** The retried teardown of one item; its summary names the item in the UI. */
export function deprovisionStep(item: PoolItemRef, options: ReapPassOptions, label = '') {
  const retry = options.deprovisionRetry ?? {};
  const timeouts = options.activityTimeouts ?? {};
  return proxyActivities<Activities>({
    // A drop waits for a checkpoint: seconds on a busy cluster. The heartbeat catches a dead
    // worker in seconds instead of waiting out startToClose.
    startToCloseTimeout: timeouts.deprovisionStartToCloseMs ?? '5 minutes',
    heartbeatTimeout: timeouts.deprovisionHeartbeatMs ?? DEPROVISION_HEARTBEAT_TIMEOUT_MS,
    retry: {
      initialInterval: retry.initialIntervalMs ?? 1000,
      backoffCoefficient: 2,
      maximumInterval: retry.maximumIntervalMs ?? 30_000,
      maximumAttempts: retry.maximumAttempts ?? 5,
      nonRetryableErrorTypes: [...NON_RETRYABLE_TYPES],
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

/** A lane count that can be trusted: a positive integer, whatever a message carried. */
export function laneCount(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : fallback;
}

/**
 * A fixed number of runners pulling from one queue, in order: bounded concurrency,
 * deterministic order. With `perKey`, at most that many items of one key (a cluster) run
 * at once; a runner takes the first waiting item whose key has room, so the other keys'
 * items flow past a busy one.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  perKey?: { readonly limit: number; readonly keyOf: (item: T) => string },
): Promise<void> {
  const waiting = [...items];
  const running = new Map<string, number>();
  const hasRoom = (item: T) => perKey === undefined || (running.get(perKey.keyOf(item)) ?? 0) < perKey.limit;
  const runner = async () => {
    for (;;) {
      const index = waiting.findIndex(hasRoom);
      if (index < 0) {
        if (waiting.length === 0) return;
        // Every waiting item's key is at its limit: wait until one of them frees a lane.
        await condition(() => waiting.length === 0 || waiting.some(hasRoom));
        continue;
      }
      const [item] = waiting.splice(index, 1) as [T];
      const key = perKey?.keyOf(item) ?? '';
      running.set(key, (running.get(key) ?? 0) + 1);
      try {
        await fn(item);
      } finally {
        running.set(key, (running.get(key) ?? 1) - 1);
      }
    }
  };
  const lanes = Math.max(1, Math.min(laneCount(limit, 1), items.length));
  await Promise.all(Array.from({ length: lanes }, runner));
}

export interface Failure {
  readonly type: string;
  readonly message: string;
}

/**
 * The failure an activity ended with, unwrapped: its own type and message. A timeout
 * (e.g. bookkeeping that ran out of its budget) names the last attempt's failure too.
 */
export function failureOf(err: unknown): Failure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof TimeoutFailure && cause.cause instanceof ApplicationFailure) {
    return { type: cause.cause.type ?? 'Error', message: `${cause.message}: ${cause.cause.message}` };
  }
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
}

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
    const result = await deprovisionStep(item, options, label)(input);
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

/** Counts outcomes per type, keeps the first failures, and shows progress in the UI. */
export class OutcomeTally {
  readonly tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
    deferred: 0,
  };
  readonly errors: ItemError[] = [];
  private readonly counts = new Map<string, number>();
  private done = 0;
  private progressQueued = false;

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
    // Formatted once per burst of outcomes (a queued microtask), not per item: the text is only
    // read between activations (the UI's metadata query), and it is up to date by then.
    if (!this.progressQueued) {
      this.progressQueued = true;
      void Promise.resolve().then(() => {
        this.progressQueued = false;
        setCurrentDetails(this.progress(this.tally, this.done, this.total));
      });
    }
  }

  outcomes(): OutcomeCount[] {
    return [...this.counts].map(([key, count]) => {
      const [resourceType = '', outcome] = key.split('\u0000');
      return { resourceType, outcome: outcome as ReapOutcome, count };
    });
  }
}
