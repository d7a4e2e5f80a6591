import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { runBin } from '../helpers/bin';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, databaseExists, roleExists, type TestDatabase } from '../helpers/postgres';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const HOUR = 3_600_000;

/** The real worker binary with REAPER_DRY_RUN=true: its passes plan and touch nothing, and say so. */
describe('a worker started with REAPER_DRY_RUN=true', () => {
  let db: TestDatabase;
  let worker: WorkerProcess;
  let temporal: TestTemporal;
  let env: Record<string, string>;
  const targets = seedTargets();
  const provisioned: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('dry_run_worker');
    temporal = await connectTestTemporal();
    const id = `dryrun-${uniqueSuffix()}`;
    env = {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: id,
      REAPER_WORKFLOW_ID: id,
      REAPER_TICK: '1h',
      PROVISIONER_DATABASE_URL: db.url,
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      REDIS_URL: TEST_REDIS_URL,
      METRICS_PORT: '0',
      REAPER_DRY_RUN: 'true',
      REAPER_SHUTDOWN_GRACE: '5s',
      TEMPORAL_UI_URL: 'http://ui.example:8233',
    };
    worker = await startWorkerProcess(env);
    await worker.waitForEvent('pool_reaper.ticker.ensured');
  });
  afterAll(async () => {
    // The ticker outlives its worker: end it first, so the worker has no task in flight to drain.
    await temporal?.client.workflow
      .getHandle(env['REAPER_WORKFLOW_ID']!)
      .terminate('test over')
      .catch(() => undefined);
    worker?.kill('SIGTERM');
    await worker?.exited;
    await temporal?.close();
    for (const token of provisioned) await cleanupToken(targets, token);
    await targets.close();
    await db?.drop();
  });

  it('reap-now --wait: every item planned, nothing dropped or deleted, status and log say dry run', async () => {
    const [item] = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    provisioned.push(item!.poolToken);
    const refused = await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      poolToken: 'admin',
    });

    const result = await runBin(['reap-now', '--wait', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({
      listed: 2,
      reaped: 0,
      outcome: 'dry_run',
      dryRun: { reap: 1, refuse: 1, skip: 0, failed: 0 },
    });
    expect(await databaseExists(`db_${item!.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${item!.poolToken}`)).toBe(true);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM pool_items')).rows[0].n).toBe(2);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM pool_reaper_item_failures')).rows[0].n).toBe(
      0,
    );
    expect(worker.lines.filter((l) => String(l['event'] ?? '').startsWith('provisioner.drop'))).toEqual([]);
    expect(
      worker.lines
        .filter((l) => l['event'] === 'pool_reaper.plan.item')
        .map((l) => l['poolToken'])
        .sort(),
    ).toEqual([item!.poolToken, refused.poolToken].sort());

    const completed = await worker.waitForEvent('pool_reaper.pass.completed');
    expect(completed).toMatchObject({ dryRun: true, outcome: 'dry_run', passId: summary.passId });
    expect(completed['webUi']).toBe(
      `http://ui.example:8233/namespaces/default/workflows/${encodeURIComponent(summary.passId)}/history`,
    );

    const status = await runBin(['status'], env);
    expect(status.stdout).toMatch(/DRY RUN: passes plan and touch nothing/);
    expect(status.stdout).toMatch(/DRY RUN: REAPER_DRY_RUN=true, nothing dropped, no row deleted/);
    const text = await runBin(['passes', '--with-work', '--json'], env);
    expect(text.code, text.stderr).toBe(0);
    // Visibility is eventually consistent: the pass shows up once indexed (checked by its id).
    const listed = JSON.parse(text.stdout) as { passes: { workflowId: string; outcome: string | null }[] };
    for (const p of listed.passes) expect(p.outcome).toBe('dry_run');
  });
});
