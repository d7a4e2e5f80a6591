import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { poolReaper } from '../../workflows/pool-reaper';
import { uniqueSuffix } from '../helpers/env';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';
import { tickDueAfterLastPassMs } from '../helpers/ticker';
import { waitFor } from '../helpers/wait';

const HOUR = 3_600_000;

describe('backlog catch-up (batch limit 5, 1h tick)', () => {
  let h: ReaperHarness;
  let handle: WorkflowHandle | undefined;

  beforeAll(async () => {
    h = await createReaperHarness('backlog', { settings: { batchLimit: 5, quarantineAfter: 100 } });
  });
  afterEach(async () => {
    await handle?.terminate('test over').catch(() => undefined);
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
  });

  async function startTicker() {
    const workflowId = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
    handle = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId,
      args: [{ settings: { tickMs: HOUR, pass: TEST_PASS_OPTIONS } }],
    });
    return new ReaperClient(h.temporal.client, workflowId);
  }

  const insert = (n: number, resourceType: string) =>
    Promise.all(
      Array.from({ length: n }, () =>
        insertRow(h.db.pool, { resourceType, status: 'failed', ageMs: 3 * HOUR }),
      ),
    );

  it('drains a backlog larger than the batch in back-to-back passes, then waits for the tick', async () => {
    await insert(12, 'queue');
    const reaper = await startTicker();
    await reaper.reapNow({ requestedBy: 'test' });
    const status = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun >= 3 && s.currentPassId === undefined && s.nextTickAt !== undefined,
      { what: 'three passes and a wait' },
    );
    // 5 + 5 + 2: the third pass was not full, so the ticker went back to its (hour-long) tick.
    expect(status.passesRun).toBe(3);
    expect(status.lastSummary?.listed).toBe(2);
    expect(status.lastSummary?.batchFull).toBe(false);
    expect(tickDueAfterLastPassMs(status)).toBeGreaterThanOrEqual(HOUR);
    expect(Number((await h.db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n)).toBe(0);
  });

  it('does not rerun at once after a full pass that made no progress', async () => {
    // MongoDB items are refused as unsupported: a full batch, nothing reaped.
    await insert(5, 'mongodb');
    const reaper = await startTicker();
    await reaper.reapNow({ requestedBy: 'test' });
    const status = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun >= 1 && s.currentPassId === undefined && s.nextTickAt !== undefined,
      { what: 'one pass and a wait' },
    );
    expect(status.passesRun).toBe(1);
    expect(status.lastSummary?.batchFull).toBe(true);
    expect(status.lastSummary?.refused).toBe(5);
    expect(status.lastSummary?.reaped).toBe(0);
    expect(tickDueAfterLastPassMs(status)).toBeGreaterThanOrEqual(HOUR);
    expect(Number((await h.db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n)).toBe(5);
  });
});
