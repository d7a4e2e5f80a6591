import {
  type Client,
  ScheduleAlreadyRunning,
  type ScheduleDescription,
  ScheduleNotFoundError,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
} from '@temporalio/client';
import { reapPass } from '../../workflows/reap-pass';
import {
  PassFailedError,
  ReaperRequestRefusedError,
  TickerNotRunningError,
  tickerSettingsFrom,
} from '../client';
import { ConfigError, type ReaperConfig } from '../config';
import type { Logger } from '../logger';
import type { ReapNowRequest } from '../shared/messages';
import type { PassFailure, PassFailureReason, PassSummary } from '../shared/types';
import type { ReaperStatus, ReaperTrigger, RecentPass } from './types';

/**
 * Ticks that land while a pass runs are dropped, never queued: a pass lists whatever is stale
 * when it starts, so a queued tick only adds a pass that re-lists what the last one just did.
 * Measured against BUFFER_ONE in bench/schedule-overlap.ts (docs/triggers.md).
 */
export const SCHEDULE_OVERLAP = ScheduleOverlapPolicy.SKIP;

/**
 * `reap-now` is a trigger with BUFFER_ONE: while a pass runs, the forced pass starts as soon
 * as it ends (what the ticker's reapNow does); SKIP would drop the operator's request. Never
 * the SDK's default for trigger(), ALLOW_ALL, which would run two passes side by side.
 */
export const REAP_NOW_OVERLAP = ScheduleOverlapPolicy.BUFFER_ONE;

/** The server's own floor for a catch-up window. */
const MIN_CATCHUP_MS = 10_000;

/**
 * Missed ticks after a server outage: at most one pass is useful (it lists everything stale),
 * and one that is minutes late is no better than the next tick. One tick, within [10 s, 1 min].
 */
export function catchupWindowMs(tickMs: number): number {
  return Math.min(Math.max(tickMs, MIN_CATCHUP_MS), 60_000);
}

/** A note set while a worker switches modes; never carried as an operator's pause. */
export const SWITCHING_NOTE = 'pool-reaper: switching trigger mode';

export type ScheduleSettings = ScheduleOptions<ScheduleOptionsStartWorkflowAction<typeof reapPass>>;

/** The Schedule this worker's config asks for (spec, action, policies; not its state). */
export function scheduleOptionsFrom(
  config: ReaperConfig,
  searchAttributes: boolean | ReadonlySet<string> = true,
): ScheduleSettings {
  // A Schedule counts in whole seconds; a tick that would round to another value is refused,
  // so the Schedule never differs from REAPER_TICK (and is not updated on every start-up).
  if (config.tickMs % 1000 !== 0) {
    throw new ConfigError(
      'REAPER_TICK',
      `whole seconds with REAPER_TRIGGER=schedule, got ${config.tickMs} ms`,
    );
  }
  return {
    scheduleId: config.tickerWorkflowId,
    spec: { intervals: [{ every: config.tickMs }] },
    action: {
      type: 'startWorkflow',
      workflowType: reapPass,
      taskQueue: config.taskQueue,
      // Temporal appends the scheduled time: pool-reaper-pass-2026-11-30T06:30:00Z.
      workflowId: `${config.tickerWorkflowId}-pass`,
      args: [
        // The same pass options as the ticker's (concurrency, search attributes, dry run).
        { ...tickerSettingsFrom(config, searchAttributes).pass, scheduled: true },
      ],
      // Per run: a pass that continues as new to drain a backlog gets the budget per batch.
      workflowRunTimeout: config.passTimeoutMs,
      staticSummary: `reap pass (Schedule ${config.tickerWorkflowId})`,
    },
    policies: {
      overlap: SCHEDULE_OVERLAP,
      catchupWindow: catchupWindowMs(config.tickMs),
      // A failed pass must never stop reaping: the next tick tries again.
      pauseOnFailure: false,
    },
  };
}

/** The fields a worker owns, in one comparable shape (describe() rounds and decodes them). */
function fingerprint(d: {
  every: number | undefined;
  action: {
    workflowType: unknown;
    taskQueue?: unknown;
    workflowId?: unknown;
    args?: unknown;
    workflowRunTimeout?: unknown;
  };
  overlap: unknown;
  catchupWindow: unknown;
  pauseOnFailure: unknown;
}): string {
  const type =
    typeof d.action.workflowType === 'function' ? d.action.workflowType.name : d.action.workflowType;
  return JSON.stringify([
    d.every,
    type,
    d.action.taskQueue,
    d.action.workflowId,
    d.action.args,
    Number(d.action.workflowRunTimeout),
    d.overlap,
    Number(d.catchupWindow),
    d.pauseOnFailure,
  ]);
}

