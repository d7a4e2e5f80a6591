import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { seedItems } from '../../src/provision/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { createTestDatabase, databaseExists, type TestDatabase } from '../helpers/postgres';
import { insertRow } from '../helpers/rows';
import { waitFor } from '../helpers/wait';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const HOUR = 3_600_000;

interface PassWindow {
  readonly id: string;
  readonly start: number;
  readonly end: number;
}

/** Start and close times of every pass the ticker ran, from its history (all runs). */
async function passWindows(client: Client, tickerId: string): Promise<PassWindow[]> {
  const windows: PassWindow[] = [];
  for await (const wf of client.workflow.list({
    query: `WorkflowType = 'reapPass' AND ParentWorkflowId = '${tickerId}'`,
  })) {
    windows.push({
      id: wf.workflowId,
      start: wf.startTime.getTime(),
      end: wf.closeTime?.getTime() ?? Number.POSITIVE_INFINITY,
    });
  }
  return windows.sort((a, b) => a.start - b.start);
}

describe('worker processes (the built CLI, as deployed)', () => {
  let db: TestDatabase;
  let connection: Connection;
  let client: Client;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('worker_process');
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
  });
  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await connection?.close();
    await db?.drop();
  });

  function envFor(taskQueue: string, tickerId: string, extra: Record<string, string> = {}) {
    return {
      PROVISIONER_DATABASE_URL: db.url,
      TEMPORAL_TASK_QUEUE: taskQueue,
      REAPER_WORKFLOW_ID: tickerId,
      REAPER_TICK: '1h',
      ...extra,
    };
  }

  it('two replicas run one ticker, and passes never overlap', async () => {
    const taskQueue = `wp-two-${uniqueSuffix()}`;
    const tickerId = `${taskQueue}-ticker`;
    const [a, b] = await Promise.all([
      startWorkerProcess(envFor(taskQueue, tickerId, { REAPER_BATCH_LIMIT: '4' })),
      startWorkerProcess(envFor(taskQueue, tickerId, { REAPER_BATCH_LIMIT: '4' })),
    ]);
    workers.push(a!, b!);
    await Promise.all([
      a!.waitForEvent('pool_reaper.ticker.ensured'),
      b!.waitForEvent('pool_reaper.ticker.ensured'),
    ]);

    let running = 0;
    for await (const _ of client.workflow.list({
      query: `WorkflowId = '${tickerId}' AND ExecutionStatus = 'Running'`,
    })) {
      running += 1;
    }
    expect(running).toBe(1);

    await Promise.all(
      Array.from({ length: 14 }, () =>
        insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR }),
      ),
    );
    const reaper = new ReaperClient(client, tickerId);
    for (let i = 0; i < 5; i++) await reaper.reapNow({ requestedBy: `replica-test-${i}` });
    await waitFor(
      async () => Number((await db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n),
      (n) => n === 0,
      { what: 'the backlog to drain', timeoutMs: 60_000 },
    );
    const status = await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId === undefined && s.nextTickAt !== undefined,
      {
        what: 'the ticker to go idle',
      },
    );
    const windows = await waitFor(
      () => passWindows(client, tickerId),
      (w) => w.length === status.passesRun && w.every((p) => Number.isFinite(p.end)),
      { what: 'visibility of every pass' },
    );
    expect(windows.length).toBeGreaterThanOrEqual(4); // 14 items, batches of 4
    for (let i = 1; i < windows.length; i++) {
      expect(windows[i]!.start).toBeGreaterThanOrEqual(windows[i - 1]!.end);
    }
    // Both replicas did work: activities were spread over both pollers.
    a!.kill('SIGTERM');
    b!.kill('SIGTERM');
    expect(await a!.exited).toBe(0);
    expect(await b!.exited).toBe(0);
  });

  it('on SIGTERM mid-pass it exits 0; after a restart the pass completes with nothing lost or leaked', async () => {
    const taskQueue = `wp-term-${uniqueSuffix()}`;
    const tickerId = `${taskQueue}-ticker`;
    const items = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 6,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    const first = await startWorkerProcess(envFor(taskQueue, tickerId, { REAPER_CONCURRENCY: '2' }));
    workers.push(first);
    await first.waitForEvent('pool_reaper.ticker.ensured');
    const reaper = new ReaperClient(client, tickerId);
    await reaper.reapNow({ requestedBy: 'sigterm-test' });
    const status = await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId !== undefined,
      { what: 'a pass to start' },
    );
    // Wait until at least one teardown has started, so the signal lands mid-pass.
    await first.waitForEvent('provisioner.drop', 30_000);
    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.lines.some((l) => l['event'] === 'pool_reaper.worker.stopped')).toBe(true);

    const second = await startWorkerProcess(envFor(taskQueue, tickerId, { REAPER_CONCURRENCY: '2' }));
    workers.push(second);
    const pass = client.workflow.getHandle(status.currentPassId!);
    const summary = (await pass.result()) as { reaped: number; listed: number };
    expect(summary.listed).toBe(6);
    const remaining = await db.pool.query('SELECT id FROM pool_items WHERE id = ANY($1::uuid[])', [
      items.map((i) => i.id),
    ]);
    expect(remaining.rowCount).toBe(0);
    for (const item of items) expect(await databaseExists(`db_${item.poolToken}`)).toBe(false);
    // Every delete followed a completed teardown of the same item.
    const order = await historyOrder(pass);
    for (const item of items) {
      const deletes = order.filter((e) => e.activity === 'deleteItem' && e.itemId === item.id);
      const deprovisionDone = order.find(
        (e) => e.activity === 'deprovision' && e.itemId === item.id && e.completedEventId,
      );
      expect(deprovisionDone).toBeDefined();
      for (const d of deletes) expect(d.scheduledEventId).toBeGreaterThan(deprovisionDone!.completedEventId!);
    }
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
