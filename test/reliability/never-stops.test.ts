import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { activityRecords } from '../helpers/history';
import { checkHistories } from '../helpers/invariants';
import { createTestDatabase, dropTokenInfra, type TestDatabase } from '../helpers/postgres';
import { HOUR } from '../helpers/reliability-fixtures';
import { recordFigures } from '../helpers/results';
import { holdRowLock } from '../helpers/rows';
import { scrape, seriesValue } from '../helpers/scrape';
import { SupervisedWorker } from '../helpers/supervised-worker';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { connectTestTemporal, type TestTemporal, testTaskQueue } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

/** The second PostgreSQL cluster (.ci/run starts it): `pg_createcluster 15 second --port 5433`. */
const SECOND_CLUSTER_URL =
  process.env['TEST_POSTGRES_URL_2'] ?? 'postgres://postgres@127.0.0.1:5433/postgres';

async function objectsOn(url: string, tokens: readonly string[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM pg_database WHERE datname = ANY($1::text[])) +
              (SELECT count(*) FROM pg_roles WHERE rolname = ANY($2::text[])) AS n`,
      [tokens.map((t) => `db_${t}`), tokens.map((t) => `usr_${t}`)],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/** The largest number of deprovision activities of one cluster's items running at once. */
function maxOverlap(intervals: readonly { start: number; end: number }[]): number {
  const edges = intervals.flatMap((i) => [
    { at: i.start, d: 1 },
    { at: i.end, d: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of edges) {
    now += e.d;
    max = Math.max(max, now);
  }
  return max;
}

/**
 * Reaping never stops, tried as an operator meets it, with the real worker binary: one
 * cluster dead while another is healthy; a worker killed with -9 in the middle of a pass.
 * (The provisioner database outage is in provisioner-outage.test.ts: it mostly waits.)
 */
describe('reaping never stops', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  let worker: SupervisedWorker | undefined;
  let proxy: TcpProxy | undefined;
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    temporal = await connectTestTemporal();
  });
  afterEach(async () => {
    await worker?.stop().catch(() => undefined);
    worker = undefined;
    for (const p of processes.splice(0)) {
      p.kill('SIGKILL');
      await p.exited;
    }
    await proxy?.close();
    proxy = undefined;
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

  it('reaps a healthy cluster every pass while an older cluster is dead, never quarantines the dead one, and resumes it when it returns', async () => {
    const startedAt = Date.now();
    db = await createTestDatabase('rel_dead_cluster');
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(SECOND_CLUSTER_URL).port));
    const taskQueue = testTaskQueue('rel-dead-cluster');
    const deadUrl = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
    // Real items on the second cluster: 12 reachable as local:1, 12 behind the proxy as local:2.
    const seed = (cluster: string, ageMs: number) =>
      seedItems({
        provisionerPool: db.pool,
        adminUrl: SECOND_CLUSTER_URL,
        redisUrl: TEST_REDIS_URL,
        count: 12,
        resourceType: 'postgres',
        status: 'failed',
        ageMs,
        providerResourceId: cluster,
        concurrency: 4,
      });
    const dead = await seed('local:2', 3 * HOUR);
    const healthy = await seed('local:1', HOUR);
    const deadTokens = dead.map((i) => i.poolToken);
    const healthyTokens = healthy.map((i) => i.poolToken);
    let release: () => void = () => undefined;
    const outage = proxy.refuseUntil(new Promise<void>((resolve) => (release = resolve)));
    try {
      const completed: { reaped: number; listed: number; durationMs: number; at: number }[] = [];
      worker = new SupervisedWorker({
        client: temporal.client,
        taskQueue,
        env: {
          ...baseEnv(taskQueue, db.url),
          POSTGRES_ADMIN_URLS: `local:1=${SECOND_CLUSTER_URL},local:2=${deadUrl}`,
          REAPER_TICK: '2s',
          REAPER_BATCH_LIMIT: '6',
          REAPER_CONCURRENCY: '4',
          REAPER_CLUSTER_CONCURRENCY: '2',
        },
        onLine: (line) => {
          if (line['event'] === 'pool_reaper.pass.completed') {
            completed.push({
              reaped: Number(line['reaped']),
              listed: Number(line['listed']),
              durationMs: Number(line['durationMs']),
              at: Date.now(),
            });
          }
        },
      });
      await worker.start();
      const healthyRows = async () =>
        Number(
          (
            await db.pool.query('SELECT count(*) AS n FROM pool_items WHERE id = ANY($1::uuid[])', [
              healthy.map((i) => i.id),
            ])
          ).rows[0].n,
        );
      await waitFor(healthyRows, (n) => n === 0, { what: 'every healthy item reaped', timeoutMs: 120_000 });
      const drainedAt = Date.now();

      // While the dead cluster was down, every pass reaped healthy items: none starved.
      const whileHealthyLeft = completed.filter((p) => p.at <= drainedAt && p.listed > 0);
      expect(whileHealthyLeft.length).toBeGreaterThanOrEqual(2);
      expect(whileHealthyLeft.filter((p) => p.reaped === 0)).toEqual([]);
      expect(await objectsOn(SECOND_CLUSTER_URL, healthyTokens)).toBe(0);

      // The dead cluster's items: all kept, with their infra, none quarantined, counted and marked.
      expect(await objectsOn(SECOND_CLUSTER_URL, deadTokens)).toBe(24);
      const kept = await db.pool.query('SELECT count(*) AS n FROM pool_items WHERE id = ANY($1::uuid[])', [
        dead.map((i) => i.id),
      ]);
      expect(Number(kept.rows[0].n)).toBe(12);
      const quarantined = await db.pool.query(
        'SELECT count(*) AS n FROM pool_reaper_item_failures WHERE quarantined_at IS NOT NULL',
      );
      expect(Number(quarantined.rows[0].n)).toBe(0);
      const metrics = await scrape(worker.metricsPort);
      expect(
        seriesValue(metrics, 'instant_pool_cluster_down{resource_type="postgres",cluster="local:2"}'),
      ).toBe(1);
      expect(
        seriesValue(metrics, 'instant_pool_stale_failed_items{resource_type="postgres",cluster="local:2"}'),
      ).toBe(12);
      const passDurationsWhileDown = completed.filter((p) => p.at <= drainedAt).map((p) => p.durationMs);

      // The cluster returns: after its cool-down one item probes it, then its items flow.
      release();
      await outage;
      await waitFor(rows, (n) => n === 0, { what: 'the returned cluster drained', timeoutMs: 180_000 });
      expect(await objectsOn(SECOND_CLUSTER_URL, deadTokens)).toBe(0);
      expect((await db.pool.query('SELECT count(*) AS n FROM pool_reaper_clusters')).rows[0].n).toBe('0');

      // The audit trail: every delete after its freeing deprovision; at most 2 teardowns at once per cluster.
      const histories = await checkHistories(temporal.client, taskQueue, startedAt);
      expect(histories.violations).toEqual([]);
      expect(histories.deletes).toBeGreaterThanOrEqual(24);
      const clusterOfToken = new Map([
        ...deadTokens.map((t) => [t, 'local:2'] as const),
        ...healthyTokens.map((t) => [t, 'local:1'] as const),
      ]);
      const intervals = new Map<string, { start: number; end: number }[]>();
      for await (const wf of temporal.client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
        if (wf.type !== 'reapPass') continue;
        const history = await temporal.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        const times = new Map((history.events ?? []).map((e) => [Number(e.eventId), e.eventTime]));
        const ms = (id: number | undefined) => {
          const t = id === undefined ? undefined : times.get(id);
          return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined;
        };
        for (const r of activityRecords(history)) {
          if (r.activity !== 'deprovision' || r.poolToken === undefined) continue;
          const start = ms(r.startedEventId);
          const end = ms(r.completedEventId ?? r.failedEventId);
          const cluster = clusterOfToken.get(r.poolToken);
          if (start === undefined || end === undefined || cluster === undefined) continue;
          intervals.set(cluster, [...(intervals.get(cluster) ?? []), { start, end }]);
        }
      }
      expect([...intervals.keys()].sort()).toEqual(['local:1', 'local:2']);
      const overlaps = Object.fromEntries([...intervals].map(([c, list]) => [c, maxOverlap(list)]));
      for (const overlap of Object.values(overlaps)) expect(overlap).toBeLessThanOrEqual(2);

      recordFigures({
        scenario: 'dead cluster beside a healthy one',
        runs: completed.length,
        items: 24,
        faults:
          'local:2 refused connections until the healthy local:1 was drained (12 + 12 items, batch 6, 4 lanes, 2 per cluster)',
        wrongfulDrops: 0,
        leaks: 0,
        rowsLost: 0,
        durationMs: Date.now() - startedAt,
        passesWhileDown: whileHealthyLeft.length,
        passDurationsWhileDownMs: passDurationsWhileDown,
        maxConcurrentTeardownsPerCluster: overlaps,
      });
    } finally {
      release();
      await outage;
      await dropTokenInfra(SECOND_CLUSTER_URL, [...deadTokens, ...healthyTokens]);
    }
  }, 300_000);

  it('a pass killed with its worker (kill -9) is picked up by a replacement within seconds', async () => {
    const startedAt = Date.now();
    db = await createTestDatabase('rel_kill_resume');
    const taskQueue = testTaskQueue('rel-kill-resume');
    const items = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 24,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      concurrency: 4,
    });
    const tokens = items.map((i) => i.poolToken);
    // The kill must land with work left, however fast the drops are: the test holds one row's
    // lock until the kill, so that item's teardown fails with ItemLockedError (transient, no
    // drop) and is retried; the replacement reaps it after the lock is released.
    const held = items[items.length - 1];
    if (held === undefined) throw new Error('no item to hold');
    const releaseHeld = await holdRowLock(db.pool, held.id);
    try {
      // Production timeouts (no test overrides): the deprovision heartbeat timeout and the sticky queue's.
      const env = {
        ...baseEnv(taskQueue, db.url),
        REAPER_TICK: '1h',
        REAPER_CONCURRENCY: '2',
        REAPER_BATCH_LIMIT: '50',
      };
      const first = await startWorkerProcess(env);
      processes.push(first);
      await first.waitForEvent('pool_reaper.worker.started', 90_000);
      await temporal.client.workflow
        .getHandle(`${taskQueue}-ticker`)
        .signal('reapNow', { requestedBy: 'test' });
      await waitFor(
        async () =>
          first.lines.filter((l) => l['event'] === 'provisioner.drop' && l['action'] === 'drop_database')
            .length,
        (n) => n >= 3,
        { what: 'the pass to be mid-teardown', timeoutMs: 60_000 },
      );
      first.kill('SIGKILL');
      await first.exited;
      const killedAt = Date.now();
      await releaseHeld();
      const replacement = await startWorkerProcess(env);
      processes.push(replacement);
      await replacement.waitForEvent('pool_reaper.worker.started', 90_000);
      const replacementAt = Date.now();
      await replacement.waitForEvent('provisioner.drop', 60_000);
      const resumedAt = Date.now();
      await waitFor(rows, (n) => n === 0, {
        what: 'the pass to finish on the replacement',
        timeoutMs: 120_000,
      });
      expect(await objectsOn(TEST_POSTGRES_URL, tokens)).toBe(0);
      const histories = await checkHistories(temporal.client, taskQueue, startedAt);
      expect(histories.violations).toEqual([]);
      expect(histories.deletes).toBeGreaterThanOrEqual(24);

      recordFigures({
        scenario: 'kill -9 mid-pass, replacement resumes',
        runs: 1,
        items: 24,
        faults: 'kill -9 of the only worker after 3 database drops; a replacement started at once',
        wrongfulDrops: 0,
        leaks: 0,
        rowsLost: 0,
        durationMs: Date.now() - startedAt,
        replacementStartMs: replacementAt - killedAt,
        resumedAfterReplacementStartMs: resumedAt - replacementAt,
        resumedAfterKillMs: resumedAt - killedAt,
      });
    } finally {
      await releaseHeld();
      await dropTokenInfra(TEST_POSTGRES_URL, tokens);
    }
  }, 300_000);
});
