import {
  allHandlersFinished,
  CancelledFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  executeChild,
  log,
  patched,
  proxyActivities,
  setHandler,
  TerminatedFailure,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  configureSignal,
  pauseSignal,
  type ReapNowRequest,
  reapNowSignal,
  reapNowUpdate,
  resumeSignal,
  statusQuery,
  type TickerSettings,
} from '../src/shared/messages';
import { combineShardSummaries, type PassShard, shardWorkflowId } from '../src/shared/shards';
import type { PassFailure, PassFailureReason } from '../src/shared/types';
import { reapPass } from './reap-pass';
import { type PassResult, Ticker, type TickerState } from './ticker';

type Activities = ReturnType<typeof createActivities>;

export type { TickerState } from './ticker';

export interface PoolReaperInput {
  readonly settings: TickerSettings;
  readonly state?: Partial<TickerState>;
  /** Tests lower this to exercise continue-as-new; production relies on Temporal's suggestion. */
  readonly continueAsNewAfterPasses?: number;
}

/**
 * Tickers started before this marker replay as they ran; every new run records it and gets
 * the behaviour that keeps reaping going: a timer-free pause, continue-as-new in every state,
 * the pause mirrored to the database, and a bounded pass. Remove (deprecatePatch, then the
 * old branches) once every ticker has continued as new under this code.
 */
export const NEVER_STOPS_PATCH = 'ticker-never-stops-v1';

/**
 * A ticker with REAPER_PASS_SHARDS > 1 starts one pass per shard each tick. Checked only when
 * the settings ask for shards, so an unsharded ticker records no marker and its histories are
 * exactly as before; a ticker that ran shards replays them.
 */
export const PASS_SHARDS_PATCH = 'pass-shards-v1';

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
  const ticker = new Ticker(input.settings, input.state);
  const passesAtStart = ticker.state.passesRun;

  setHandler(reapNowSignal, (request) => ticker.reapNow(request));
  setHandler(reapNowUpdate, (request?: ReapNowRequest) => ticker.reapNowAndWait(request), {
    validator: (request?: ReapNowRequest) => ticker.validateReapNow(request),
  });
  setHandler(pauseSignal, (request) => ticker.pause(request));
  setHandler(resumeSignal, (request) => ticker.resume(request));
  setHandler(configureSignal, (next) => ticker.configure(next));
  setHandler(statusQuery, () => ticker.status());
  if (v2) void mirrorPause(ticker);

  const loop = new TickerLoop(ticker, input, v2);
  for (;;) {
    const { state } = ticker;
    if (!state.catchUp || state.paused) await loop.waitUntilDue();
    ticker.nextTickAt = undefined;

    const passNumber = ticker.state.passesRun + 1;
    const coveredSeq = ticker.state.forceSeq;
    const reason = ticker.forced() ? 'forced' : ticker.state.catchUp ? 'backlog catch-up' : 'tick';
    ticker.currentPassId = passWorkflowId(workflowInfo().workflowId, passNumber, new Date());
    ticker.describe();
    const shards = ticker.settings.passShards ?? 1;
    const result =
      shards > 1 && patched(PASS_SHARDS_PATCH)
        ? await runShards(ticker, ticker.currentPassId, passNumber, reason, v2, shards)
        : await runPass(ticker, ticker.currentPassId, passNumber, reason, v2);
    ticker.passEnded(passNumber, coveredSeq, result);
    for (const failure of result.failures ?? (result.failure ? [result.failure] : [])) {
      log.warn('reap pass failed; the next tick tries again', { ...failure });
      await recordPassFailure({
        passId: failure.passId,
        reason: failure.reason,
        message: failure.message,
      }).catch((err: unknown) => log.error('could not record the pass failure', { error: String(err) }));
    }

    const passesThisRun = ticker.state.passesRun - passesAtStart;
    const wantsNewRun =
      workflowInfo().continueAsNewSuggested ||
      (input.continueAsNewAfterPasses !== undefined && passesThisRun >= input.continueAsNewAfterPasses);
    if (wantsNewRun) await loop.continueAsNewUnlessForced();
  }
}

/**
 * Mirrors every pause change into the provisioner database, in order, one write at a time,
 * retried until it lands; runs beside the loop and never holds it up.
 */