function wanted(desired: ScheduleSettings): string {
  return fingerprint({
    every: Number(desired.spec.intervals?.[0]?.every),
    action: desired.action,
    overlap: desired.policies?.overlap,
    catchupWindow: desired.policies?.catchupWindow,
    pauseOnFailure: desired.policies?.pauseOnFailure,
  });
}

function current(d: ScheduleDescription): string {
  return fingerprint({
    every: d.spec.intervals?.[0]?.every,
    action: d.action,
    overlap: d.policies.overlap,
    catchupWindow: d.policies.catchupWindow,
    pauseOnFailure: d.policies.pauseOnFailure,
  });
}

/**
 * Creates the Schedule, or brings an existing one to this worker's settings (a changed tick or
 * pass setting), keeping its state: an operator's pause survives every deploy. N replicas: one
 * creates it, the others find it. `pause` carries a pause from the trigger it replaces.
 */
export async function ensureSchedule(
  client: Client,
  desired: ScheduleSettings,
  log: Logger,
  options: {
    /** Carried from the retired ticker: applied to a new or an existing Schedule. */
    pause?: { reason: string } | undefined;
    /** Recorded in the ticker's mirror: applied only if this call creates the Schedule. */
    pauseIfCreated?: { reason: string } | undefined;
  } = {},
): Promise<{ created: boolean; updated: boolean }> {
  const { pause } = options;
  const initialPause = pause ?? options.pauseIfCreated;
  let created = false;
  let updated = false;
  try {
    await client.schedule.create({
      ...desired,
      state: initialPause
        ? { paused: true, note: initialPause.reason }
        : { note: 'created by a pool-reaper worker (REAPER_TRIGGER=schedule)' },
    });
    created = true;
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    const handle = client.schedule.getHandle(desired.scheduleId);
    const before = await handle.describe();
    if (current(before) !== wanted(desired)) {
      await handle.update((previous) => ({
        ...previous,
        spec: desired.spec,
        action: desired.action,
        policies: desired.policies ?? {},
      }));
      updated = true;
    }
    if (pause && !before.state.paused) await handle.pause(pause.reason);
  }
  log.info(
    {
      event: 'pool_reaper.schedule.ensured',
      scheduleId: desired.scheduleId,
      created,
      updated,
      tickMs: desired.spec.intervals?.[0]?.every,
      paused: created ? initialPause?.reason : pause?.reason,
    },
    created ? 'schedule created' : updated ? 'schedule updated' : 'schedule up to date',
  );
  return { created, updated };
}

