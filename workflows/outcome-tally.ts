import { ActivityFailure, ApplicationFailure, setCurrentDetails, TimeoutFailure } from '@temporalio/workflow';
import type { ItemError, OutcomeCount, PoolItemRef, ReapOutcome } from '../src/shared/types';

const MAX_ERRORS_IN_SUMMARY = 20;

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

/** Counts outcomes per type, keeps the first failures, and shows progress in the UI. */
export class OutcomeTally {
  readonly tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
    deferred: 0,
    planned: 0,
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
