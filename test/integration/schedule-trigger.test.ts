import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, databaseExists, roleExists, type TestDatabase } from '../helpers/postgres';
import { cleanupTokens } from '../helpers/reliability-fixtures';
import { insertRow } from '../helpers/rows';
import { connectTestTemporal, type TestTemporal, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startWorkerProcess, stopWorkers, type WorkerProcess } from '../helpers/worker-process';

const run = promisify(execFile);
const BIN = path.resolve(process.cwd(), 'bin', 'pool-reaper.js');
const HOUR = 3_600_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a binary the way an operator would, with only the given environment. */
async function exec(file: string, args: string[], env: Record<string, string>): Promise<Result> {
  try {
    const { stdout, stderr } = await run(file, args, {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const cli = (args: string[], env: Record<string, string>) => exec(process.execPath, [BIN, ...args], env);

/** The raw Temporal CLI, as the README shows it. */
const temporalCli = (args: string[]) =>
  exec(inject('temporalCliPath'), [...args, '--address', inject('temporalAddress')], {
    // The CLI looks for its config file under HOME.
    HOME: process.env['HOME'] ?? '/tmp',
  });

const count = async (db: TestDatabase) =>
  Number((await db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n);

function baseEnv(db: TestDatabase, id: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: id,
    REAPER_WORKFLOW_ID: id,
    PROVISIONER_DATABASE_URL: db.url,
    POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
    REDIS_URL: TEST_REDIS_URL,
  };
}

/** Removes the Schedule and ends whatever it or a ticker left running under this id. */
async function cleanupTrigger(t: TestTemporal, id: string): Promise<void> {
  const schedule = t.client.schedule.getHandle(id);
  const running = await schedule
    .describe()
    .then((d) => d.info.runningActions.map((a) => a.workflow.workflowId))
    .catch(() => [] as string[]);
  await schedule.delete().catch(() => undefined);
  for (const wf of [...running, id]) {
    await t.client.workflow
      .getHandle(wf)
      .terminate('test over')
      .catch(() => undefined);
  }
}

describe('REAPER_TRIGGER=schedule: one Schedule starts the passes (batch limit 5)', () => {
  let t: TestTemporal;
  let db: TestDatabase;
  let id: string;
  let env: Record<string, string>;
  const workers: WorkerProcess[] = [];
  const seeded: string[] = [];

  const startWorker = async (extra: Record<string, string> = {}) => {
    const w = await startWorkerProcess({ ...env, ...extra });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    t = await connectTestTemporal();
    db = await createTestDatabase('schedule');
    id = `sched-${uniqueSuffix()}`;
    env = { ...baseEnv(db, id), REAPER_TRIGGER: 'schedule', REAPER_BATCH_LIMIT: '5' };
  });
  afterAll(async () => {
    await stopWorkers(...workers);
    await cleanupTrigger(t, id);
    await cleanupTokens(seeded);
    await db?.drop();
    await t?.close();
  });

  it('two replicas create the Schedule once; its ticks start passes that reap real items', async () => {
    const [a, b] = await Promise.all([
      startWorker({ REAPER_TICK: '2s' }),
      startWorker({ REAPER_TICK: '2s' }),
    ]);
    const ensured = await Promise.all([
      a!.waitForEvent('pool_reaper.schedule.ensured'),
      b!.waitForEvent('pool_reaper.schedule.ensured'),
    ]);
    expect(ensured.map((e) => e['created']).sort()).toEqual([false, true]);
    const d = await t.client.schedule.getHandle(id).describe();
    expect(d.spec.intervals?.[0]?.every).toBe(2_000);
    expect(d.policies).toMatchObject({ overlap: 'SKIP', pauseOnFailure: false });
    expect(d.action.workflowType).toBe('reapPass');
    // No ticker runs beside it.
    await expect(t.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    const items = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 2,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    seeded.push(...items.map((i) => i.poolToken));
    await waitFor(
      () => count(db),
      (n) => n === 0,
      { timeoutMs: 60_000, what: 'the seeded rows reaped' },
    );
    for (const item of items) {
      expect(await databaseExists(`db_${item.poolToken}`)).toBe(false);
      expect(await roleExists(`usr_${item.poolToken}`)).toBe(false);
    }
    const status = JSON.parse((await cli(['status', '--json'], env)).stdout);
    expect(status.mode).toBe('schedule');
    const reaped = (status.recentPasses as { passId: string; summary?: { reaped: number } }[]).filter(
      (p) => (p.summary?.reaped ?? 0) > 0,
    );
    expect(reaped.length).toBeGreaterThan(0);
    // Pass ids carry their time: <id>-pass-<scheduled time>.
    expect(reaped[0]!.passId).toMatch(new RegExp(`^${id}-pass-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    const pass = await t.client.workflow.getHandle(reaped[0]!.passId).describe();
    expect(pass.searchAttributes['TemporalScheduledById']).toEqual([id]);
  });

  it('a changed REAPER_TICK updates the Schedule', async () => {
    await stopWorkers(...workers.splice(0));
    const w = await startWorker({ REAPER_TICK: '1h' });
    const ensured = await w.waitForEvent('pool_reaper.schedule.ensured');
    expect(ensured).toMatchObject({ created: false, updated: true });
    const d = await t.client.schedule.getHandle(id).describe();
    expect(d.spec.intervals?.[0]?.every).toBe(HOUR);
    // A restart with the same settings leaves it alone.
    const again = await startWorker({ REAPER_TICK: '1h' });
    expect(await again.waitForEvent('pool_reaper.schedule.ensured')).toMatchObject({
      created: false,
      updated: false,
    });
  });

  it('pause with a reason is the Schedule note; reap-now is refused; the raw CLI sees and resumes it', async () => {
    expect((await cli(['pause', '--reason', 'incident 17'], env)).code).toBe(0);
    const d = await t.client.schedule.getHandle(id).describe();
    expect(d.state).toMatchObject({ paused: true, note: 'incident 17' });

    const status = JSON.parse((await cli(['status', '--json'], env)).stdout);
    expect(status).toMatchObject({
      mode: 'schedule',
      paused: true,
      pauseReason: 'incident 17',
      nextRunTimes: [],
    });
    expect((await cli(['status'], env)).stdout).toContain('paused: incident 17');
    const refused = await cli(['reap-now', '--wait'], env);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toBe('pool-reaper: pool-reaper is paused (incident 17); resume it first');

    const raw = await temporalCli(['schedule', 'describe', '--schedule-id', id, '-o', 'json']);
    expect(raw.code).toBe(0);
    expect(JSON.parse(raw.stdout).schedule.state).toMatchObject({ paused: true, notes: 'incident 17' });
    const toggled = await temporalCli([
      'schedule',
      'toggle',
      '--schedule-id',
      id,
      '--unpause',
      '--reason',
      'done',
    ]);
    expect(toggled.code).toBe(0);
    const resumed = JSON.parse((await cli(['status', '--json'], env)).stdout);
    expect(resumed.paused).toBe(false);
    expect(resumed.nextRunTimes.length).toBeGreaterThan(0);

    expect((await cli(['pause'], env)).code).toBe(0);
    expect((await cli(['resume'], env)).code).toBe(0);
    expect((await t.client.schedule.getHandle(id).describe()).state.paused).toBe(false);
  });

  it('reap-now --wait --json prints the summary of the pass its trigger started', async () => {
    const row = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const result = await cli(['reap-now', '--wait', '--json'], env);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ listed: 1, reaped: 1 });
    expect(summary.passId.startsWith(`${id}-pass-`)).toBe(true);
    expect((await db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [row.id])).rowCount).toBe(0);
  });

  it('a 12-item backlog drains after one trigger (raw temporal schedule trigger)', async () => {
    await Promise.all(
      Array.from({ length: 12 }, () =>
        insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR }),
      ),
    );
    const before = (await t.client.schedule.getHandle(id).describe()).info.numActionsTaken;
    expect((await temporalCli(['schedule', 'trigger', '--schedule-id', id])).code).toBe(0);
    await waitFor(
      () => count(db),
      (n) => n === 0,
      { timeoutMs: 60_000, what: 'the backlog drained' },
    );
    const d = await waitFor(
      () => t.client.schedule.getHandle(id).describe(),
      (x) => x.info.runningActions.length === 0,
      { what: 'the pass finished' },
    );
    // One action (a 1h tick cannot have fired): the pass continued as new for each full batch.
    expect(d.info.numActionsTaken).toBe(before + 1);
    const passId = d.info.recentActions.at(-1)!.action.workflow.workflowId;
    const summary = await t.client.workflow.getHandle(passId).result();
    expect(summary).toMatchObject({ listed: 2, reaped: 2, batchFull: false });
    const runs = await waitFor(
      async () => {
        const ids: string[] = [];
        for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${passId}'` }))
          ids.push(wf.runId);
        return ids;
      },
      (ids) => ids.length >= 3,
      { what: 'the runs in visibility' },
    );
    // At least 5 + 5 + 2; on a loaded machine an item deferred in one run (its row lock or
    // cluster busy) moves to the next, so a full batch with progress may add a run.
    expect(runs.length).toBeGreaterThanOrEqual(3);
    // The first run continued as new behind its patch, and replays against the current code.
    const firstRunId = d.info.recentActions.at(-1)!.action.workflow.firstExecutionRunId;
    const history = await t.client.workflow.getHandle(passId, firstRunId).fetchHistory();
    expect(history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)).toBe(true);
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, passId);
  });

  it('a pass that fails (terminated) leaves the Schedule running and shows in status', async () => {
    // No worker polls: the triggered pass waits, and an operator ends it by hand.
    await stopWorkers(...workers.splice(0));
    const handle = t.client.schedule.getHandle(id);
    await handle.trigger('BUFFER_ONE');
    const d = await waitFor(
      () => handle.describe(),
      (x) => x.info.runningActions.length === 1,
      { what: 'the triggered pass' },
    );
    const passId = d.info.runningActions[0]!.workflow.workflowId;
    await t.client.workflow.getHandle(passId).terminate('operator ended a stuck pass');
    const after = await handle.describe();
    expect(after.state.paused).toBe(false);
    expect(after.policies.pauseOnFailure).toBe(false);
    const status = JSON.parse((await cli(['status', '--json'], env)).stdout);
    expect(status.lastFailure).toMatchObject({ passId, reason: 'terminated' });
    expect(status.consecutiveFailures).toBe(1);

    // The next pass runs as usual.
    await startWorker({ REAPER_TICK: '1h' });
    const next = await cli(['reap-now', '--wait', '--json'], env);
    expect(next.code).toBe(0);
    expect(JSON.parse(next.stdout).passId).not.toBe(passId);
  });
});

