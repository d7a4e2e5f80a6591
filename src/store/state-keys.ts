/** Keys of the reaper's shared state rows (pool_reaper_state), read by every replica. */
export const STATE_KEYS = {
  stuckAssigned: 'stuck_assigned',
  lastPass: 'last_pass',
  lastPassFailure: 'last_pass_failure',
  /** The ticker's pause, mirrored so that a ticker started afresh starts paused too. */
  ticker: 'ticker',
} as const;

/** The `ticker` state row. */
export interface TickerMirror {
  readonly paused: boolean;
  readonly reason?: string;
  readonly workflowId: string;
}
