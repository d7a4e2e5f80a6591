import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReaperClient, ReaperRequestRefusedError } from '../../src/client';
import type { TickerStatus } from '../../src/shared/messages';
import { poolReaper } from '../../workflows/pool-reaper';
import { uniqueSuffix } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';
import { tickDueAfterLastPassMs } from '../helpers/ticker';
import { Gate, waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const STALE = 3 * HOUR;

describe('poolReaper ticker (real Temporal; 1h tick so only a force explains a pass)', () => {
  let h: ReaperHarness;
  const gate = new Gate();
  let ticker: { handle: WorkflowHandle; reaper: ReaperClient } | undefined;

  beforeAll(async () => {
    h = await createReaperHarness('ticker', {
      teardown: (real) => ({
        preflight: (item) => real.preflight(item),
        teardown: async (item, options) => {
          await gate.pass();
          return real.teardown(item, options);
        },
      }),
    });
  });
  afterEach(async () => {
    gate.open();
    await ticker?.handle.terminate('test over').catch(() => undefined);
    ticker = undefined;
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
  });

  async function startTicker(options: { tickMs?: number; continueAsNewAfterPasses?: number } = {}) {
    const workflowId = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
    const handle = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId,
      args: [
        {
          settings: { tickMs: options.tickMs ?? HOUR, pass: TEST_PASS_OPTIONS },
          ...(options.continueAsNewAfterPasses
            ? { continueAsNewAfterPasses: options.continueAsNewAfterPasses }
            : {}),
        },
      ],
    });
    ticker = { handle, reaper: new ReaperClient(h.temporal.client, workflowId) };
    return ticker;
  }

  const queueItems = (n: number) =>
    Promise.all(
      Array.from({ length: n }, () =>
        insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: STALE }),
      ),
    );

  const rowCount = async () =>
    Number((await h.db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n);

  const idle = (passes: number) => (s: TickerStatus) =>
    s.passesRun === passes && s.currentPassId === undefined && s.nextTickAt !== undefined;

  it('runs a pass on a reapNow signal, and coalesces three signals sent during a pass into one more', async () => {
    await queueItems(1);
    gate.close();
    const { reaper } = await startTicker();
    await reaper.reapNow({ requestedBy: 'test' });
    const running = await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId !== undefined && gate.waiting > 0,
      {
        what: 'pass 1 to block on the gate',
      },
    );
    expect(running.passesRun).toBe(0);
    for (let i = 0; i < 3; i++) await reaper.reapNow({ requestedBy: `test-${i}` });
    await waitFor(
      () => reaper.status(),
      (s) => s.pendingForce,
      { what: 'the signals to be recorded' },
    );
    gate.open();
    const after = await waitFor(() => reaper.status(), idle(2), {
      what: 'pass 2 to finish and the ticker to wait',
    });
    expect(after.passesRun).toBe(2);
    expect(after.pendingForce).toBe(false);
    // The tick is an hour away: nothing but the signals could have caused these passes.
    expect(tickDueAfterLastPassMs(after)).toBeGreaterThanOrEqual(HOUR);
    expect(await rowCount()).toBe(0);
  });

  it('answers the reapNow update with the summary of the pass it caused', async () => {
    const [a, b] = await queueItems(2);
    const { reaper, handle } = await startTicker();
    const summary = await reaper.reapNowAndWait({ requestedBy: 'test' });
    expect(summary.passId.startsWith(`${handle.workflowId}-pass-`)).toBe(true);
    expect(summary.listed).toBe(2);
    expect(summary.reaped).toBe(2);
    expect(await rowCount()).toBe(0);
    const status = await reaper.status();
    expect(status.lastSummary?.passId).toBe(summary.passId);
    // The pass the update answered for is the one that tore both items down and deleted their rows.
    const order = await historyOrder(h.temporal.client.workflow.getHandle(summary.passId));
    for (const item of [a!, b!]) {
      expect(order.filter((e) => e.itemId === item.id).map((e) => e.activity)).toEqual([
        'deprovision',
        'deleteItem',
      ]);
    }
  });

  it('pause stops ticks and refuses forced passes until resume; a signal sent while paused runs on resume', async () => {
    const { reaper } = await startTicker({ tickMs: 300 });
    await waitFor(
      () => reaper.status(),
      (s) => s.passesRun >= 1,
      { what: 'a tick-driven pass' },
    );
    await reaper.pause({ reason: 'incident 42' });
    const paused = await waitFor(
      () => reaper.status(),
      (s) => s.paused && s.currentPassId === undefined,
      {
        what: 'paused and idle',
      },
    );
    expect(paused.pauseReason).toBe('incident 42');
    const before = paused.passesRun;
    // Ten ticks' worth of time: a paused ticker must not run one.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await reaper.status()).passesRun).toBe(before);

    await expect(reaper.reapNowAndWait({ requestedBy: 'test' })).rejects.toThrow(ReaperRequestRefusedError);
    await expect(reaper.reapNowAndWait({ requestedBy: 'test' })).rejects.toThrow(/paused \(incident 42\)/);
    await reaper.reapNow({ requestedBy: 'test' });
    const pending = await waitFor(
      () => reaper.status(),
      (s) => s.pendingForce,
      { what: 'pending force' },
    );
    expect(pending.passesRun).toBe(before);

    await reaper.resume();
    const resumed = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun > before && !s.paused,
      {
        what: 'a pass after resume',
      },
    );
    expect(resumed.paused).toBe(false);
    expect(resumed.pendingForce).toBe(false);
  });

  it('continues as new keeping pass count, paused state and a pending force', async () => {
    const { reaper, handle } = await startTicker({ continueAsNewAfterPasses: 1 });
    const firstRun = (await handle.describe()).runId;
    await reaper.reapNowAndWait({ requestedBy: 'test' });
    const secondRun = await waitFor(
      async () => (await h.temporal.client.workflow.getHandle(handle.workflowId).describe()).runId,
      (runId) => runId !== firstRun,
      { what: 'continue-as-new after pass 1' },
    );

    await queueItems(1);
    gate.close();
    await reaper.reapNow({ requestedBy: 'test' });
    await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId !== undefined && gate.waiting > 0,
      {
        what: 'pass 2 blocked',
      },
    );
    await reaper.pause({ reason: 'carry me' });
    await reaper.reapNow({ requestedBy: 'test' });
    await waitFor(
      () => reaper.status(),
      (s) => s.paused && s.pendingForce,
      { what: 'paused with a pending force' },
    );
    gate.open();

    await waitFor(
      async () => (await h.temporal.client.workflow.getHandle(handle.workflowId).describe()).runId,
      (runId) => runId !== secondRun,
      { what: 'continue-as-new after pass 2' },
    );
    const carried = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun === 2,
      { what: 'the new run' },
    );
    expect(carried.paused).toBe(true);
    expect(carried.pauseReason).toBe('carry me');
    expect(carried.pendingForce).toBe(true);
    expect(carried.lastSummary?.reaped).toBe(1);

    await reaper.resume();
    const third = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun === 3,
      { what: 'the carried force' },
    );
    expect(third.pendingForce).toBe(false);
  });
});
