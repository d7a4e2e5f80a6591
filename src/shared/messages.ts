import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import {
  activityTimeoutsProblem,
  BATCH_LIMIT,
  CONCURRENCY,
  deprovisionRetryProblem,
  GRACE,
  ruleProblem,
  shown,
  TICKER_DURATION,
} from './settings-rules';
import { isShardCount, MAX_PASS_SHARDS } from './shards';
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

// The limits live with the env config's (one source of truth); re-exported for older importers.
export { MAX_TICKER_DURATION_MS } from './settings-rules';

/** A pass's rules: every field present and sane, or an activity would list with NaN or 0. */
function passRulesProblem(path: string, value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `${path}: expected an object, got ${shown(value)}`;
  const r = value as Partial<Record<keyof PassRules, unknown>>;
  return (
    ruleProblem(`${path}.failedGraceMs`, r.failedGraceMs, GRACE) ??
    ruleProblem(`${path}.batchLimit`, r.batchLimit, BATCH_LIMIT) ??
    ruleProblem(`${path}.stuckAssignedGraceMs`, r.stuckAssignedGraceMs, GRACE) ??
    ruleProblem(`${path}.orphanGraceMs`, r.orphanGraceMs, GRACE)
  );
}

/**
 * Why a `configure` payload cannot be trusted, in one line naming the first bad field
 * (`pass.deprovisionRetry.maximumAttempts: expected an integer of at least 1, got 0`), or
 * undefined when it can. A signal may come from anyone with access to the namespace (a
 * hand-typed `temporal workflow signal`, an older client). Applying a payload without lanes
 * would list a batch and process none of it.
 */
export function tickerSettingsProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `settings: expected an object, got ${shown(value)}`;
  const v = value as Partial<Record<keyof TickerSettings, unknown>>;
  const pass = v.pass as Partial<Record<keyof ReapPassOptions, unknown>> | undefined;
  const timing =
    ruleProblem('tickMs', v.tickMs, TICKER_DURATION) ??
    ruleProblem('passTimeoutMs', v.passTimeoutMs, TICKER_DURATION, true) ??
    (v.passShards === undefined || isShardCount(v.passShards)
      ? undefined
      : `passShards: expected an integer from 1 to ${MAX_PASS_SHARDS}, got ${shown(v.passShards)}`);
  if (timing) return timing;
  if (typeof pass !== 'object' || pass === null) return `pass: expected an object, got ${shown(pass)}`;
  return (
    ruleProblem('pass.concurrency', pass.concurrency, CONCURRENCY) ??
    ruleProblem('pass.clusterConcurrency', pass.clusterConcurrency, CONCURRENCY, true) ??
    ruleProblem('pass.redisClusterConcurrency', pass.redisClusterConcurrency, CONCURRENCY, true) ??
    (pass.shard === undefined
      ? undefined
      : `pass.shard: set by the ticker for each shard pass, never in settings, got ${shown(pass.shard)}`) ??
    ruleProblem('pass.bookkeepingBudgetMs', pass.bookkeepingBudgetMs, TICKER_DURATION, true) ??
    (pass.rules === undefined ? undefined : passRulesProblem('pass.rules', pass.rules)) ??
    (pass.deprovisionRetry === undefined
      ? undefined
      : deprovisionRetryProblem('pass.deprovisionRetry', pass.deprovisionRetry)) ??
    (pass.activityTimeouts === undefined
      ? undefined
      : activityTimeoutsProblem('pass.activityTimeouts', pass.activityTimeouts))
  );
}

/** Whether a `configure` payload can be trusted (tickerSettingsProblem says why not). */
export function isTickerSettings(value: unknown): value is TickerSettings {
  return tickerSettingsProblem(value) === undefined;
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
