/**
 * Backlog at scale (`npm run bench -- --backlog 5000`): N stale failed items over two real
 * PostgreSQL clusters plus Redis, drained (a) by a direct loop at concurrency C over the same
 * clusters and (b) by the production ticker, whose passes follow each other at once while a
 * pass finds a full batch (its backlog catch-up). Reports items/s of both, the worker's peak
 * RSS (sampled through the drain), the largest pass history (events and bytes) and the time
 * to the first and last reap.
 */
import os from 'node:os';
import pg from 'pg';
import { mapWithConcurrency, type SeededItem, seedItems } from '../src/dev/seed';
import { createLogger } from '../src/logger';
import type { PoolItemRef } from '../src/shared/types';
import type { PoolStore } from '../src/store/pool-store';
import { createTeardownRegistry } from '../src/teardown';
import { historyStats, withTemporalWorker } from './lib/temporal-bench';

export interface BacklogOptions {
  readonly backlog: number;
  readonly concurrency: number;
  readonly clusterConcurrency: number;
  readonly batchLimit: number;
  /** Share of the items that are Redis (the rest is split evenly between the two clusters). */
  readonly redisShare: number;
  readonly adminUrl: string;
  readonly adminUrl2: string;
  readonly redisUrl: string;
  readonly provisionerUrl: string;
}

const log = createLogger({ level: 'silent' });
const CLUSTER_1 = 'local:0';
const CLUSTER_2 = 'local:1';

