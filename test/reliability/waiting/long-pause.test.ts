import type { WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTicker, ReaperClient } from '../../../src/client';
import { createLogger } from '../../../src/logger';
import { reapNowSignal } from '../../../src/shared/messages';
import { poolReaper } from '../../../workflows/pool-reaper';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../../helpers/reaper';
import { type PrivateTemporal, startPrivateTemporal } from '../../helpers/reliability-fixtures';
import { recordFigures } from '../../helpers/results';
import { insertRow } from '../../helpers/rows';
import { createTestWorker } from '../../helpers/temporal';
import { waitFor } from '../../helpers/wait';

/**
 * Temporal suggests continue-as-new after this many events (production: 4Ki, 10,240 on Cloud).
 * The pause and this bound are scaled together: 30 s of signals against 100 events roll the
 * ticker over as often as a minute against 200 did (measured: 8 continue-as-new, 7 before);
 * the bound on each run's length below keeps its absolute slack (the signals that land while
 * a run continues as new).
 */
const SUGGEST_AFTER = 100;
const HOUR = 3_600_000;
const PAUSE_MS = 30_000;

/**
 * An incident pause that lasts: half a minute of a paused ticker getting a steady stream of
 * reapNow signals (an automation retrying, an operator's loop), on a server that suggests
 * continue-as-new after 100 events, so that the pause outlasts many runs of the ticker. The ticker must continue as new while paused, in every
 * run stay near that bound, keep the pause, its reason and the pending force across runs and
 * across a worker swap, and run the force the moment it is resumed.
 */
describe('a long pause on a server that suggests continue-as-new early', () => {
  let temporal: PrivateTemporal;
  let h: ReaperHarness;
  let second: { worker: Worker; running: Promise<void> } | undefined;

  beforeAll(async () => {
    temporal = await startPrivateTemporal({
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_AFTER },
    });
    h = await createReaperHarness('rel_long_pause', { temporalAddress: temporal.address });
  });
  afterAll(async () => {
    second?.worker.shutdown();
    await second?.running;
    await h?.close();
    await temporal?.close();
  });

  it('continues as new while paused, keeps the pause and the pending force, and forgets nothing on a worker swap', async () => {
    const startedAt = Date.now();
    const workflowId = `${h.taskQueue}-ticker`;
    const ticker: WorkflowHandle = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId,
      args: [{ settings: { tickMs: 1000, pass: TEST_PASS_OPTIONS } }],
    });
    const reaper = new ReaperClient(h.temporal.client, workflowId);
    await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    await waitFor(
      () => reaper.status(),
      (s) => s.passesRun >= 1 && s.lastSummary?.reaped === 1,
      { what: 'a tick-driven pass' },
    );
    await reaper.pause({ reason: 'incident 512' });
    const paused = await waitFor(
      () => reaper.status(),
      (s) => s.paused && s.currentPassId === undefined,
      { what: 'paused and idle' },
    );
    const firstRun = (await ticker.describe()).runId;

    // Half a minute of signals: every one is a history event, so the runs must roll over.
    const runs = new Set<string>([firstRun]);
    let signals = 0;
    const deadline = Date.now() + PAUSE_MS;
    while (Date.now() < deadline) {
      await h.temporal.client.workflow
        .getHandle(workflowId)
        .signal(reapNowSignal, { requestedBy: `loop-${signals}` });
      signals++;
      if (signals % 20 === 0)
        runs.add((await h.temporal.client.workflow.getHandle(workflowId).describe()).runId);
      await new Promise((r) => setTimeout(r, 150));
    }
    const during = await reaper.status();
    expect(during).toMatchObject({ paused: true, pauseReason: 'incident 512', pendingForce: true });
    expect(during.passesRun).toBe(paused.passesRun);

    // Every closed run of the ticker ended in continue-as-new, none far past the suggestion.
    const closedRuns: { runId: string; events: number }[] = [];
    for await (const wf of h.temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      if (wf.status.name === 'RUNNING') continue;
      expect(wf.status.name).toBe('CONTINUED_AS_NEW');
      closedRuns.push({ runId: wf.runId, events: Number(wf.historyLength) });
    }
    expect(closedRuns.length).toBeGreaterThanOrEqual(2);
    const longest = Math.max(...closedRuns.map((r) => r.events));
    expect(longest).toBeLessThan(SUGGEST_AFTER + 60);

    // A worker swap (a deploy): another worker replays the ticker from history, and a worker
    // start's signal-with-start (with its settings) must not resume it.
    h.worker.shutdown();
    const worker = await createTestWorker(h.temporal, { taskQueue: h.taskQueue, activities: h.activities });
    second = { worker, running: worker.run() };
    await ensureTicker(h.temporal.client, {
      workflowId,
      taskQueue: h.taskQueue,
      settings: { tickMs: 1000, pass: TEST_PASS_OPTIONS },
      log: createLogger({ level: 'silent' }),
    });
    const afterSwap = await waitFor(
      () => reaper.status(),
      (s) => s.paused,
      { what: 'the ticker on the new worker' },
    );
    expect(afterSwap).toMatchObject({ pauseReason: 'incident 512', pendingForce: true });

    await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    await reaper.resume();
    const resumed = await waitFor(
      () => reaper.status(),
      (s) => !s.paused && s.passesRun > paused.passesRun && !s.pendingForce,
      { what: 'the pending force to run on resume' },
    );
    expect(resumed.lastSummary?.reaped).toBe(1);

    recordFigures({
      scenario: 'long pause',
      runs: closedRuns.length + 1,
      items: 2,
      faults: `${Math.round(PAUSE_MS / 1000)} s paused under ${signals} reapNow signals (continue-as-new suggested after ${SUGGEST_AFTER} events), then a worker swap`,
      wrongfulDrops: 0,
      leaks: 0,
      rowsLost: 0,
      durationMs: Date.now() - startedAt,
      continuedAsNew: closedRuns.length,
      longestRunEvents: longest,
      signals,
    });
  }, 240_000);
});