/** A closed pass's status as the pass-failure counter's reason (as the ticker labels it). */
export const FAILURE_REASONS: Readonly<Record<string, PassFailureReason>> = {
  FAILED: 'failed',
  TIMED_OUT: 'timed_out',
  TERMINATED: 'terminated',
  CANCELLED: 'cancelled',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The Schedule behind the common operator interface: trigger, pause with a note, describe. */
export class ScheduleTrigger implements ReaperTrigger {
  readonly mode = 'schedule' as const;

  constructor(
    private readonly client: Client,
    readonly scheduleId: string,
    /** How often `reap-now --wait` looks for the pass its trigger started. */
    private readonly pollMs = 500,
  ) {}

  private handle() {
    return this.client.schedule.getHandle(this.scheduleId);
  }

  private async describe(): Promise<ScheduleDescription> {
    try {
      return await this.handle().describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        throw new TickerNotRunningError(
          `no Schedule with id ${this.scheduleId}: start a worker with REAPER_TRIGGER=schedule (\`pool-reaper worker\`)`,
        );
      }
      throw err;
    }
  }

  /** Like the ticker, a paused reaper refuses forced passes: resume first. */
  private async refuseIfPaused(): Promise<ScheduleDescription> {
    const d = await this.describe();
    if (d.state.paused) {
      throw new ReaperRequestRefusedError(
        `pool-reaper is paused (${d.state.note || 'no reason given'}); resume it first`,
      );
    }
    return d;
  }

  async reapNow(_request: ReapNowRequest = {}): Promise<void> {
    await this.refuseIfPaused();
    await this.handle().trigger(REAP_NOW_OVERLAP);
  }

  async reapNowAndWait(request: ReapNowRequest = {}): Promise<PassSummary> {
    const before = await this.refuseIfPaused();
    const seen = new Set([
      ...before.info.recentActions.map((a) => a.action.workflow.workflowId),
      ...before.info.runningActions.map((a) => a.workflow.workflowId),
    ]);
    await this.reapNow(request);
    // trigger() returns no id: the pass is the first action this Schedule takes after it
    // (after the running pass ends, under BUFFER_ONE). A tick that lands first answers too.
    let passId: string | undefined;
    while (passId === undefined) {
      const d = await this.describe();
      passId = [
        ...d.info.runningActions.map((a) => a.workflow.workflowId),
        ...d.info.recentActions.map((a) => a.action.workflow.workflowId),
      ].find((id) => !seen.has(id));
      if (passId === undefined) await sleep(this.pollMs);
    }
    try {
      // Follows the pass through continue-as-new: the summary of its last batch.
      return await this.client.workflow.getHandle<typeof reapPass>(passId).result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        throw new PassFailedError(`pass ${passId} ${err.message}: ${err.cause?.message ?? ''}`.trim());
      }
      throw err;
    }
  }

  async pause(request: { reason?: string } = {}): Promise<void> {
    await this.describe();
    await this.handle().pause(request.reason ?? 'paused by an operator');
  }

  async resume(request: { reason?: string } = {}): Promise<void> {
    await this.describe();
    await this.handle().unpause(request.reason ?? 'resumed by an operator');
  }

  /** One pass the Schedule started: its latest run's status and, once completed, its summary. */
  private async recentPass(passId: string, takenAt: Date): Promise<RecentPass & { failure?: PassFailure }> {
    const handle = this.client.workflow.getHandle<typeof reapPass>(passId);
    const d = await handle.describe().catch(() => undefined);
    const status = d?.status.name ?? 'UNKNOWN';
    const base = { passId, takenAt: takenAt.toISOString(), status: status.toLowerCase() };
    if (status === 'COMPLETED') {
      const summary = await handle.result().catch(() => undefined);
      return summary ? { ...base, summary } : base;
    }
    const reason = FAILURE_REASONS[status];
    if (!reason) return base;
    return {
      ...base,
      failure: {
        passId,
        reason,
        message: `the pass ${status.toLowerCase().replace('_', ' ')}`,
        at: (d?.closeTime ?? takenAt).toISOString(),
      },
    };
  }

  async status(): Promise<ReaperStatus> {
    const d = await this.describe();
    const actions = [...d.info.recentActions].reverse().slice(0, 5);
    const passes = await Promise.all(
      actions.map((a) => this.recentPass(a.action.workflow.workflowId, a.takenAt)),
    );
    const failures = passes.filter((p) => p.failure || p.summary?.aborted);
    const firstOk = passes.findIndex((p) => p.summary && !p.summary.aborted);
    const consecutive =
      firstOk < 0 ? failures.length : passes.slice(0, firstOk).filter((p) => p.status !== 'running').length;
    const latestFailure = passes.find((p) => p.failure || p.summary?.aborted);
    const lastFailure: PassFailure | undefined = latestFailure?.failure
      ? latestFailure.failure
      : latestFailure?.summary?.aborted
        ? {
            passId: latestFailure.passId,
            reason: 'list_failed',
            message: `${latestFailure.summary.aborted.errorType}: ${latestFailure.summary.aborted.message}`,
            at: latestFailure.summary.finishedAt,
          }
        : undefined;
    const args = (d.action.args?.[0] ?? {}) as ReaperStatus['settings']['pass'];
    const nextRunTimes = d.state.paused ? [] : d.info.nextActionTimes.map((t) => t.toISOString());
    const currentPassId = d.info.runningActions[0]?.workflow.workflowId;
    return {
      mode: 'schedule',
      paused: d.state.paused,
      pauseReason: d.state.paused ? d.state.note : undefined,
      ...(d.state.note ? { note: d.state.note } : {}),
      passesRun: d.info.numActionsTaken,
      // Within the passes the Schedule still lists (its recent actions).
      passesFailed: failures.length,
      consecutiveFailures: consecutive,
      lastFailure,
      pendingForce: Number(d.raw.info?.bufferSize ?? 0) > 0,
      currentPassId,
      nextTickAt: currentPassId ? undefined : nextRunTimes[0],
      nextRunTimes,
      lastSummary: passes.find((p) => p.summary)?.summary,
      settings: {
        tickMs: d.spec.intervals?.[0]?.every ?? 0,
        pass: args,
        ...(d.action.workflowRunTimeout !== undefined
          ? { passTimeoutMs: Number(d.action.workflowRunTimeout) }
          : {}),
      },
      recentPasses: passes.map(({ failure: _failure, ...p }) => p),
      skippedOverlap: d.info.numActionsSkippedOverlap,
    };
  }

  async passDetails(passId: string): Promise<string | undefined> {
    const metadata = await this.client.workflow
      .getHandle(passId)
      .query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return metadata.currentDetails;
  }
}
