import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { isShardCount } from './shards';
import type { PassFailure, PassRules, PassSummary, ReapPassOptions } from './types';

/**
 * The ticker's messages (signals, queries, updates) and their payloads, imported by the
 * workflows and by every client (CLI, worker start-up, tests). Plain Temporal CLI calls work
 * too: `temporal workflow signal --workflow-id pool-reaper --name reapNow`. The task queue and
 * workflow id defaults live with the rest of the configuration (src/config.ts); clients start
 * workflows by function (`client.workflow.start(reapPass, …)`), never by type name.
 */

export interface TickerSettings {
  readonly tickMs: number;
  readonly pass: ReapPassOptions;
  /** A pass running longer is ended by Temporal and counted as timed out (REAPER_PASS_TIMEOUT). */
  readonly passTimeoutMs?: number;
  /**
   * REAPER_PASS_SHARDS: reap passes per tick, each listing one shard of the clusters. Absent
   * (or 1): one pass per tick, exactly as before shards existed.
   */
  readonly passShards?: number;
}

/**
 * The longest tick, pass timeout or bookkeeping budget the ticker accepts (365 days). A finite
 * but larger tick breaks it: the next tick's time is past what a Date can hold, every workflow
 * task fails and the ticker stalls. REAPER_TICK and REAPER_PASS_TIMEOUT have the same bound, so
 * that no worker's own settings are refused here.
 */
export const MAX_TICKER_DURATION_MS = 365 * 24 * 3_600_000;

const positiveInteger = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const positiveDuration = (v: unknown) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= MAX_TICKER_DURATION_MS;
const optional = (test: (v: unknown) => boolean) => (v: unknown) => v === undefined || test(v);
// Graces are not bounded by MAX_TICKER_DURATION_MS: no timer waits on them, and no worker's own
// REAPER_*_GRACE may be refused here.
const positiveFinite = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** A pass's rules: every field present and sane, or an activity would list with NaN or 0. */
function isPassRules(value: unknown): value is PassRules {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<Record<keyof PassRules, unknown>>;
  return (
    positiveFinite(r.failedGraceMs) &&
    positiveInteger(r.batchLimit) &&
    positiveFinite(r.stuckAssignedGraceMs) &&
    positiveFinite(r.orphanGraceMs)
  );
}

/**
 * Whether a `configure` payload can be trusted: a signal may come from anyone with access
 * to the namespace (a hand-typed `temporal workflow signal`, an older client). Applying a
 * payload without lanes would list a batch and process none of it.
 */
export function isTickerSettings(value: unknown): value is TickerSettings {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof TickerSettings, unknown>>;
  const pass = v.pass as Partial<Record<keyof ReapPassOptions, unknown>> | undefined;
  return (
    positiveDuration(v.tickMs) &&
    optional(positiveDuration)(v.passTimeoutMs) &&
    optional(isShardCount)(v.passShards) &&
    typeof pass === 'object' &&
    pass !== null &&
    positiveInteger(pass.concurrency) &&
    optional(positiveInteger)(pass.clusterConcurrency) &&
    optional(positiveDuration)(pass.bookkeepingBudgetMs) &&
    optional(isPassRules)(pass.rules) &&
    // The ticker gives each shard pass its shard; settings never carry one.
    pass.shard === undefined
  );
}

export interface PauseRequest {
  readonly reason?: string;
}

export interface ReapNowRequest {
  /** Who asked, shown in the pass summary in the UI. */
  readonly requestedBy?: string;
}

export interface TickerStatus {
  readonly paused: boolean;
  readonly pauseReason: string | undefined;
  readonly passesRun: number;
  /** Passes that failed, timed out, were terminated or could not list. */
  readonly passesFailed: number;
  /** Failed passes since the last one that did its work (0 when healthy). */
  readonly consecutiveFailures: number;
  readonly lastFailure: PassFailure | undefined;
  readonly pendingForce: boolean;
  readonly currentPassId: string | undefined;
  /** ISO time of the next scheduled pass, or undefined while a pass runs or while paused. */
  readonly nextTickAt: string | undefined;
  readonly lastSummary: PassSummary | undefined;
  readonly settings: TickerSettings;
}

/** Start a pass as soon as the current one (if any) finishes; several coalesce into one. */
export const reapNowSignal = defineSignal<[ReapNowRequest?]>('reapNow');
/** Same as the signal, and returns the summary of the pass it caused. Refused while paused. */
export const reapNowUpdate = defineUpdate<PassSummary, [ReapNowRequest]>('reapNow');
export const pauseSignal = defineSignal<[PauseRequest?]>('pause');
export const resumeSignal = defineSignal<[PauseRequest?]>('resume');
/** Sent by each worker at start-up (signal-with-start), so a changed REAPER_TICK applies. */
export const configureSignal = defineSignal<[TickerSettings]>('configure');
export const statusQuery = defineQuery<TickerStatus>('status');
