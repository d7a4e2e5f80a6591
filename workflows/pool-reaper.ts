import {
  ApplicationFailure,
  allHandlersFinished,
  CancelledFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  TerminatedFailure,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  configureSignal,
  isTickerSettings,
  pauseSignal,
  type ReapNowRequest,
  reapNowSignal,
  reapNowUpdate,
  resumeSignal,
  statusQuery,
  type TickerSettings,
  type TickerStatus,
} from '../src/shared/messages';
import type { PassFailure, PassFailureReason, PassSummary } from '../src/shared/types';
import { reapPass } from './reap-pass';

type Activities = ReturnType<typeof createActivities>;

/** Everything the ticker carries across continue-as-new, so no request or state is lost. */
export interface TickerState {
  readonly passesRun: number;
  readonly paused: boolean;
  readonly pauseReason: string | undefined;
  /** Force requests are numbered; a pass "answers" every request numbered up to forceSeq at its start. */
  readonly forceSeq: number;
  readonly answeredSeq: number;
  readonly lastSummary: PassSummary | undefined;
  /** The last pass found a full batch and made progress: run the next one at once. */
  readonly catchUp: boolean;
  /** Passes that failed, timed out, were terminated or could not list (all runs). */
  readonly passesFailed?: number;
  /** Failed passes since the last one that did its work. */
  readonly consecutiveFailures?: number;
  readonly lastFailure?: PassFailure;
  /** The pause changed and its mirror in the provisioner database was not yet written. */
  readonly mirrorPending?: boolean;
}

export interface PoolReaperInput {
  readonly settings: TickerSettings;
  readonly state?: Partial<TickerState>;
  /** Tests lower this to exercise continue-as-new; production relies on Temporal's suggestion. */
  readonly continueAsNewAfterPasses?: number;
}

const INITIAL_STATE: TickerState = {
  passesRun: 0,
  paused: false,
  pauseReason: undefined,
  forceSeq: 0,
  answeredSeq: 0,
  lastSummary: undefined,
  catchUp: false,
  passesFailed: 0,
  consecutiveFailures: 0,
};

/**
 * Tickers started before this marker replay as they ran; every new run records it and gets
 * the behaviour that keeps reaping going: a timer-free pause, continue-as-new in every state,
 * the pause mirrored to the database, and a bounded pass. Remove (deprecatePatch, then the
 * old branches) once every ticker has continued as new under this code.
 */
export const NEVER_STOPS_PATCH = 'ticker-never-stops-v1';

/** A pass that runs longer than this is ended by Temporal and counted as timed out. */
export const DEFAULT_PASS_TIMEOUT_MS = 60 * 60_000;

