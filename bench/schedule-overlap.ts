/**
 * SKIP vs BUFFER_ONE for the Schedule trigger (REAPER_TRIGGER=schedule): what each overlap
 * policy does when passes run longer than the tick. A real dev server, a real worker, real
 * Postgres items whose teardowns make each pass slower than a 1 s tick; per policy it counts
 * passes started, ticks skipped, passes that found nothing, the idle gap between passes, and
 * the most passes ever running at once (must be 1). Then a trigger sent during a running
 * pass, as `reap-now` sends it, with each policy. Writes artifacts/bench/schedule-overlap.json.
 *
 *   flock /work/.locks/bench node dist/bench/schedule-overlap.js [--items 30] [--concurrency 1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Client, ScheduleOverlapPolicy } from '@temporalio/client';
import { Command } from 'commander';
import { ENV_DEFAULTS, loadConfig } from '../src/config';
import { seedItems } from '../src/dev/seed';
import { findTemporalCli } from '../src/dev/temporal-cli';
import { startDevServer } from '../src/dev/temporal-server';
import { createLogger } from '../src/logger';
import type { PassSummary } from '../src/shared/types';
import { ensureDatabase, migrate } from '../src/store/migrate';
import { PoolStore } from '../src/store/pool-store';
import { temporalTarget } from '../src/temporal-connection';
import { scheduleOptionsFrom } from '../src/trigger/schedule';
import { startWorker } from '../src/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Pass {
  id: string;
  start: number;
  end: number;
  listed: number;
}

async function passesOf(client: Client, scheduleId: string): Promise<Pass[]> {
  const passes: Pass[] = [];
  for await (const wf of client.workflow.list({ query: `TemporalScheduledById = '${scheduleId}'` })) {
    const summary = (await client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .result()
      .catch(() => undefined)) as PassSummary | undefined;
    passes.push({
      id: wf.workflowId,
      start: wf.startTime.getTime(),
      end: wf.closeTime?.getTime() ?? Number.NaN,
      listed: summary?.listed ?? -1,
    });
  }
  return passes.sort((a, b) => a.start - b.start);
}

function maxConcurrent(passes: Pass[]): number {
  const edges = passes.flatMap((p) => [
    [p.start, 1],
    [p.end, -1],
  ]) as [number, number][];
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) {
    now += d;
    max = Math.max(max, now);
  }
  return max;
}

async function main(): Promise<void> {
  const opts = new Command()
    .option('--items <n>', 'postgres items per policy', (v) => Number(v), 30)
    .option('--concurrency <n>', 'teardowns at once (low: passes longer than the tick)', (v) => Number(v), 1)
    .option('--tick <duration>', 'the Schedule interval (whole seconds)', '1s')
    .option('--tail <s>', 'seconds the Schedule keeps ticking after the backlog is gone', (v) => Number(v), 6)
    .parse()
    .opts<{ items: number; concurrency: number; tick: string; tail: number }>();
  const server = process.env['TEMPORAL_ADDRESS']
    ? undefined
    : await startDevServer({ cliPath: await findTemporalCli({ log: () => undefined }), uiPort: false });
  if (server) process.env['TEMPORAL_ADDRESS'] = server.address;
  const url = new URL(ENV_DEFAULTS.POSTGRES_ADMIN_URL);
  url.pathname = '/pool_reaper_bench_overlap';
  await ensureDatabase(url.toString());
  await migrate(url.toString());
  const store = PoolStore.connect(url.toString(), 4);
  const results: Record<string, unknown>[] = [];
  const config = loadConfig({
    PROVISIONER_DATABASE_URL: url.toString(),
    TEMPORAL_TASK_QUEUE: 'bench-overlap',
    REAPER_WORKFLOW_ID: 'bench-overlap',
    REAPER_TRIGGER: 'schedule',
    REAPER_TICK: opts.tick,
    REAPER_BATCH_LIMIT: '500',
    REAPER_CONCURRENCY: String(opts.concurrency),
    METRICS_PORT: '0',
    LOG_LEVEL: 'warn',
  });
  const worker = await startWorker(config, temporalTarget(), createLogger({ level: 'warn' }), {
    ensureTicker: false,
  });
  const client = worker.client;
  try {
    for (const overlap of ['SKIP', 'BUFFER_ONE'] as const satisfies readonly ScheduleOverlapPolicy[]) {
      const scheduleId = `bench-overlap-${overlap.toLowerCase()}-${Date.now()}`;
      await store.pool.query('DELETE FROM pool_items');
      await seedItems({
        provisionerPool: store.pool,
        adminUrl: ENV_DEFAULTS.POSTGRES_ADMIN_URL,
        redisUrl: ENV_DEFAULTS.REDIS_URL,
        count: opts.items,
        resourceType: 'postgres',
        status: 'failed',
        ageMs: 3_600_000,
      });
      const desired = scheduleOptionsFrom(config, false);
      const handle = await client.schedule.create({
        ...desired,
        scheduleId,
        policies: { ...desired.policies, overlap },
      });
      const started = Date.now();
      while (Number((await store.pool.query('SELECT count(*) AS n FROM pool_items')).rows[0].n) > 0)
        await sleep(200);
      const drainedMs = Date.now() - started;
      await sleep(opts.tail * 1000);
      await handle.pause('bench over');
      while ((await handle.describe()).info.runningActions.length > 0) await sleep(200);
      const d = await handle.describe();
      await sleep(2_000); // visibility catches up
      const passes = await passesOf(client, scheduleId);
      const gaps = passes.slice(1).map((p, i) => p.start - passes[i]!.end);
      const row = {
        overlap,
        items: opts.items,
        drainedMs,
        passes: passes.length,
        actionsTaken: d.info.numActionsTaken,
        skippedOverlap: d.info.numActionsSkippedOverlap,
        emptyPasses: passes.filter((p) => p.listed === 0).length,
        meanPassMs: Math.round(
          passes.reduce((s, p) => s + (p.end - p.start), 0) / Math.max(1, passes.length),
        ),
        meanGapMs: Math.round(gaps.reduce((s, g) => s + g, 0) / Math.max(1, gaps.length)),
        maxGapMs: Math.max(0, ...gaps),
        maxConcurrentPasses: maxConcurrent(passes),
      };
      results.push(row);
      console.log(JSON.stringify(row));

      // reap-now during a running pass: a trigger with this overlap policy.
      await seedItems({
        provisionerPool: store.pool,
        adminUrl: ENV_DEFAULTS.POSTGRES_ADMIN_URL,
        redisUrl: ENV_DEFAULTS.REDIS_URL,
        count: Math.max(4, Math.round(opts.items / 3)),
        resourceType: 'postgres',
        status: 'failed',
        ageMs: 3_600_000,
      });
      await handle.trigger('SKIP');
      while ((await handle.describe()).info.runningActions.length === 0) await sleep(100);
      const before = await handle.describe();
      await handle.trigger(overlap);
      while ((await handle.describe()).info.runningActions.length > 0) await sleep(200);
      await sleep(1_500);
      while ((await handle.describe()).info.runningActions.length > 0) await sleep(200);
      const after = await handle.describe();
      const trigger = {
        overlap,
        triggerDuringPass: true,
        passesStartedByIt: after.info.numActionsTaken - before.info.numActionsTaken,
        skipped: after.info.numActionsSkippedOverlap - before.info.numActionsSkippedOverlap,
      };
      results.push(trigger);
      console.log(JSON.stringify(trigger));
      await handle.delete();
      await store.pool.query('DELETE FROM pool_items');
    }
  } finally {
    worker.shutdown();
    await worker.done;
    await store.close();
    await server?.stop();
  }
  mkdirSync('artifacts/bench', { recursive: true });
  const out = {
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30) },
    settings: { tick: opts.tick, items: opts.items, concurrency: opts.concurrency, tailSeconds: opts.tail },
    results,
  };
  writeFileSync('artifacts/bench/schedule-overlap.json', `${JSON.stringify(out, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
