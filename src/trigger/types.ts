import type { ReapNowRequest, TickerStatus } from '../shared/messages';
import type { PassSummary } from '../shared/types';

export type TriggerMode = 'ticker' | 'schedule';

/** One pass the Schedule started, newest first in `ReaperStatus.recentPasses`. */
export interface RecentPass {
  readonly passId: string;
  /** When the Schedule took the action (a trigger's time for `reap-now`). */
  readonly takenAt: string;
  /** Temporal's status of the pass's latest run: running, completed, failed, terminated, … */
  readonly status: string;
  readonly summary?: PassSummary;
}

/**
 * What `status` shows in either mode. The ticker's fields keep their meaning, so scripts that
 * read `status --json` work in both; the Schedule adds its note, next run times and last passes.
 */
export interface ReaperStatus extends TickerStatus {
  readonly mode: TriggerMode;
  /** Next times a pass is due (one for the ticker, several for a Schedule); empty while paused. */
  readonly nextRunTimes: readonly string[];
  /** The Schedule's note (the pause reason, or who last changed it). */
  readonly note?: string;
  /** Schedule mode: the last passes it started and, once they ended, their summaries. */
  readonly recentPasses?: readonly RecentPass[];
  /** Schedule mode: ticks skipped because a pass was still running (overlap SKIP). */
  readonly skippedOverlap?: number;
}

/**
 * The operator commands, the same in both modes: the CLI picks the implementation from
 * REAPER_TRIGGER and never needs to know which one it talks to.
 */
export interface ReaperTrigger {
  readonly mode: TriggerMode;
  /** Asks for a pass as soon as the current one (if any) finishes. */
  reapNow(request?: ReapNowRequest): Promise<void>;
  /** Same, and waits for the summary of the pass it caused. Refused while paused. */
  reapNowAndWait(request?: ReapNowRequest): Promise<PassSummary>;
  pause(request?: { reason?: string }): Promise<void>;
  resume(request?: { reason?: string }): Promise<void>;
  status(): Promise<ReaperStatus>;
  /** The running pass's current details (progress), for the CLI's progress line. */
  passDetails(passId: string): Promise<string | undefined>;
}
