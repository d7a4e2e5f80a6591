import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { seedItems } from '../../src/dev/seed';
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

/** The pids of the workers that started a workflow task or an activity in these passes' histories. */
async function workerPidsOf(client: Client, passes: readonly PassWindow[]): Promise<Set<string>> {
  const pids = new Set<string>();
  for (const pass of passes) {
    const history = await client.workflow.getHandle(pass.id).fetchHistory();
    for (const event of history.events ?? []) {
      const identity =
        event.workflowTaskStartedEventAttributes?.identity ??
        event.activityTaskStartedEventAttributes?.identity;
      if (identity) pids.add(identity.split('@')[0]!);
    }
  }
  return pids;
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

    const reaper = new ReaperClient(client, tickerId);
    /** Inserts `n` stale queue items, forces passes, and waits for the backlog to drain and the ticker to idle. */
    const drain = async (n: number, label: string) => {
      await Promise.all(
        Array.from({ length: n }, () =>
          insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR }),
        ),
      );
      for (let i = 0; i < 5; i++) await reaper.reapNow({ requestedBy: `${label}-${i}` });
      await waitFor(
        async () => Number((await db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n),
        (left) => left === 0,
        { what: `the backlog (${label}) to drain`, timeoutMs: 60_000 },
      );
      const status = await waitFor(
        () => reaper.status(),
        (s) => s.currentPassId === undefined && s.nextTickAt !== undefined,
        { what: 'the ticker to go idle' },
      );
      return waitFor(
        () => passWindows(client, tickerId),
        (w) => w.length === status.passesRun && w.every((p) => Number.isFinite(p.end)),
        { what: 'visibility of every pass' },
      );
    };

    let windows = await drain(14, 'replica-test');
    expect(windows.length).toBeGreaterThanOrEqual(4); // 14 items, batches of 4
    // Both replicas did work: each ran workflow tasks or activities of the passes (identity
    // `<pid>@<host>` in the histories). Which poller gets a pass's first task is the server's
    // choice, so a few more rounds are allowed before concluding one replica never worked.
    const pids = [String(a!.child.pid), String(b!.child.pid)];
    let seen = await workerPidsOf(client, windows);
    for (let round = 1; round <= 8 && !pids.every((pid) => seen.has(pid)); round++) {
      windows = await drain(4, `replica-round-${round}`);
      seen = await workerPidsOf(client, windows);
    }
    expect(
      pids.filter((pid) => !seen.has(pid)),
      `replicas that ran no task of ${windows.length} passes (workers seen: ${[...seen].join(', ')})`,
    ).toEqual([]);
    for (let i = 1; i < windows.length; i++) {
      expect(windows[i]!.start).toBeGreaterThanOrEqual(windows[i - 1]!.end);
    }
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
      expect(deprovisionDone, `completed deprovision of ${item.poolToken}`).toBeDefined();
      // Its row is gone, so the history must hold its delete; an empty list would prove nothing.
      expect(deletes.length, `deleteItem of ${item.poolToken}`).toBeGreaterThanOrEqual(1);
      for (const d of deletes) expect(d.scheduledEventId).toBeGreaterThan(deprovisionDone!.completedEventId!);
    }
    second.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