/** Workflow ids carry the pass's start time so the UI list reads as a timeline. */
function passWorkflowId(tickerId: string, passNumber: number, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${tickerId}-pass-${stamp}-${passNumber}`;
}

/** Why a pass child ended without a summary, from the failure executeChild threw. */
function passFailureReason(err: unknown): PassFailureReason {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : undefined;
  if (!(err instanceof ChildWorkflowFailure)) return 'start_failed';
  if (cause instanceof TerminatedFailure) return 'terminated';
  if (cause instanceof TimeoutFailure) return 'timed_out';
  if (cause instanceof CancelledFailure) return 'cancelled';
  return 'failed';
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ChildWorkflowFailure ? (err.cause ?? err) : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Only what the ticker's own bookkeeping needs; none of it may ever fail the ticker. */
const tickerActivities = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const recordPassFailure = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3 },
}).recordPassFailure;

/**
 * The durable ticker: one reap pass at a time as a child workflow, then a durable timer
 * until the next tick or a force. Not a cron workflow: a signal cannot wake a cron run
 * that waits for its next time, and this loop wakes at once. Whatever a pass does (fails,
 * times out, is terminated), the ticker records it and goes on with the next tick.
 */
export async function poolReaper(input: PoolReaperInput): Promise<never> {
  const v2 = patched(NEVER_STOPS_PATCH);
  let settings = input.settings;
  let state: TickerState = { ...INITIAL_STATE, ...input.state };
  let currentPassId: string | undefined;
  let nextTickAt: number | undefined;
  let settingsChanged = false;
  // Completed passes of this run, so an update can find the pass that answered it.
  const answered: { seq: number; summary?: PassSummary; failure?: PassFailure }[] = [];
  const passesAtStart = state.passesRun;
  // Pause changes not yet mirrored to the database (see mirrorPause).
  let pauseVersion = state.mirrorPending ? 1 : 0;
  let mirroredVersion = 0;

  const describe = () => {
    const last = state.lastSummary;
    const failure = state.lastFailure;
    const failing = (state.consecutiveFailures ?? 0) > 0 && failure !== undefined;
    const lines = [
      state.paused ? `**Paused**${state.pauseReason ? `: ${state.pauseReason}` : ''}` : '**Running**',
      currentPassId ? `Current pass: ${currentPassId}` : undefined,
      nextTickAt !== undefined && !currentPassId
        ? `Next tick: ${new Date(nextTickAt).toISOString()}`
        : undefined,
      `Passes run: ${state.passesRun}${state.passesFailed ? ` (${state.passesFailed} failed)` : ''}`,
      failing
        ? `**Last ${state.consecutiveFailures} pass(es) failed**: ${failure.passId} ${failure.reason}: ${failure.message}`
        : undefined,
      last
        ? `Last pass ${last.passId}: reaped ${last.reaped}/${last.listed}, refused ${last.refused}, ` +
          `errors ${last.deprovisionErrors + last.deleteErrors}`
        : undefined,
    ];
    setCurrentDetails(lines.filter((l) => l !== undefined).join('\n\n'));
  };

  const requestPass = () => {
    state = { ...state, forceSeq: state.forceSeq + 1 };
    return state.forceSeq;
  };
  const pauseChanged = () => {
    pauseVersion += 1;
    describe();
  };

  setHandler(reapNowSignal, (request) => {
    requestPass();
    log.info('reapNow requested', { requestedBy: request?.requestedBy ?? 'signal' });
  });
  setHandler(
    reapNowUpdate,
    async (request?: ReapNowRequest) => {
      const seq = requestPass();
      log.info('reapNow update', { requestedBy: request?.requestedBy ?? 'update' });
      await condition(() => answered.some((a) => a.seq >= seq));
      const pass = answered.find((a) => a.seq >= seq)!;
      // A pass that could not list still has a summary (it says so); one that ended without
      // any (terminated, failed, timed out) fails the update with what ended it.
      if (pass.summary) return pass.summary;
      const failure = pass.failure!;
      throw ApplicationFailure.nonRetryable(
        `pass ${failure.passId} ${failure.reason.replace('_', ' ')}: ${failure.message}`,
        'PassFailedError',
      );
    },
    {
      validator: (_request?: ReapNowRequest) => {
        if (state.paused) {
          throw new Error(
            `pool-reaper is paused (${state.pauseReason ?? 'no reason given'}); resume it first`,
          );
        }
      },
    },
  );
  setHandler(pauseSignal, (request) => {
    state = { ...state, paused: true, pauseReason: request?.reason ?? 'paused by an operator' };
    log.info('paused', { reason: state.pauseReason });
    pauseChanged();
  });
  setHandler(resumeSignal, (request) => {
    state = { ...state, paused: false, pauseReason: undefined };
    log.info('resumed', { reason: request?.reason });
    pauseChanged();
  });
  setHandler(configureSignal, (next) => {
    // A malformed message (a hand-sent signal, an older client) must never stall the loop.
    if (!isTickerSettings(next)) {
      log.warn('configure signal ignored: malformed settings', {
        received: JSON.stringify(next)?.slice(0, 300),
      });
      return;
    }
    settingsChanged = settings.tickMs !== next.tickMs;
    settings = next;
  });
  setHandler(
    statusQuery,
    (): TickerStatus => ({
      paused: state.paused,
      pauseReason: state.pauseReason,
      passesRun: state.passesRun,
      passesFailed: state.passesFailed ?? 0,
      consecutiveFailures: state.consecutiveFailures ?? 0,
      lastFailure: state.lastFailure,
      pendingForce: state.forceSeq > state.answeredSeq,
      currentPassId,
      nextTickAt: nextTickAt !== undefined && !currentPassId ? new Date(nextTickAt).toISOString() : undefined,
      lastSummary: state.lastSummary,
      settings,
    }),
  );

  // Mirrors every pause change into the provisioner database, in order, one write at a
  // time, retried until it lands; runs beside the loop and never holds it up.
  const mirrorPause = async () => {
    for (;;) {
      await condition(() => mirroredVersion < pauseVersion);
      const version = pauseVersion;
      const mirror = {
        paused: state.paused,
        ...(state.pauseReason !== undefined ? { reason: state.pauseReason } : {}),
        workflowId: workflowInfo().workflowId,
      };
      try {
        await tickerActivities.recordTickerState(mirror);
      } catch (err) {
        log.warn('could not mirror the pause; will try again on the next change', { error: String(err) });
      }
      mirroredVersion = version;
    }
  };
  if (v2) void mirrorPause();

  const forced = () => state.forceSeq > state.answeredSeq;
  const suggested = () => v2 && workflowInfo().continueAsNewSuggested;

  /**
   * Continues as new with everything this run knows. An update waiting for a pass must be
   * answered by this run: then this returns (the force is due) and the pass runs first; a
   * force from a signal is just state and travels in the new run's arguments.
   */
  const continueAsNewUnlessForced = async (): Promise<void> => {
    await condition(() => allHandlersFinished() || forced());
    if (!allHandlersFinished()) return;
    await continueAsNew<typeof poolReaper>({
      settings,
      state: { ...state, mirrorPending: mirroredVersion < pauseVersion },
      ...(input.continueAsNewAfterPasses !== undefined
        ? { continueAsNewAfterPasses: input.continueAsNewAfterPasses }
        : {}),
    });
  };

  /** Waits for the next tick or a force; a paused ticker waits with no timer at all. */
  const waitUntilDue = async () => {
    for (;;) {
      settingsChanged = false;
      if (v2 && state.paused) {
        // No timer while paused: a pause of weeks adds no history but the messages it gets.
        nextTickAt = undefined;
        describe();
        await condition(() => !state.paused || suggested());
        if (state.paused) await continueAsNewUnlessForced();
        continue;
      }
      nextTickAt = Date.now() + settings.tickMs;
      describe();
      const woken = await condition(
        () => (forced() && !state.paused) || settingsChanged || (v2 && (state.paused || suggested())),
        settings.tickMs,
        { summary: 'wait for the next tick or reapNow' },
      );
      if (woken && forced() && !state.paused) return;
      if (!woken && !state.paused) return;
      if (suggested()) {
        await continueAsNewUnlessForced();
        if (forced() && !state.paused) return;
      }
    }
  };

  /** Runs one pass as a child and returns its summary, or what ended it without one. */
  const runPass = async (passId: string, passNumber: number, reason: string) => {
    try {
      const summary = await executeChild(reapPass, {
        workflowId: passId,
        args: [settings.pass],
        staticSummary: `reap pass #${passNumber} (${reason})`,
        ...(v2 ? { workflowExecutionTimeout: settings.passTimeoutMs ?? DEFAULT_PASS_TIMEOUT_MS } : {}),
      });
      if (summary.aborted) {
        const failure: PassFailure = {
          passId,
          reason: 'list_failed',
          message: `${summary.aborted.errorType}: ${summary.aborted.message}`,
          at: new Date().toISOString(),
        };
        return { summary, failure };
      }
      return { summary };
    } catch (err) {
      // A failed, timed-out, cancelled or terminated pass (an operator may end a stuck one)
      // is recorded; the ticker itself never fails because of a pass.
      const failure: PassFailure = {
        passId,
        reason: passFailureReason(err),
        message: failureMessage(err),
        at: new Date().toISOString(),
      };
      return { failure };
    }
  };

  for (;;) {
    if (!state.catchUp || state.paused) await waitUntilDue();
    nextTickAt = undefined;

    const passNumber = state.passesRun + 1;
    const coveredSeq = state.forceSeq;
    const reason = coveredSeq > state.answeredSeq ? 'forced' : state.catchUp ? 'backlog catch-up' : 'tick';
    currentPassId = passWorkflowId(workflowInfo().workflowId, passNumber, new Date());
    describe();
    const { summary, failure } = await runPass(currentPassId, passNumber, reason);
    currentPassId = undefined;
    state = {
      ...state,
      passesRun: passNumber,
      answeredSeq: Math.max(state.answeredSeq, coveredSeq),
      lastSummary: summary ?? state.lastSummary,
      catchUp: failure === undefined && summary !== undefined && summary.batchFull && summary.reaped > 0,
      ...(failure
        ? {
            passesFailed: (state.passesFailed ?? 0) + 1,
            consecutiveFailures: (state.consecutiveFailures ?? 0) + 1,
            lastFailure: failure,
          }
        : { consecutiveFailures: 0 }),
    };
    answered.push(
      failure ? { seq: coveredSeq, failure, ...(summary ? { summary } : {}) } : { seq: coveredSeq, summary },
    );
    describe();
    if (failure) {
      log.warn('reap pass failed; the next tick tries again', { ...failure });
      await recordPassFailure({
        passId: failure.passId,
        reason: failure.reason,
        message: failure.message,
      }).catch((err: unknown) => log.error('could not record the pass failure', { error: String(err) }));
    }

    const passesThisRun = state.passesRun - passesAtStart;
    const wantsNewRun =
      workflowInfo().continueAsNewSuggested ||
      (input.continueAsNewAfterPasses !== undefined && passesThisRun >= input.continueAsNewAfterPasses);
    if (wantsNewRun) await continueAsNewUnlessForced();
  }
}
