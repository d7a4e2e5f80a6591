import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { failureClaimKey } from '../../src/trigger/schedule-watch';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { scrape, seriesValue } from '../helpers/scrape';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import {
  scheduleWatchEvery,
  startWorkerProcess,
  stopWorkers,
  type WorkerProcess,
} from '../helpers/worker-process';

const run = promisify(execFile);
const TERMINATED = 'instant_pool_reap_pass_failures_total{reason="terminated"}';
const PAUSED = 'instant_pool_reaper_paused';

/** The sum of one series over every replica: what `sum(...)` in an alert sees. */
const fleetValue = async (workers: WorkerProcess[], series: string) =>
  (await Promise.all(workers.map((w) => scrape(w.metricsPort)))).reduce(
    (n, m) => n + seriesValue(m, series),
    0,
  );

const watched = (w: WorkerProcess) =>
  w.lines.filter((l) => l['event'] === 'pool_reaper.schedule.failures_watched').length;

describe('REAPER_TRIGGER=schedule: the pass-failure counter and the paused gauge, as with the ticker', () => {
  let t: TestTemporal;
  let db: TestDatabase;
  let id: string;
  let env: Record<string, string>;
  const workers: WorkerProcess[] = [];

  const startWorker = async () => {
    // Debug: each replica logs every look for failed passes, which the test counts.
    const w = await startWorkerProcess({ ...env, LOG_LEVEL: 'debug' });
    workers.push(w);
    await w.waitForEvent('pool_reaper.schedule.ensured');
    return w;
  };

  beforeAll(async () => {
    t = await connectTestTemporal();
    db = await createTestDatabase('schedbook');
    id = `schedbook-${uniqueSuffix()}`;
    env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: id,
      REAPER_WORKFLOW_ID: id,
      PROVISIONER_DATABASE_URL: db.url,
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      REDIS_URL: TEST_REDIS_URL,
      REAPER_TRIGGER: 'schedule',
      // No tick fires during the test: every pass is one the test starts.
      REAPER_TICK: '1h',
      // Each replica looks for failed passes every 2 s instead of 10 s, and scrapes reuse the
      // Schedule's pause for 2 s instead of 5 s: the same looks, the test waits less for them.
      ...scheduleWatchEvery(2_000),
    };
  });
  afterAll(async () => {
    await stopWorkers(...workers);
    const schedule = t.client.schedule.getHandle(id);
    const running = await schedule
      .describe()
      .then((d) => d.info.runningActions.map((a) => a.workflow.workflowId))
      .catch(() => [] as string[]);
    await schedule.delete().catch(() => undefined);
    for (const wf of running) {
      await t.client.workflow
        .getHandle(wf)
        .terminate('test over')
        .catch(() => undefined);
    }
    await db?.drop();
    await t?.close();
  });

  it('a scheduled pass terminated by hand counts once (reason terminated) across two replicas', async () => {
    // The first replica creates the Schedule; then none polls, so a triggered pass waits.
    await stopWorkers(await startWorker());
    workers.splice(0);
    const schedule = t.client.schedule.getHandle(id);
    await schedule.trigger('BUFFER_ONE');
    const d = await waitFor(
      () => schedule.describe(),
      (x) => x.info.runningActions.length === 1,
      { what: 'the triggered pass' },
    );
    const { workflowId: passId } = d.info.runningActions[0]!.workflow;
    const pass = t.client.workflow.getHandle(passId);
    await pass.terminate('operator ended a stuck pass');
    const { runId } = await pass.describe();

    const [a, b] = await Promise.all([startWorker(), startWorker()]);
    await waitFor(
      () => fleetValue([a!, b!], TERMINATED),
      (n) => n >= 1,
      { timeoutMs: 90_000, what: 'the terminated pass counted' },
    );
    // Both replicas look twice more after the count: neither counts the run again.
    const after = [watched(a!), watched(b!)];
    await waitFor(
      async () => [watched(a!), watched(b!)],
      ([x, y]) => x! >= after[0]! + 2 && y! >= after[1]! + 2,
      { timeoutMs: 90_000, what: 'two more looks by each replica' },
    );
    expect(await fleetValue([a!, b!], TERMINATED)).toBe(1);
    expect(await fleetValue([a!, b!], 'instant_pool_reap_pass_failures_total{reason="failed"}')).toBe(0);
    const counted = [...a!.lines, ...b!.lines].filter((l) => l['event'] === 'pool_reaper.pass.failed');
    expect(counted).toHaveLength(1);
    expect(counted[0]).toMatchObject({ passId, runId, reason: 'terminated', scheduleId: id });
    const claims = await db.pool.query('SELECT pass_id FROM pool_reaper_passes WHERE pass_id = $1', [
      failureClaimKey(runId),
    ]);
    expect(claims.rowCount).toBe(1);
    const last = await db.pool.query(`SELECT value FROM pool_reaper_state WHERE key = 'last_pass_failure'`);
    expect(last.rows[0]?.value).toMatchObject({ passId, reason: 'terminated' });
  });

  it('the paused gauge follows the Schedule: raw `temporal schedule toggle --pause`, then unpause', async () => {
    if (workers.length === 0) await Promise.all([startWorker(), startWorker()]);
    const fleet = [...workers];
    await waitFor(
      () => fleetValue(fleet, PAUSED),
      (n) => n === 0,
      { what: 'the gauge at 0 while the Schedule runs' },
    );
    // Present on every replica (not absent): ReaperStalled's `unless paused == 1` needs it.
    for (const w of fleet) expect(await scrape(w.metricsPort)).toMatch(/^instant_pool_reaper_paused 0$/m);

    await run(
      inject('temporalCliPath'),
      [
        'schedule',
        'toggle',
        '--schedule-id',
        id,
        '--pause',
        '--reason',
        'incident 17',
        '--address',
        inject('temporalAddress'),
      ],
      { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' }, timeout: 60_000 },
    );
    await waitFor(
      () => fleetValue(fleet, PAUSED),
      (n) => n === fleet.length,
      { timeoutMs: 60_000, what: 'the gauge at 1 on every replica' },
    );

    await t.client.schedule.getHandle(id).unpause('incident over');
    await waitFor(
      () => fleetValue(fleet, PAUSED),
      (n) => n === 0,
      { timeoutMs: 60_000, what: 'the gauge back at 0 on every replica' },
    );
    for (const w of fleet) expect(await scrape(w.metricsPort)).toMatch(/^instant_pool_reaper_paused 0$/m);
  });
});
