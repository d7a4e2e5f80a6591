import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../../helpers/env';
import { createTestDatabase, type TestDatabase, urlForDatabase } from '../../helpers/postgres';
import { HOUR, tickerStatus } from '../../helpers/reliability-fixtures';
import { recordFigures } from '../../helpers/results';
import { insertRow } from '../../helpers/rows';
import { scrape, seriesValue } from '../../helpers/scrape';
import { SupervisedWorker } from '../../helpers/supervised-worker';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy';
import { connectTestTemporal, type TestTemporal, testTaskQueue } from '../../helpers/temporal';
import { waitFor } from '../../helpers/wait';

/**
 * The provisioner database refuses every connection for two minutes, across many ticks and
 * far past every retry budget: the same worker process and the same ticker record each pass
 * that could not list and reap again on their own once it answers. (In the main project: the
 * scenario mostly waits, so it does not need the machine to itself.)
 */
describe('a provisioner database outage', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let worker: SupervisedWorker | undefined;
  let proxy: TcpProxy | undefined;

  beforeAll(async () => {
    temporal = await connectTestTemporal();
  });
  afterEach(async () => {
    await worker?.stop().catch(() => undefined);
    await proxy?.close();
    await db?.drop();
  });
  afterAll(async () => {
    await temporal?.close();
  });

  const baseEnv = (taskQueue: string, provisionerUrl: string) => ({
    TEMPORAL_TASK_QUEUE: taskQueue,
    REAPER_WORKFLOW_ID: `${taskQueue}-ticker`,
    PROVISIONER_DATABASE_URL: provisionerUrl,
    POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
    REDIS_URL: TEST_REDIS_URL,
  });
  const rows = async () => Number((await db.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n);

  it('rides out a provisioner database that refuses connections for two minutes, in the same worker process', async () => {
    const startedAt = Date.now();
    const OUTAGE_MS = 120_000;
    db = await createTestDatabase('rel_db_outage');
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(TEST_POSTGRES_URL).port || 5432));
    const taskQueue = testTaskQueue('rel-db-outage');
    const proxied = urlForDatabase(`postgres://postgres@127.0.0.1:${proxy.port}/x`, db.name);
    for (let i = 0; i < 4; i++)
      await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    worker = new SupervisedWorker({
      client: temporal.client,
      taskQueue,
      env: { ...baseEnv(taskQueue, proxied), REAPER_TICK: '3s' },
      // A 10 s bookkeeping budget: the outage outlasts it twelve times over.
      passOptions: { bookkeepingBudgetMs: 10_000 },
    });
    await worker.start();
    const pid = worker.pid;
    await waitFor(rows, (n) => n === 0, { what: 'the first items reaped', timeoutMs: 60_000 });

    proxy.cutAll();
    const outage = proxy.refuseFor(OUTAGE_MS);
    for (let i = 0; i < 4; i++)
      await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const during = await waitFor(
      () => tickerStatus(temporal.client, `${taskQueue}-ticker`),
      (s) => s.consecutiveFailures >= 3,
      { what: 'three passes in a row to fail to list', timeoutMs: OUTAGE_MS },
    );
    expect(during.lastFailure?.reason).toBe('list_failed');
    expect(await rows()).toBe(4);
    await outage;
    const recoveredAt = Date.now();

    // The same process, the same ticker: it reaps again on its own.
    await waitFor(rows, (n) => n === 0, { what: 'reaping to resume after the outage', timeoutMs: 90_000 });
    const resumedAfterMs = Date.now() - recoveredAt;
    expect(worker.pid).toBe(pid);
    expect(worker.crashes).toEqual([]);
    expect(worker.incarnations).toBe(1);
    const after = await waitFor(
      () => tickerStatus(temporal.client, `${taskQueue}-ticker`),
      (s) => s.consecutiveFailures === 0,
      { what: 'a healthy pass recorded' },
    );
    expect(after.passesFailed).toBeGreaterThanOrEqual(3);
    const described = await temporal.client.workflow.getHandle(`${taskQueue}-ticker`).describe();
    expect(described.status.name).toBe('RUNNING');
    const metrics = await scrape(worker.metricsPort);
    const listFailed = seriesValue(metrics, 'instant_pool_reap_pass_failures_total{reason="list_failed"}');
    expect(listFailed).toBeGreaterThanOrEqual(3);

    recordFigures({
      scenario: 'provisioner database outage (2 min)',
      runs: 1,
      items: 8,
      faults: `provisioner database refused connections for ${OUTAGE_MS / 1000} s (bookkeeping budget 10 s, tick 3 s)`,
      wrongfulDrops: 0,
      leaks: 0,
      rowsLost: 0,
      durationMs: Date.now() - startedAt,
      failedPasses: after.passesFailed,
      resumedAfterMs,
      workerRestarts: worker.incarnations - 1,
    });
  }, 300_000);
});
