import type { PassFailureReason } from '../src/shared/types';
import { STATE_KEYS, type TickerMirror } from '../src/store/state-keys';
import type { ActivityDeps } from './deps';

export interface PassFailureInput {
  readonly passId: string;
  readonly reason: PassFailureReason;
  readonly message: string;
}

/** Pass ids already counted by this process, so a retried recording does not count twice. */
const COUNTED_LIMIT = 1000;

export function recordPassFailureActivity({ store, metrics, log }: ActivityDeps) {
  const counted = new Set<string>();
  /**
   * Counts and logs a pass that ended without doing its work. The counter and the log line
   * need no database (the failure may be the database); the shared record is best effort.
   */
  return async function recordPassFailure(input: PassFailureInput): Promise<void> {
    if (!counted.has(input.passId)) {
      counted.add(input.passId);
      if (counted.size > COUNTED_LIMIT) counted.delete(counted.values().next().value as string);
      metrics.passFailures.inc({ reason: input.reason });
      log.error(
        {
          event: 'pool_reaper.pass.failed',
          passId: input.passId,
          reason: input.reason,
          error: input.message,
        },
        'reap pass failed; the ticker goes on with the next tick',
      );
    }
    await store
      .writeState(STATE_KEYS.lastPassFailure, { ...input, at: new Date().toISOString() })
      .catch((err: Error) =>
        log.warn({ err: err.message }, 'could not record the pass failure in the database'),
      );
  };
}

export function recordTickerStateActivity({ store }: ActivityDeps) {
  /**
   * Mirrors the ticker's pause into the provisioner database: a ticker started afresh (after
   * a terminate, or on a new namespace) starts paused if the last one was, and the paused
   * gauge reads it. Retried until it lands: a lost resume would only keep a fresh ticker paused.
   */
  return async function recordTickerState(state: TickerMirror): Promise<void> {
    await store.writeState(STATE_KEYS.ticker, state);
  };
}
