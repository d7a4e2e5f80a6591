import { ApplicationFailure, condition, log, setCurrentDetails } from '@temporalio/workflow';
import {
  type PauseRequest,
  type ReapNowRequest,
  type TickerSettings,
  type TickerStatus,
  tickerSettingsProblem,
} from '../src/shared/messages';
import type { PassFailure, PassSummary } from '../src/shared/types';

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

export const INITIAL_STATE: TickerState = {
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

/** How one pass ended: its summary, what ended it without one, or both (a pass that could not list). */
export interface PassResult {
  readonly summary?: PassSummary;
  readonly failure?: PassFailure;
  /** A sharded tick: every shard pass that ended without its work (`failure` is the first). */
  readonly failures?: readonly PassFailure[];
}

/**
 * The ticker's state and its message handlers, in the style of samples-typescript's
 * message-passing sample: poolReaper registers one-line handlers that call these methods,
 * and its loop reads and advances the same object. Workflow code: deterministic only.
 */
export class Ticker {
  settings: TickerSettings;
  state: TickerState;
  currentPassId: string | undefined;
  nextTickAt: number | undefined;
  /** The tick changed while the loop waited on its timer: wait again with the new one. */
  settingsChanged = false;
  /** Pause changes, and how many of them are mirrored to the database (see mirrorPause). */
  pauseVersion: number;
  mirroredVersion = 0;
  /** Completed passes of this run, so an update can find the pass that answered it. */
  private readonly answered: { seq: number; summary?: PassSummary; failure?: PassFailure }[] = [];

  constructor(settings: TickerSettings, state: Partial<TickerState> | undefined) {
    this.settings = settings;
    this.state = { ...INITIAL_STATE, ...state };
    this.pauseVersion = this.state.mirrorPending ? 1 : 0;
  }

  /** A force request is due: some request is numbered past what the last pass answered. */
  forced(): boolean {
    return this.state.forceSeq > this.state.answeredSeq;
  }

  reapNow(request?: ReapNowRequest): void {
    this.requestPass();
    log.info('reapNow requested', { requestedBy: request?.requestedBy ?? 'signal' });
  }

  /** The update: waits for the pass that answers it and returns its summary, or fails with what ended it. */
  async reapNowAndWait(request?: ReapNowRequest): Promise<PassSummary> {
    const seq = this.requestPass();
    log.info('reapNow update', { requestedBy: request?.requestedBy ?? 'update' });
    await condition(() => this.answered.some((a) => a.seq >= seq));
    const pass = this.answered.find((a) => a.seq >= seq)!;
    // A pass that could not list still has a summary (it says so); one that ended without
    // any (terminated, failed, timed out) fails the update with what ended it.
    if (pass.summary) return pass.summary;
    const failure = pass.failure!;
    throw ApplicationFailure.nonRetryable(
      `pass ${failure.passId} ${failure.reason.replace('_', ' ')}: ${failure.message}`,
      'PassFailedError',
    );
  }

  /** The update's validator: a paused ticker refuses a forced pass it could not run. */
  validateReapNow(_request?: ReapNowRequest): void {
    if (this.state.paused) {
      throw new Error(
        `pool-reaper is paused (${this.state.pauseReason ?? 'no reason given'}); resume it first`,
      );
    }
  }

  pause(request?: PauseRequest): void {
    this.state = { ...this.state, paused: true, pauseReason: request?.reason ?? 'paused by an operator' };
    log.info('paused', { reason: this.state.pauseReason });
    this.pauseChanged();
  }

  resume(request?: PauseRequest): void {
    this.state = { ...this.state, paused: false, pauseReason: undefined };
    log.info('resumed', { reason: request?.reason });
    this.pauseChanged();
  }

  configure(next: unknown): void {
    // A malformed message (a hand-sent signal, an older client) must never stall the loop.
    const problem = tickerSettingsProblem(next);
    if (problem !== undefined) {
      // One line naming the field; the ticker keeps the settings it has.
      log.warn(`configure signal ignored: ${problem}`, {
        reason: problem,
        received: JSON.stringify(next)?.slice(0, 300),
      });
      return;
    }
    const settings = next as TickerSettings; // checked just above
    this.settingsChanged = this.settings.tickMs !== settings.tickMs;
    this.settings = settings;
  }

  status(): TickerStatus {
    const { state, currentPassId, nextTickAt } = this;
    return {
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
      settings: this.settings,
    };
  }

  /** Records how a pass ended: counts, the requests it answered, whether a backlog remains. */
  passEnded(passNumber: number, coveredSeq: number, { summary, failure, failures }: PassResult): void {
    const state = this.state;
    this.currentPassId = undefined;
    this.state = {
      ...state,
      passesRun: passNumber,
      answeredSeq: Math.max(state.answeredSeq, coveredSeq),
      lastSummary: summary ?? state.lastSummary,
      catchUp: failure === undefined && summary !== undefined && summary.batchFull && summary.reaped > 0,
      ...(failure
        ? {
            // A sharded tick counts each shard pass that failed.
            passesFailed: (state.passesFailed ?? 0) + (failures?.length ?? 1),
            consecutiveFailures: (state.consecutiveFailures ?? 0) + 1,
            lastFailure: failure,
          }
        : { consecutiveFailures: 0 }),
    };
    this.answered.push(
      failure ? { seq: coveredSeq, failure, ...(summary ? { summary } : {}) } : { seq: coveredSeq, summary },
    );
    this.describe();
  }

  /** The ticker's current details in the Web UI. */
  describe(): void {
    const { state, currentPassId, nextTickAt } = this;
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
        ? `Last pass ${last.passId}${last.shards ? ` (${last.shards.length} shards)` : ''}: ` +
          `reaped ${last.reaped}/${last.listed}, refused ${last.refused}, ` +
          `errors ${last.deprovisionErrors + last.deleteErrors}`
        : undefined,
    ];
    setCurrentDetails(lines.filter((l) => l !== undefined).join('\n\n'));
  }

  private requestPass(): number {
    this.state = { ...this.state, forceSeq: this.state.forceSeq + 1 };
    return this.state.forceSeq;
  }

  private pauseChanged(): void {
    this.pauseVersion += 1;
    this.describe();
  }
}