describe('switching REAPER_TRIGGER leaves exactly one trigger and keeps the pause', () => {
  let t: TestTemporal;
  let db: TestDatabase;
  let id: string;
  let env: Record<string, string>;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    t = await connectTestTemporal();
    db = await createTestDatabase('switch');
    id = `switch-${uniqueSuffix()}`;
    env = { ...baseEnv(db, id), REAPER_TICK: '1h' };
  });
  afterAll(async () => {
    await stopWorkers(...workers);
    await cleanupTrigger(t, id);
    await db?.drop();
    await t?.close();
  });

  const worker = async (mode: 'ticker' | 'schedule') => {
    const w = await startWorkerProcess({ ...env, REAPER_TRIGGER: mode });
    workers.push(w);
    await w.waitForEvent(mode === 'ticker' ? 'pool_reaper.ticker.ensured' : 'pool_reaper.schedule.ensured');
    return w;
  };
  const scheduleExists = () =>
    t.client.schedule
      .getHandle(id)
      .describe()
      .then(
        () => true,
        (err) => {
          if (err instanceof ScheduleNotFoundError) return false;
          throw err;
        },
      );
  const tickerStatus = async () => (await t.client.workflow.getHandle(id).describe()).status.name;

  it('ticker -> schedule: the ticker ends, its pause becomes the Schedule note', async () => {
    await worker('ticker');
    expect(await scheduleExists()).toBe(false);
    expect(
      (await cli(['pause', '--reason', 'maintenance 17'], { ...env, REAPER_TRIGGER: 'ticker' })).code,
    ).toBe(0);
    await stopWorkers(...workers.splice(0));

    const w = await worker('schedule');
    expect(w.lines.find((l) => l['event'] === 'pool_reaper.trigger.switched')).toMatchObject({
      from: 'ticker',
      to: 'schedule',
      paused: 'maintenance 17',
    });
    expect(await tickerStatus()).toBe('TERMINATED');
    expect((await t.client.schedule.getHandle(id).describe()).state).toMatchObject({
      paused: true,
      note: 'maintenance 17',
    });
    const status = JSON.parse(
      (await cli(['status', '--json'], { ...env, REAPER_TRIGGER: 'schedule' })).stdout,
    );
    expect(status).toMatchObject({ mode: 'schedule', paused: true, pauseReason: 'maintenance 17' });
    // The ticker's mirror no longer says paused: it would pause a ticker started later.
    const mirror = await db.pool.query(`SELECT value FROM pool_reaper_state WHERE key = 'ticker'`);
    expect(mirror.rows[0]?.value.paused).toBe(false);
  });

  it('schedule -> ticker: the Schedule is deleted, its pause carried to the ticker', async () => {
    const scheduleEnv = { ...env, REAPER_TRIGGER: 'schedule' };
    expect((await cli(['resume'], scheduleEnv)).code).toBe(0);
    expect((await cli(['pause', '--reason', 'back to the ticker'], scheduleEnv)).code).toBe(0);
    await stopWorkers(...workers.splice(0));

    await worker('ticker');
    expect(await scheduleExists()).toBe(false);
    expect(await tickerStatus()).toBe('RUNNING');
    const status = JSON.parse((await cli(['status', '--json'], { ...env, REAPER_TRIGGER: 'ticker' })).stdout);
    expect(status).toMatchObject({ mode: 'ticker', paused: true, pauseReason: 'back to the ticker' });
  });

  it('an unpaused switch starts reaping at once in the new mode and back', async () => {
    expect((await cli(['resume'], { ...env, REAPER_TRIGGER: 'ticker' })).code).toBe(0);
    await stopWorkers(...workers.splice(0));
    await worker('schedule');
    expect(await tickerStatus()).toBe('TERMINATED');
    expect((await t.client.schedule.getHandle(id).describe()).state.paused).toBe(false);
    await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const result = await cli(['reap-now', '--wait', '--json'], { ...env, REAPER_TRIGGER: 'schedule' });
    expect(JSON.parse(result.stdout)).toMatchObject({ reaped: 1 });
  });
});
