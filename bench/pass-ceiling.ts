/**
 * The pure-Temporal ceiling of one pass (`npm run bench -- --ceiling 2000`): queue items,
 * whose teardown touches no backend (the row lock, the checks and the row delete remain),
 * so what bounds the pass is Temporal and the worker. One pass per level of C, with one
 * worker process or two (`--workers 2`: a second process polls the same task queue).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_CLUSTER } from '../src/config';
import { createLogger } from '../src/logger';
import type { PassSummary } from '../src/shared/types';
import type { PoolStore } from '../src/store/pool-store';
import { metricDelta, perItemFigures, scrapeSdkMetrics } from './lib/sdk-metrics';
import { historyStats, SDK_METRICS_PORT, withTemporalWorker } from './lib/temporal-bench';

export interface CeilingOptions {
  readonly items: number;
  readonly levels: readonly number[];
  readonly workers: number;
  readonly adminUrl: string;
  readonly redisUrl: string;
  readonly provisionerUrl: string;
}

const log = createLogger({ level: 'silent' });

/** N stale failed queue rows in one statement (no infra to create). */
async function seedQueueRows(store: PoolStore, n: number): Promise<void> {
  await store.pool.query(
    `INSERT INTO pool_items (resource_type, connection_url, provider_resource_id, pool_token, status, created_at, assigned_at)
     SELECT 'queue', 'nats://bench@127.0.0.1:4222', $2, 'pool-' || gen_random_uuid(), 'failed',
            now() - interval '1 hour', now() - interval '1 hour'
       FROM generate_series(1, $1)`,
    [n, DEFAULT_CLUSTER],
  );
}

function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export async function passCeiling(store: PoolStore, o: CeilingOptions) {
  const rows: Record<string, unknown>[] = [];
  for (const C of o.levels) {
    const setup = {
      store,
      postgresClusters: new Map([[DEFAULT_CLUSTER, o.adminUrl]]),
      redisClusters: new Map([[DEFAULT_CLUSTER, o.redisUrl]]),
      concurrency: C,
      batchLimit: o.items,
      log,
    };
    const row = await withTemporalWorker(setup, async ({ client, taskQueue, server }) => {
      const others = Array.from({ length: o.workers - 1 }, () =>
        fork(path.join(__dirname, 'lib', 'worker-process.js'), [], {
          env: {
            ...process.env,
            BENCH_CONCURRENCY: String(C),
            BENCH_PROVISIONER_URL: o.provisionerUrl,
            BENCH_ADMIN_URL: o.adminUrl,
            BENCH_REDIS_URL: o.redisUrl,
            BENCH_TEMPORAL_ADDRESS: server.address,
            BENCH_TASK_QUEUE: taskQueue,
          },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
      try {
        await Promise.all(others.map((p) => new Promise((resolve) => p.once('message', resolve))));
        await client.workflow.execute('reapPass', {
          taskQueue,
          workflowId: `${taskQueue}-warmup`,
          args: [{ concurrency: C }],
        });
        await seedQueueRows(store, o.items);
        const before = await scrapeSdkMetrics(SDK_METRICS_PORT);
        const serverBefore = cpuSecondsOf(server.process.pid);
        const othersBefore = others.map((p) => cpuSecondsOf(p.pid));
        const self = process.cpuUsage();
        const started = performance.now();
        const summary = (await client.workflow.execute('reapPass', {
          taskQueue,
          workflowId: `${taskQueue}-pass`,
          args: [{ concurrency: C, clusterConcurrency: C, recordReapedTokens: true }],
        })) as PassSummary;
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(self);
        const serverCpu = cpuSecondsOf(server.process.pid) - serverBefore;
        const othersCpu = others.reduce((sum, p, n) => sum + cpuSecondsOf(p.pid) - (othersBefore[n] ?? 0), 0);
        const sdk = perItemFigures(metricDelta(before, await scrapeSdkMetrics(SDK_METRICS_PORT)), o.items);
        const pass = await historyStats(client, `${taskQueue}-pass`);
        const ms = (v: number) => Math.round(((v * 1000) / o.items) * 100) / 100;
        const out = {
          concurrency: C,
          workers: o.workers,
          items: o.items,
          reaped: summary.reaped,
          seconds,
          perSecond: summary.reaped / seconds,
          passHistory: pass,
          eventsPerItem: pass.events / o.items,
          workerCpuMsPerItem: ms((used.user + used.system) / 1e6 + othersCpu),
          serverCpuMsPerItem: ms(serverCpu),
          sdkMainWorker: sdk,
        };
        process.stderr.write(`ceiling C=${C} workers=${o.workers}: ${JSON.stringify(out)}\n`);
        return out;
      } finally {
        for (const p of others) p.kill('SIGTERM');
      }
    });
    rows.push(row);
  }
  return rows;
}
