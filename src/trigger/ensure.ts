import { type Client, ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { poolReaper } from '../../workflows/pool-reaper';
import { ensureTicker, tickerSettingsFrom } from '../client';
import type { ReaperConfig } from '../config';
import type { Logger } from '../logger';
import { pauseSignal, statusQuery } from '../shared/messages';
import type { PoolStore } from '../store/pool-store';
import { STATE_KEYS, type TickerMirror } from '../store/state-keys';
import { ensureSchedule, SWITCHING_NOTE, scheduleOptionsFrom } from './schedule';

/** What the retired trigger was doing, so that the new one does the same. */
interface Retired {
  /** The other trigger existed (this start-up switches modes). */
  readonly found: boolean;
  /** It was paused by an operator: the new trigger starts paused with the same reason. */
  readonly paused?: { reason: string } | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a switch waits for the old trigger's running pass before it ends it anyway. */
const DRAIN_BUDGET_MS = 2 * 60_000;

async function waitUntil(done: () => Promise<boolean>, budgetMs: number): Promise<boolean> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

/**
 * Schedule mode: ends the ticker so that passes never come from both. It is paused first (no
 * new pass starts), its running pass may finish, then it is terminated. Its pause, if an
 * operator set one, is carried to the Schedule: a switch never resumes reaping by surprise.
 */
async function retireTicker(client: Client, workflowId: string, log: Logger): Promise<Retired> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  });
  if (description?.status.name !== 'RUNNING' || description.type !== poolReaper.name) {
    return { found: false };
  }
  const status = await handle.query(statusQuery);
  // Another replica switching at the same time paused it with SWITCHING_NOTE: not an operator's pause.
  const operatorPause =
    status.paused && status.pauseReason !== SWITCHING_NOTE
      ? { reason: status.pauseReason ?? 'paused' }
      : undefined;
  if (!status.paused) await handle.signal(pauseSignal, { reason: SWITCHING_NOTE });
  const drained = await waitUntil(
    async () => (await handle.query(statusQuery).catch(() => undefined))?.currentPassId === undefined,
    DRAIN_BUDGET_MS,
  );
  await handle
    .terminate('REAPER_TRIGGER=schedule: the Schedule starts passes now (docs/triggers.md)')
    .catch((err: unknown) => {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    });
  log.info(
    {
      event: 'pool_reaper.trigger.switched',
      from: 'ticker',
      to: 'schedule',
      drained,
      paused: operatorPause?.reason,
    },
    'ticker ended: the Schedule starts passes now',
  );
  return { found: true, paused: operatorPause };
}

/**
 * Ticker mode: deletes the Schedule, after pausing it and letting its running pass finish;
 * an operator's pause (its note) is carried to the ticker.
 */
async function retireSchedule(client: Client, scheduleId: string, log: Logger): Promise<Retired> {
  const handle = client.schedule.getHandle(scheduleId);
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  });
  if (!description) return { found: false };
  const { paused, note } = description.state;
  const operatorPause = paused && note !== SWITCHING_NOTE ? { reason: note || 'paused' } : undefined;
  if (!paused) await handle.pause(SWITCHING_NOTE);
  const drained = await waitUntil(
    async () => (await handle.describe().catch(() => undefined))?.info.runningActions.length === 0 || false,
    DRAIN_BUDGET_MS,
  );
  await handle.delete().catch((err: unknown) => {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  });
  log.info(
    {
      event: 'pool_reaper.trigger.switched',
      from: 'schedule',
      to: 'ticker',
      drained,
      paused: operatorPause?.reason,
    },
    'Schedule deleted: the ticker starts passes now',
  );
  return { found: true, paused: operatorPause };
}

/**
 * At worker start-up, after the database checks: makes sure exactly one trigger of the
 * configured mode starts passes (REAPER_TRIGGER), retiring the other one if it exists.
 * Idempotent across N replicas.
 */
export async function ensureTrigger(deps: {
  client: Client;
  store: PoolStore;
  config: ReaperConfig;
  /** The search attributes the namespace has (ensureSearchAttributes), or all/none. */
  recordReapedTokens: boolean | ReadonlySet<string>;
  log: Logger;
}): Promise<void> {
  const { client, store, config, log } = deps;
  const id = config.tickerWorkflowId;
  if (config.trigger === 'schedule') {
    const desired = scheduleOptionsFrom(config, deps.recordReapedTokens);
    const retired = await retireTicker(client, id, log);
    // A ticker paused and then closed (terminated by hand) left its pause in the mirror: a
    // Schedule created now starts paused too; an existing Schedule keeps its own state.
    const mirror = await store.readState<TickerMirror>(STATE_KEYS.ticker);
    // Only when there was no ticker to ask: a running one's own state is the truth, and the
    // mirror may hold the switch's own pause (SWITCHING_NOTE).
    const mirrored =
      !retired.found &&
      mirror?.value.paused &&
      mirror.value.workflowId === id &&
      mirror.value.reason !== SWITCHING_NOTE
        ? mirror.value
        : undefined;
    await ensureSchedule(client, desired, log, {
      pause: retired.paused,
      pauseIfCreated: mirrored
        ? { reason: mirrored.reason ?? 'paused before the Schedule was created' }
        : undefined,
    });
    // The mirror is the ticker's: with the ticker retired it must not keep saying "paused".
    if (retired.found || mirror?.value.paused) {
      await store.writeState(STATE_KEYS.ticker, { paused: false, workflowId: id } satisfies TickerMirror);
    }
    return;
  }

  const retired = await retireSchedule(client, id, log);
  const mirror = retired.found ? undefined : await store.readState<TickerMirror>(STATE_KEYS.ticker);
  const paused = retired.found
    ? retired.paused
    : mirror?.value.paused && mirror.value.workflowId === id && mirror.value.reason !== SWITCHING_NOTE
      ? { reason: mirror.value.reason ?? 'paused before this ticker started' }
      : undefined;
  if (retired.found) {
    // A fresh ticker starts with this pause and mirrors it; written first so a ticker that
    // somehow still runs is not left with a stale mirror.
    await store.writeState(STATE_KEYS.ticker, {
      paused: paused !== undefined,
      ...(paused ? { reason: paused.reason } : {}),
      workflowId: id,
    } satisfies TickerMirror);
  }
  await ensureTicker(client, {
    workflowId: id,
    taskQueue: config.taskQueue,
    settings: tickerSettingsFrom(config, deps.recordReapedTokens),
    log,
    paused,
  });
  if (retired.found && paused) {
    // A ticker that was already running ignores the start arguments: pause it by signal.
    await client.workflow.getHandle(id).signal(pauseSignal, { reason: paused.reason });
  }
}
