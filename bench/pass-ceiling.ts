/**
 * The pure-Temporal ceiling of one pass (`npm run bench -- --ceiling 2000`): queue items,
 * whose teardown touches no backend (the row lock, the checks and the row delete remain),
 * so what bounds the pass is Temporal and the worker. One pass per level of C, with one
 * worker process or two (`--workers 2`: a second process polls the same task queue).
 *
 * `--shards 1,2,4` (REAPER_PASS_SHARDS): the items are spread over `--clusters` synthetic
 * clusters (default 50) and one tick of a real ticker runs them as that many shard passes,
 * each with C lanes and `--cluster-concurrency` (default 4) per cluster; the worker is sized
 * as src/worker.ts sizes it (activity slots for C × shards lanes).
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
  /** Shard counts to measure (one tick of a ticker each); absent: one bare pass per level. */
  readonly shards?: readonly number[];
  readonly clusters?: number;
  readonly clusterConcurrency?: number;
  /** `--teardown-delay-ms`: each no-op teardown takes this long, like a real drop (shards mode). */
  readonly teardownDelayMs?: number;
}

const log = createLogger({ level: 'silent' });

/** N stale failed queue rows in one statement (no infra to create), round robin over `clusters` clusters. */
async function seedQueueRows(store: PoolStore, n: number, clusters = 1): Promise<void> {
  await store.pool.query(
    `INSERT INTO pool_items (resource_type, connection_url, provider_resource_id, pool_token, status, created_at, assigned_at)
     SELECT 'queue', 'nats://bench@127.0.0.1:4222',
            CASE WHEN $3 = 1 THEN $2 ELSE 'bench:' || (i % $3) END,
            'pool-' || gen_random_uuid(), 'failed', now() - interval '1 hour', now() - interval '1 hour'
       FROM generate_series(1, $1) AS i`,
    [n, DEFAULT_CLUSTER, clusters],
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
  if (o.shards) return shardCeiling(store, o, o.shards);
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

/**
 * One tick of a real ticker with REAPER_PASS_SHARDS = each of `shards`, per level of C, over
 * no-op items spread across many clusters: what sharding buys a fleet (issue 18, item 4).
 */
async function shardCeiling(store: PoolStore, o: CeilingOptions, shards: readonly number[]) {
  const clusters = o.clusters ?? 50;
  const rows: Record<string, unknown>[] = [];
  for (const C of o.levels) {
    for (const N of shards) {
      const setup = {
        store,
        // Queue items may name any configured cluster id (no connection opens for them).
        postgresClusters: new Map([
          [DEFAULT_CLUSTER, o.adminUrl],
          ...Array.from({ length: clusters }, (_, i): [string, string] => [`bench:${i}`, o.adminUrl]),
        ]),
        redisClusters: new Map([[DEFAULT_CLUSTER, o.redisUrl]]),
        // As src/worker.ts sizes its activity slots: C lanes in each of N passes.
        concurrency: C * N,
        batchLimit: o.items,
        log,
        ...(o.teardownDelayMs ? { teardownDelayMs: o.teardownDelayMs } : {}),
      };
      const row = await withTemporalWorker(setup, async ({ client, taskQueue, server }) => {
        await client.workflow.execute('reapPass', {
          taskQueue,
          workflowId: `${taskQueue}-warmup`,
          args: [{ concurrency: C }],
        });
        // A clean slate: no rows, and no cluster marked down, left by an earlier level.
        await store.pool.query('DELETE FROM pool_items');
        await store.pool.query('DELETE FROM pool_reaper_clusters');
        await seedQueueRows(store, o.items, clusters);
        const pass = {
          concurrency: C,
          clusterConcurrency: Math.min(o.clusterConcurrency ?? 4, C),
          recordReapedTokens: true,
          rules: {
            failedGraceMs: 600_000,
            batchLimit: o.items,
            stuckAssignedGraceMs: 1_800_000,
            orphanGraceMs: 86_400_000,
          },
        };
        const ticker = await client.workflow.start('poolReaper', {
          taskQueue,
          workflowId: `${taskQueue}-ticker`,
          args: [{ settings: { tickMs: 3_600_000, ...(N > 1 ? { passShards: N } : {}), pass } }],
        });
        const serverBefore = cpuSecondsOf(server.process.pid);
        const self = process.cpuUsage();
        const started = performance.now();
        const summary = (await ticker.executeUpdate('reapNow', {
          args: [{ requestedBy: 'bench' }],
        })) as PassSummary;
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(self);
        const serverCpu = cpuSecondsOf(server.process.pid) - serverBefore;
        await ticker.terminate('bench done');
        const passIds = summary.shards ? summary.shards.map((s) => s.passId) : [summary.passId];
        const histories = await Promise.all(passIds.map((id) => historyStats(client, id)));
        const ms = (v: number) => Math.round(((v * 1000) / o.items) * 100) / 100;
        const out = {
          concurrency: C,
          shards: N,
          clusters,
          clusterConcurrency: pass.clusterConcurrency,
          teardownDelayMs: o.teardownDelayMs ?? 0,
          items: o.items,
          reaped: summary.reaped,
          perShard: summary.shards?.map((s) => s.reaped) ?? [summary.reaped],
          seconds,
          perSecond: summary.reaped / seconds,
          passEvents: histories.reduce((n, h) => n + h.events, 0),
          maxShardHistoryBytes: Math.max(...histories.map((h) => h.bytes)),
          workerCpuMsPerItem: ms((used.user + used.system) / 1e6),
          serverCpuMsPerItem: ms(serverCpu),
        };
        process.stderr.write(`ceiling C=${C} shards=${N}: ${JSON.stringify(out)}\n`);
        return out;
      });
      rows.push(row);
    }
  }
  return rows;
}
