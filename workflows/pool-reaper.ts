import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  log,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  configureSignal,
  pauseSignal,
  type ReapNowRequest,
  reapNowSignal,
  reapNowUpdate,
  resumeSignal,
  statusQuery,
  type TickerSettings,
  type TickerStatus,
} from '../src/shared/messages';
import type { PassSummary } from '../src/shared/types';
import { reapPass } from './reap-pass';

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
}

export interface PoolReaperInput {
  readonly settings: TickerSettings;
  readonly state?: TickerState;
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
};

/** Workflow ids carry the pass's start time so the UI list reads as a timeline. */
function passWorkflowId(tickerId: string, passNumber: number, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${tickerId}-pass-${stamp}-${passNumber}`;
}

/**
 * The durable ticker: one reap pass at a time as a child workflow, then a durable timer
 * until the next tick or a force. Not a cron workflow: a signal cannot wake a cron run
 * that waits for its next time, and this loop wakes at once.
 */
export async function poolReaper(input: PoolReaperInput): Promise<never> {
  let settings = input.settings;
  let state: TickerState = { ...INITIAL_STATE, ...input.state };
  let currentPassId: string | undefined;
  let nextTickAt: number | undefined;
  let settingsChanged = false;
  // Completed passes of this run, so an update can find the pass that answered it.
  const answered: { seq: number; summary: PassSummary }[] = [];
  const passesAtStart = state.passesRun;

  const describe = () => {
    const last = state.lastSummary;
    const lines = [
      state.paused ? `**Paused**${state.pauseReason ? `: ${state.pauseReason}` : ''}` : '**Running**',
      currentPassId ? `Current pass: ${currentPassId}` : undefined,
      nextTickAt !== undefined && !currentPassId
        ? `Next tick: ${new Date(nextTickAt).toISOString()}`
        : undefined,
      `Passes run: ${state.passesRun}`,
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
      const pass = answered.find((a) => a.seq >= seq);
      return pass!.summary;
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
    describe();
  });
  setHandler(resumeSignal, (request) => {
    state = { ...state, paused: false, pauseReason: undefined };
    log.info('resumed', { reason: request?.reason });
    describe();
  });
  setHandler(configureSignal, (next) => {
    settingsChanged = settings.tickMs !== next.tickMs;
    settings = next;
  });
  setHandler(
    statusQuery,
    (): TickerStatus => ({
      paused: state.paused,
      pauseReason: state.pauseReason,
      passesRun: state.passesRun,
      pendingForce: state.forceSeq > state.answeredSeq,
      currentPassId,
      nextTickAt: nextTickAt !== undefined && !currentPassId ? new Date(nextTickAt).toISOString() : undefined,
      lastSummary: state.lastSummary,
      settings,
    }),
  );

  for (;;) {
    const forced = () => state.forceSeq > state.answeredSeq;
    if (!state.catchUp || state.paused) {
      // Wait for the tick, a force, or a new tick length; a paused ticker lets ticks pass by.
      let due = false;
      while (!due) {
        settingsChanged = false;
        nextTickAt = Date.now() + settings.tickMs;
        describe();
        const woken = await condition(() => (forced() && !state.paused) || settingsChanged, settings.tickMs, {
          summary: 'wait for the next tick or reapNow',
        });
        due = (woken && forced() && !state.paused) || (!woken && !state.paused);
      }
    }
    nextTickAt = undefined;

    const passNumber = state.passesRun + 1;
    const coveredSeq = state.forceSeq;
    const reason = coveredSeq > state.answeredSeq ? 'forced' : state.catchUp ? 'backlog catch-up' : 'tick';
    currentPassId = passWorkflowId(workflowInfo().workflowId, passNumber, new Date());
    describe();
    const summary = await executeChild(reapPass, {
      workflowId: currentPassId,
      args: [settings.pass],
      staticSummary: `reap pass #${passNumber} (${reason})`,
    });
    currentPassId = undefined;
    state = {
      ...state,
      passesRun: passNumber,
      answeredSeq: Math.max(state.answeredSeq, coveredSeq),
      lastSummary: summary,
      catchUp: summary.batchFull && summary.reaped > 0,
    };
    answered.push({ seq: coveredSeq, summary });
    describe();

    const passesThisRun = state.passesRun - passesAtStart;
    const wantsNewRun =
      workflowInfo().continueAsNewSuggested ||
      (input.continueAsNewAfterPasses !== undefined && passesThisRun >= input.continueAsNewAfterPasses);
    if (wantsNewRun) {
      // An update waiting for a pass must be answered by this run; a force from a signal is
      // just state and travels in the new run's arguments.
      await condition(() => allHandlersFinished() || forced());
      if (allHandlersFinished()) {
        await continueAsNew<typeof poolReaper>({
          settings,
          state,
          ...(input.continueAsNewAfterPasses !== undefined
            ? { continueAsNewAfterPasses: input.continueAsNewAfterPasses }
            : {}),
        });
      }
    }
  }
}
