import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { poolReaper } from '../../workflows/pool-reaper';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { insertRow } from '../helpers/rows';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const run = promisify(execFile);
const BIN = path.resolve(process.cwd(), 'bin', 'pool-reaper.js');
const HOUR = 3_600_000;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `pool-reaper` binary the way an operator would, with only the given environment. */
async function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('the pool-reaper CLI against a running worker', () => {
  let db: TestDatabase;
  let worker: WorkerProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase('cli');
    const id = `cli-${uniqueSuffix()}`;
    env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: id,
      REAPER_WORKFLOW_ID: id,
      REAPER_TICK: '1h',
      PROVISIONER_DATABASE_URL: db.url,
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      // Nothing listens on port 1: an item of local:1 fails its teardown (a deprovision error).
      POSTGRES_ADMIN_URLS: 'local:1=postgres://postgres@127.0.0.1:1/postgres',
      REDIS_URL: TEST_REDIS_URL,
    };
    worker = await startWorkerProcess({
      ...env,
      // Faster deprovision retries (test-only knob, see docs/reliability.md): the local:1 item's
      // unreachable cluster is retried within the pass, and a test need not wait 15 s for it.
      NODE_OPTIONS: `--require ${path.resolve(__dirname, '..', 'helpers', 'worker-preload.cjs')}`,
      RELIABILITY_PASS_OPTIONS: JSON.stringify({
        deprovisionRetry: { maximumAttempts: 2, initialIntervalMs: 100, maximumIntervalMs: 200 },
      }),
    });
    await worker.waitForEvent('pool_reaper.ticker.ensured');
  });
  afterEach(async () => {
    // The tests share one worker and ticker: a released quarantined row must not be the next
    // test's extra item (it was, whenever the quarantine test ran before the reap-now test).
    await db.pool.query('DELETE FROM pool_items');
    await db.pool.query('DELETE FROM pool_reaper_item_failures');
  });
  afterAll(async () => {
    worker?.kill('SIGTERM');
    await worker?.exited;
    await db?.drop();
  });

  it('reap-now --wait --json prints the summary of the pass it caused', async () => {
    const row = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const result = await cli(['reap-now', '--wait', '--json'], env);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ listed: 1, reaped: 1 });
    expect(summary.passId.startsWith(`${env['REAPER_WORKFLOW_ID']}-pass-`)).toBe(true);
    expect((await db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [row.id])).rowCount).toBe(0);
  });

  it('status, pause with a reason, a refused forced pass, resume', async () => {
    const status = await cli(['status', '--json'], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ paused: false });

    expect((await cli(['pause', '--reason', 'incident 9'], env)).code).toBe(0);
    const refused = await cli(['reap-now', '--wait'], env);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toBe('pool-reaper: pool-reaper is paused (incident 9); resume it first');
    const paused = await cli(['status'], env);
    expect(paused.stdout).toContain('paused: incident 9');

    expect((await cli(['resume'], env)).code).toBe(0);
    const resumed = JSON.parse((await cli(['status', '--json'], env)).stdout);
    expect(resumed.paused).toBe(false);
  });

  it('reap-now --wait exits 6 when its pass had a deprovision error, and still prints the summary', async () => {
    const ok = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const broken = await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: 'local:1',
    });
    try {
      const result = await cli(['reap-now', '--wait', '--json'], env);
      expect(result.code).toBe(6);
      const summary = JSON.parse(result.stdout);
      expect(summary).toMatchObject({ listed: 2, reaped: 1, deprovisionErrors: 1 });
      expect(summary.errors).toEqual([
        expect.objectContaining({ poolToken: broken.poolToken, outcome: 'deprovision_err' }),
      ]);
      expect(result.stderr.trim().split('\n')).toEqual([
        `pool-reaper: pass ${summary.passId} had 1 error(s)`,
      ]);
      expect((await db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [ok.id])).rowCount).toBe(0);

      // The same pass read by a person: the summary on stdout, the verdict on stderr.
      await db.pool.query('DELETE FROM pool_reaper_clusters');
      const text = await cli(['reap-now', '--wait'], env);
      expect(text.code).toBe(6);
      expect(text.stdout).toContain(`deprovision errors 1`);
    } finally {
      await db.pool.query('DELETE FROM pool_items WHERE id = $1', [broken.id]);
      await db.pool.query('DELETE FROM pool_reaper_clusters');
    }
  });

  it('status of a ticker that was terminated says so in one line and exits 4', async () => {
    const temporal: TestTemporal = await connectTestTemporal();
    const closedId = `${env['REAPER_WORKFLOW_ID']}-closed`;
    try {
      // A second ticker on the same task queue: the running worker could still answer its
      // queries (by replay) after it closed, so only the CLI's check can tell it is closed.
      const handle = await temporal.client.workflow.start(poolReaper, {
        taskQueue: env['TEMPORAL_TASK_QUEUE']!,
        workflowId: closedId,
        args: [{ settings: { tickMs: HOUR, pass: { concurrency: 1 } } }],
      });
      const live = await cli(['status', '--json'], { ...env, REAPER_WORKFLOW_ID: closedId });
      expect(live.code).toBe(0);
      await handle.terminate('test: an operator ended the ticker');
      await waitFor(
        () => handle.describe(),
        (d) => d.status.name === 'TERMINATED',
        { what: 'the ticker to be terminated' },
      );

      const result = await cli(['status'], { ...env, REAPER_WORKFLOW_ID: closedId });
      expect(result.code).toBe(4);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^pool-reaper: the ticker ${closedId} is terminated`));
      expect((await cli(['status', '--json'], { ...env, REAPER_WORKFLOW_ID: closedId })).code).toBe(4);
    } finally {
      await temporal.close();
    }
  });

  it('lists and releases quarantined items', async () => {
    const row = await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      poolToken: 'postgres',
    });
    for (let i = 0; i < 3; i++) expect((await cli(['reap-now', '--wait', '--json'], env)).code).toBe(0);
    const listed = JSON.parse((await cli(['quarantine', 'list', '--json'], env)).stdout);
    expect(listed).toEqual([
      expect.objectContaining({ itemId: row.id, lastErrorType: 'DropRefusedError', failures: 3 }),
    ]);
    const released = await cli(['quarantine', 'release', row.id], env);
    expect(released).toMatchObject({ code: 0, stdout: 'released 1 item(s)\n' });
    expect(JSON.parse((await cli(['quarantine', 'list', '--json'], env)).stdout)).toEqual([]);
    expect((await cli(['quarantine', 'release', row.id], env)).code).toBe(1);
  });
});

describe('the pool-reaper CLI on bad input', () => {
  it('stops on a bad variable with one line naming it (exit 2)', async () => {
    const result = await cli(['status'], { REAPER_BATCH_LIMIT: 'lots' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'pool-reaper: REAPER_BATCH_LIMIT: expected an integer from 1 to 500, got "lots"\n',
    );
  });

  it('says in one line that Temporal is unreachable (exit 3)', async () => {
    const result = await cli(['status'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.code).toBe(3);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(
      /^pool-reaper: cannot reach Temporal at 127\.0\.0\.1:1 \(namespace default\)/,
    );
  });

  it('says the ticker is not running (exit 4)', async () => {
    const result = await cli(['status'], {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      REAPER_WORKFLOW_ID: `absent-${uniqueSuffix()}`,
    });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^pool-reaper: no running ticker with workflow id absent-/);
  });

  it('rejects unknown commands and options with usage (exit 2), and --help succeeds', async () => {
    expect((await cli(['frobnicate'], {})).code).toBe(2);
    expect((await cli(['status', '--bogus'], {})).code).toBe(2);
    const help = await cli(['--help'], {});
    expect(help.code).toBe(0);
    for (const command of [
      'worker',
      'migrate',
      'seed',
      'reap-now',
      'status',
      'pause',
      'resume',
      'quarantine',
    ]) {
      expect(help.stdout).toContain(command);
    }
  });
});