async function seedBacklog(store: PoolStore, o: BacklogOptions): Promise<SeededItem[]> {
  const redis = Math.round(o.backlog * o.redisShare);
  const postgres = o.backlog - redis;
  const common = {
    provisionerPool: store.pool,
    redisUrl: o.redisUrl,
    status: 'failed' as const,
    ageMs: 3_600_000,
    concurrency: 8,
  };
  const started = performance.now();
  const [one, two, r] = await Promise.all([
    seedItems({
      ...common,
      adminUrl: o.adminUrl,
      count: Math.ceil(postgres / 2),
      resourceType: 'postgres',
      providerResourceId: CLUSTER_1,
    }),
    seedItems({
      ...common,
      adminUrl: o.adminUrl2,
      count: Math.floor(postgres / 2),
      resourceType: 'postgres',
      providerResourceId: CLUSTER_2,
    }),
    seedItems({
      ...common,
      adminUrl: o.adminUrl,
      count: redis,
      resourceType: 'redis',
      providerResourceId: CLUSTER_1,
    }),
  ]);
  process.stderr.write(
    `  seeded ${o.backlog} items in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
  );
  for (const url of [o.adminUrl, o.adminUrl2]) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CHECKPOINT').catch(() => undefined);
    await c.end();
  }
  return [...one, ...two, ...r];
}

const clusters = (o: BacklogOptions) => ({
  postgresClusters: new Map([
    [CLUSTER_1, o.adminUrl],
    [CLUSTER_2, o.adminUrl2],
  ]),
  redisClusters: new Map([[CLUSTER_1, o.redisUrl]]),
});

/** This process's RSS (MiB, one decimal). */
const rssMiB = () => Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10;

/** The machine's load while `fn` runs: 1-minute load average, sampled every 0.5 s. */
export interface LoadDuringRun {
  readonly min: number;
  readonly mean: number;
  readonly max: number;
}

/** Peak and samples of this process's RSS, and the machine's load, while `fn` runs. */
async function sampleRss<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; peakMiB: number; samplesMiB: number[]; load: LoadDuringRun }> {
  const samples: number[] = [];
  const loads: number[] = [];
  const sample = () => {
    samples.push(rssMiB());
    loads.push(os.loadavg()[0] ?? 0);
  };
  sample();
  const timer = setInterval(sample, 500);
  try {
    const value = await fn();
    sample();
    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      value,
      peakMiB: Math.max(...samples),
      samplesMiB: samples,
      load: {
        min: round(Math.min(...loads)),
        mean: round(loads.reduce((a, b) => a + b, 0) / loads.length),
        max: round(Math.max(...loads)),
      },
    };
  } finally {
    clearInterval(timer);
  }
}

/** First and last tombstone of these items, from the start of the drain (ms). */
async function reapTimes(store: PoolStore, items: readonly PoolItemRef[], startedAt: Date) {
  const { rows } = await store.pool.query<{ first: Date; last: Date; n: string }>(
    'SELECT min(reaped_at) AS first, max(reaped_at) AS last, count(*) AS n FROM pool_reaper_reaped WHERE item_id = ANY($1::uuid[])',
    [items.map((i) => i.id)],
  );
  const row = rows[0];
  return {
    reaped: Number(row?.n ?? 0),
    firstReapMs: row?.first ? row.first.getTime() - startedAt.getTime() : undefined,
    lastReapMs: row?.last ? row.last.getTime() - startedAt.getTime() : undefined,
  };
}

async function remaining(store: PoolStore, items: readonly PoolItemRef[]): Promise<number> {
  const { rows } = await store.pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM pool_items WHERE id = ANY($1::uuid[])',
    [items.map((i) => i.id)],
  );
  return Number(rows[0]?.n ?? 0);
}

export async function directBacklog(store: PoolStore, o: BacklogOptions) {
  process.stderr.write(`backlog: seeding ${o.backlog} items for the direct loop…\n`);
  const items = await seedBacklog(store, o);
  const registry = createTeardownRegistry({ ...clusters(o), concurrency: o.concurrency, log });
  try {
    const startedAt = new Date();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const { peakMiB, samplesMiB, load } = await sampleRss(() =>
      mapWithConcurrency(items, o.concurrency, async (item) => {
        await registry.teardown(item);
        await store.deleteFailedItem(item);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const times = await reapTimes(store, items, startedAt);
    return {
      mode: `direct loop, C=${o.concurrency}, two clusters + Redis`,
      items: items.length,
      seconds,
      perSecond: items.length / seconds,
      cpuMsPerItem: (used.user + used.system) / 1000 / items.length,
      peakRssMiB: peakMiB,
      rssFirstLastMiB: [samplesMiB[0], samplesMiB.at(-1)],
      loadDuringRun: load,
      ...times,
    };
  } finally {
    await registry.close();
  }
}

export async function temporalBacklog(store: PoolStore, o: BacklogOptions) {
  const setup = { store, ...clusters(o), concurrency: o.concurrency, batchLimit: o.batchLimit, log };
  return withTemporalWorker(setup, async ({ client, taskQueue, server }) => {
    // Warm the sandbox as the throughput bench does: a pass over an empty table.
    await client.workflow.execute('reapPass', {
      taskQueue,
      workflowId: `${taskQueue}-warmup`,
      args: [{ concurrency: o.concurrency }],
    });
    process.stderr.write(`backlog: seeding ${o.backlog} items for the ticker…\n`);
    const items = await seedBacklog(store, o);
    const startedAt = new Date();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const ticker = await client.workflow.start('poolReaper', {
      taskQueue,
      workflowId: `${taskQueue}-ticker`,
      args: [
        {
          settings: {
            // Catch-up runs passes back to back; a short tick only matters when a pass's batch
            // was not full (the end of the drain, or a cluster that failed and deferred its items).
            tickMs: 2_000,
            pass: { concurrency: o.concurrency, clusterConcurrency: o.clusterConcurrency },
          },
          // The first pass at once, then catch-up while batches come back full.
          state: { catchUp: true },
        },
      ],
    });
    // RSS each time another 1,000 items (or the last of them) are gone: flat or growing with the
    // drain, within one run.
    const rssAtReaped: { reaped: number; atSeconds: number; rssMiB: number }[] = [];
    const { peakMiB, samplesMiB, load } = await sampleRss(async () => {
      const deadline = Date.now() + 45 * 60_000;
      for (;;) {
        const left = await remaining(store, items);
        const reaped = items.length - left;
        const step = Math.min(1000, items.length);
        if (
          reaped >= (rssAtReaped.length + 1) * step ||
          (left === 0 && rssAtReaped.at(-1)?.reaped !== reaped)
        ) {
          rssAtReaped.push({
            reaped,
            atSeconds: Math.round(performance.now() - started) / 1000,
            rssMiB: rssMiB(),
          });
        }
        if (left === 0) return;
        if (Date.now() > deadline)
          throw new Error(`backlog not drained after 45 minutes: ${left} items left`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    });
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const times = await reapTimes(store, items, startedAt);
    // Let the last pass close before reading the histories.
    for (let i = 0; i < 120; i++) {
      let running = 0;
      for await (const _ of client.workflow.list({
        query: `TaskQueue = '${taskQueue}' AND WorkflowType = 'reapPass' AND ExecutionStatus = 'Running'`,
      }))
        running++;
      if (running === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await ticker.terminate('backlog bench done');
    let passes = 0;
    let events = 0;
    let bytes = 0;
    let largest = { workflowId: '', events: 0, bytes: 0 };
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
      if (wf.workflowId.endsWith('-warmup')) continue;
      const stats = await historyStats(client, wf.workflowId, wf.runId);
      events += stats.events;
      bytes += stats.bytes;
      if (wf.type === 'reapPass') {
        passes++;
        if (stats.bytes > largest.bytes) largest = { workflowId: wf.workflowId, ...stats };
      }
    }
    void server;
    return {
      mode: `ticker catch-up passes, C=${o.concurrency} (${o.clusterConcurrency} per cluster), batch ${o.batchLimit}`,
      items: items.length,
      seconds,
      perSecond: items.length / seconds,
      workerCpuMsPerItem: (used.user + used.system) / 1000 / items.length,
      peakRssMiB: peakMiB,
      rssFirstLastMiB: [samplesMiB[0], samplesMiB.at(-1)],
      rssSamplesMiB: samplesMiB.filter((_, n) => n % 10 === 0),
      rssAtReaped,
      loadDuringRun: load,
      passes,
      eventsPerItem: events / items.length,
      historyBytesPerItem: bytes / items.length,
      largestPass: largest,
      ...times,
    };
  });
}
