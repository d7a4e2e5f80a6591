import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTicker, PassFailedError, ReaperClient } from '../../src/client';
import { createLogger } from '../../src/logger';
import type { TickerSettings } from '../../src/shared/messages';
import { STATE_KEYS, type TickerMirror } from '../../src/store/state-keys';
import { poolReaper } from '../../workflows/pool-reaper';
import { uniqueSuffix } from '../helpers/env';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';
import { Gate, waitFor } from '../helpers/wait';

const HOUR = 3_600_000;

/**
 * The ticker survives whatever a pass does: a pass terminated by an operator, a pass whose
 * listing never answers. Each is recorded (status, counter) and the same ticker, on the same
 * worker, reaps again afterwards. A pause costs no history and outlives the ticker itself.
 */
describe('the ticker survives any pass outcome (real Temporal, 1h tick: only forces explain passes)', () => {
  let h: ReaperHarness;
  const gate = new Gate();
  let handle: WorkflowHandle | undefined;

  beforeAll(async () => {
    h = await createReaperHarness('survival', {
      teardown: (real) => ({
        preflight: (item, options) => real.preflight(item, options),
        teardown: async (item, options) => {
          await gate.pass();
          return real.teardown(item, options);
        },
      }),
    });
  });
  afterEach(async () => {
    gate.open();
    await handle?.terminate('test over').catch(() => undefined);
    handle = undefined;
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
  });

  const settings = (pass: Partial<TickerSettings['pass']> = {}, tickMs = HOUR): TickerSettings => ({
    tickMs,
    pass: { ...TEST_PASS_OPTIONS, ...pass },
  });

  async function startTicker(tickerSettings = settings()) {
    const workflowId = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
    handle = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId,
      args: [{ settings: tickerSettings }],
    });
    return new ReaperClient(h.temporal.client, workflowId);
  }

  const rowCount = async () =>
    Number((await h.db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n);
  const failures = async (reason: string) =>
    (await h.metrics.passFailures.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  it('records a pass terminated by an operator and reaps again with the next one', async () => {
    await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    gate.close();
    const reaper = await startTicker();
    const terminatedBefore = await failures('terminated');
    const waiting = reaper.reapNowAndWait({ requestedBy: 'test' }).catch((err: unknown) => err);
    const running = await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId !== undefined && gate.waiting > 0,
      { what: 'the pass to block in its teardown' },
    );
    await h.temporal.client.workflow
      .getHandle(running.currentPassId!)
      .terminate('stuck, ended by an operator');

    // The update that waited for that pass learns it was terminated.
    const answer = await waiting;
    expect(answer).toBeInstanceOf(PassFailedError);
    expect(String((answer as Error).message)).toMatch(/terminated/);
    const after = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun === 1 && s.currentPassId === undefined,
      { what: 'the ticker to record the terminated pass' },
    );
    expect(after).toMatchObject({ passesFailed: 1, consecutiveFailures: 1, paused: false });
    expect(after.lastFailure).toMatchObject({ passId: running.currentPassId, reason: 'terminated' });
    expect(await failures('terminated')).toBe(terminatedBefore + 1);
    expect((await handle!.describe()).status.name).toBe('RUNNING');

    gate.open();
    const summary = await reaper.reapNowAndWait({ requestedBy: 'test' });
    expect(summary).toMatchObject({ listed: 1, reaped: 1 });
    expect(await rowCount()).toBe(0);
    const healthy = await reaper.status();
    expect(healthy).toMatchObject({ passesRun: 2, passesFailed: 1, consecutiveFailures: 0 });
  });

  it('ends a pass that cannot list cleanly, counts it, and lists again once the table is back', async () => {
    await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    // The listing retries within its budget (1 s here), then the pass ends without touching anything.
    const reaper = await startTicker(settings({ bookkeepingBudgetMs: 1000 }));
    const listFailedBefore = await failures('list_failed');
    await h.db.pool.query('ALTER TABLE pool_items RENAME TO pool_items_away');
    let summary: Awaited<ReturnType<ReaperClient['reapNowAndWait']>>;
    try {
      summary = await reaper.reapNowAndWait({ requestedBy: 'test' });
    } finally {
      await h.db.pool.query('ALTER TABLE pool_items_away RENAME TO pool_items');
    }
    expect(summary.aborted).toMatchObject({ stage: 'list' });
    expect(summary.aborted?.message).toMatch(/pool_items/);
    expect(summary).toMatchObject({ listed: 0, reaped: 0, batchFull: false });
    const status = await waitFor(
      () => reaper.status(),
      (s) => s.passesFailed === 1,
      { what: 'the failed listing to be recorded' },
    );
    expect(status.lastFailure).toMatchObject({ passId: summary.passId, reason: 'list_failed' });
    expect(await failures('list_failed')).toBe(listFailedBefore + 1);
    expect(await rowCount()).toBe(1);

    const next = await reaper.reapNowAndWait({ requestedBy: 'test' });
    expect(next).toMatchObject({ listed: 1, reaped: 1 });
    expect(next.aborted).toBeUndefined();
  });

  it('pauses without a timer: no history grows while paused, however many ticks go by', async () => {
    const reaper = await startTicker(settings({}, 200));
    await waitFor(
      () => reaper.status(),
      (s) => s.passesRun >= 2,
      { what: 'tick-driven passes' },
    );
    await reaper.pause({ reason: 'incident 77' });
    await waitFor(
      () => reaper.status(),
      (s) => s.paused && s.currentPassId === undefined && s.nextTickAt === undefined,
      { what: 'paused and idle' },
    );
    // Let the pause mirror land, then measure: fifteen ticks' worth of time adds nothing.
    await waitFor(
      async () => (await h.store.readState<TickerMirror>(STATE_KEYS.ticker))?.value,
      (m) => m?.paused === true,
      { what: 'the pause mirrored to the database' },
    );
    const length = async () => (await handle!.fetchHistory()).events?.length ?? 0;
    // The pause's own events (the timer cancelled, the mirror activity) settle first.
    const before = await waitFor(
      async () => {
        const first = await length();
        await new Promise((r) => setTimeout(r, 500));
        return (await length()) === first ? first : undefined;
      },
      (n) => n !== undefined,
      { what: 'the history to settle' },
    );
    const passes = (await reaper.status()).passesRun;
    await new Promise((r) => setTimeout(r, 3000));
    expect(await length()).toBe(before);
    expect((await reaper.status()).passesRun).toBe(passes);

    await reaper.resume();
    await waitFor(
      () => reaper.status(),
      (s) => !s.paused && s.passesRun > passes,
      { what: 'ticks again after resume' },
    );
    await waitFor(
      async () => (await h.store.readState<TickerMirror>(STATE_KEYS.ticker))?.value,
      (m) => m?.paused === false,
      { what: 'the resume mirrored to the database' },
    );
  });

  it('a ticker started afresh (after a terminate) starts paused when its predecessor was', async () => {
    const reaper = await startTicker();
    await reaper.pause({ reason: 'planned maintenance' });
    await waitFor(
      async () => (await h.store.readState<TickerMirror>(STATE_KEYS.ticker))?.value,
      (m) => m?.paused === true && m.reason === 'planned maintenance',
      { what: 'the pause mirrored to the database' },
    );
    await handle!.terminate('operator terminated the ticker');
    const mirror = (await h.store.readState<TickerMirror>(STATE_KEYS.ticker))!.value;
    expect(mirror.workflowId).toBe(handle!.workflowId);

    // What a worker does at start-up: signal-with-start, handing over the recorded pause.
    await ensureTicker(h.temporal.client, {
      workflowId: handle!.workflowId,
      taskQueue: h.taskQueue,
      settings: settings(),
      log: createLogger({ level: 'silent' }),
      paused: mirror,
    });
    const fresh = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun === 0,
      { what: 'the fresh ticker' },
    );
    expect(fresh).toMatchObject({ paused: true, pauseReason: 'planned maintenance' });
    await reaper.resume();
    await waitFor(
      async () => (await h.store.readState<TickerMirror>(STATE_KEYS.ticker))?.value,
      (m) => m?.paused === false,
      { what: 'the resume mirrored' },
    );
  });
});