async function mirrorPause(ticker: Ticker): Promise<never> {
  for (;;) {
    await condition(() => ticker.mirroredVersion < ticker.pauseVersion);
    const version = ticker.pauseVersion;
    const { state } = ticker;
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
    ticker.mirroredVersion = version;
  }
}

/** The ticker's waiting: for the next tick or a force, and for a new run when Temporal suggests one. */
class TickerLoop {
  constructor(
    private readonly ticker: Ticker,
    private readonly input: PoolReaperInput,
    private readonly v2: boolean,
  ) {}

  private suggested(): boolean {
    return this.v2 && workflowInfo().continueAsNewSuggested;
  }

  /**
   * Continues as new with everything this run knows. An update waiting for a pass must be
   * answered by this run: then this returns (the force is due) and the pass runs first; a
   * force from a signal is just state and travels in the new run's arguments.
   */
  async continueAsNewUnlessForced(): Promise<void> {
    const { ticker, input } = this;
    await condition(() => allHandlersFinished() || ticker.forced());
    if (!allHandlersFinished()) return;
    await continueAsNew<typeof poolReaper>({
      settings: ticker.settings,
      state: { ...ticker.state, mirrorPending: ticker.mirroredVersion < ticker.pauseVersion },
      ...(input.continueAsNewAfterPasses !== undefined
        ? { continueAsNewAfterPasses: input.continueAsNewAfterPasses }
        : {}),
    });
  }

  /** Waits for the next tick or a force; a paused ticker waits with no timer at all. */
  async waitUntilDue(): Promise<void> {
    const { ticker, v2 } = this;
    for (;;) {
      ticker.settingsChanged = false;
      if (v2 && ticker.state.paused) {
        // No timer while paused: a pause of weeks adds no history but the messages it gets.
        ticker.nextTickAt = undefined;
        ticker.describe();
        await condition(() => !ticker.state.paused || this.suggested());
        if (ticker.state.paused) await this.continueAsNewUnlessForced();
        continue;
      }
      const tickMs = ticker.settings.tickMs;
      ticker.nextTickAt = Date.now() + tickMs;
      ticker.describe();
      const woken = await condition(
        () =>
          (ticker.forced() && !ticker.state.paused) ||
          ticker.settingsChanged ||
          (v2 && (ticker.state.paused || this.suggested())),
        tickMs,
        { summary: 'wait for the next tick or reapNow' },
      );
      if (woken && ticker.forced() && !ticker.state.paused) return;
      if (!woken && !ticker.state.paused) return;
      if (this.suggested()) {
        await this.continueAsNewUnlessForced();
        if (ticker.forced() && !ticker.state.paused) return;
      }
    }
  }
}

/**
 * Runs one pass per shard, all at once, and waits for every one: each lists only its shard's
 * clusters, shard 0 also runs the stuck-assigned report. A shard that fails, times out or is
 * terminated is recorded like a failed pass and holds up none of the others; its items are
 * listed again by the same shard next tick. The tick's summary sums the shards' summaries.
 */
async function runShards(
  ticker: Ticker,
  passId: string,
  passNumber: number,
  reason: string,
  v2: boolean,
  count: number,
): Promise<PassResult> {
  const shards = Array.from({ length: count }, (_, index) => ({ index, count }));
  const results = await Promise.all(
    shards.map(async (shard) => {
      const id = shardWorkflowId(passId, shard);
      return { passId: id, ...(await runPass(ticker, id, passNumber, reason, v2, shard)) };
    }),
  );
  const summary = combineShardSummaries(passId, results);
  const failures = results.flatMap((r) => (r.failure ? [r.failure] : []));
  return {
    ...(summary ? { summary } : {}),
    ...(failures.length > 0 ? { failure: failures[0]!, failures } : {}),
  };
}

/** Runs one pass as a child and returns its summary, or what ended it without one. */
async function runPass(
  ticker: Ticker,
  passId: string,
  passNumber: number,
  reason: string,
  v2: boolean,
  shard?: PassShard,
): Promise<PassResult> {
  const { settings } = ticker;
  try {
    const summary = await executeChild(reapPass, {
      workflowId: passId,
      args: [shard ? { ...settings.pass, shard } : settings.pass],
      staticSummary: shard
        ? `reap pass #${passNumber} (${reason}), shard ${shard.index} of ${shard.count}`
        : `reap pass #${passNumber} (${reason})`,
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
}
