/**
 * Reap throughput, measured in one run on one machine (not a test):
 *   (a) a direct sequential loop, like the original reaper;
 *   (b) a direct loop at concurrency C;
 *   (c) reapPass on a real Temporal server at the same C;
 *   (d) optionally (b) and (c) again under a pgbench write load on another database.
 * Each mode seeds the same N fresh items (real databases, roles, keys, ACL users) first.
 *
 *   npm run bench -- [--postgres 200] [--redis 50] [--concurrency 16] [--pgbench]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { DEFAULT_CLUSTER, ENV_DEFAULTS } from '../src/config';
import { mapWithConcurrency, type SeededItem, seedItems } from '../src/dev/seed';
import { createLogger } from '../src/logger';
import type { PoolItemRef } from '../src/shared/types';
import { ensureDatabase, migrate } from '../src/store/migrate';
import { PoolStore } from '../src/store/pool-store';
import { createTeardownRegistry } from '../src/teardown';
import { reapPass } from '../workflows/reap-pass';
import { directBacklog, temporalBacklog } from './backlog';
import { metricDelta, perItemFigures, scrapeSdkMetrics } from './lib/sdk-metrics';
import { benchWorkerOptions, historyStats, SDK_METRICS_PORT, withTemporalWorker } from './lib/temporal-bench';
import { passCeiling } from './pass-ceiling';

interface Options {
  ceiling?: number;
  levels: string;
  workers: number;
  shards?: string;
  clusters?: number;
  teardownDelayMs?: number;
  backlog?: number;
  adminUrl2: string;
  batchLimit: number;
  clusterConcurrency?: number;
  redisShare: number;
  sequential: boolean;
  label: string;
  json: string;
  postgres: number;
  redis: number;
  concurrency: number;
  pgbench: boolean;
  adminUrl: string;
  redisUrl: string;
}

interface PassRun {
  seconds: number;
  items: number;
  eventsPerItem?: number;
  historyBytesPerItem?: number;
  /** CPU of the bench process (the worker: SDK, sandbox thread, activities) during the pass. */
  workerCpuMsPerItem?: number;
  /** CPU of the Temporal dev server during the pass. */
  serverCpuMsPerItem?: number;
  /** CPU of the direct loop's process (modes a, b). */
  cpuMsPerItem?: number;
  workflowTasksPerItem?: number;
  sdk?: Record<string, number>;
}

interface Row extends PassRun {
  mode: string;
  perSecond: number;
}

const log = createLogger({ level: 'silent' });

function databaseUrl(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

async function seed(store: PoolStore, opts: Options): Promise<SeededItem[]> {
  const common = {
    provisionerPool: store.pool,
    adminUrl: opts.adminUrl,
    redisUrl: opts.redisUrl,
    status: 'failed' as const,
    ageMs: 3_600_000,
    concurrency: 8,
  };
  const items = [
    ...(await seedItems({ ...common, count: opts.postgres, resourceType: 'postgres' })),
    ...(await seedItems({ ...common, count: opts.redis, resourceType: 'redis' })),
  ];
  // Settle the cluster so every mode starts from the same state.
  await store.pool.query('CHECKPOINT').catch(() => undefined);
  return items;
}

async function directLoop(
  store: PoolStore,
  items: readonly PoolItemRef[],
  concurrency: number,
  opts: Options,
) {
  const registry = createTeardownRegistry({
    postgresClusters: new Map([[DEFAULT_CLUSTER, opts.adminUrl]]),
    redisClusters: new Map([[DEFAULT_CLUSTER, opts.redisUrl]]),
    concurrency,
    log,
  });
  try {
    const started = performance.now();
    await mapWithConcurrency(items, concurrency, async (item) => {
      await registry.teardown(item);
      await store.deleteFailedItem(item);
    });
    return (performance.now() - started) / 1000;
  } finally {
    await registry.close();
  }
}

async function temporalPass(
  store: PoolStore,
  seedNow: () => Promise<PoolItemRef[]>,
  concurrency: number,
  opts: Options,
): Promise<PassRun> {
  const setup = {
    store,
    postgresClusters: new Map([[DEFAULT_CLUSTER, opts.adminUrl]]),
    redisClusters: new Map([[DEFAULT_CLUSTER, opts.redisUrl]]),
    concurrency,
    batchLimit: opts.postgres + opts.redis,
    log,
  };
  return withTemporalWorker(setup, async ({ client, taskQueue, server }) => {
    // Warm up: the first workflow task pays for the sandbox; the original reaper had no such cost.
    await client.workflow.execute(reapPass, {
      taskQueue,
      workflowId: `${taskQueue}-warmup`,
      args: [{ concurrency }],
    });
    const items = await seedNow();
    const metricsBefore = await scrapeSdkMetrics(SDK_METRICS_PORT);
    const cpuBefore = cpuSeconds(server.process.pid);
    const selfBefore = process.cpuUsage();
    const windowStartUs = Number(process.hrtime.bigint() / 1000n);
    const started = performance.now();
    const handle = await client.workflow.start(reapPass, {
      taskQueue,
      workflowId: `${taskQueue}-pass`,
      args: [{ concurrency, recordReapedTokens: true }],
    });
    const summary = await handle.result();
    const seconds = (performance.now() - started) / 1000;
    const serverCpu = cpuSeconds(server.process.pid) - cpuBefore;
    const self = process.cpuUsage(selfBefore);
    const workerCpu = (self.user + self.system) / 1e6;
    const windowEndUs = Number(process.hrtime.bigint() / 1000n);
    const profileDir = process.env['BENCH_PROFILE_DIR'];
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true });
      writeFileSync(
        path.join(profileDir, 'window.json'),
        JSON.stringify({ startUs: windowStartUs, endUs: windowEndUs, items: items.length }),
      );
    }
    const sdk = perItemFigures(
      metricDelta(metricsBefore, await scrapeSdkMetrics(SDK_METRICS_PORT)),
      items.length,
    );
    process.stderr.write(
      `  CPU during the pass: Temporal dev server ${serverCpu.toFixed(2)} s, worker process ${workerCpu.toFixed(2)} s ` +
        `(${(((serverCpu + workerCpu) / seconds) * 100).toFixed(0)}% of one core together)\n`,
    );
    if (summary.reaped !== items.length) {
      throw new Error(
        `reapPass reaped ${summary.reaped} of ${items.length}: ${JSON.stringify(summary.errors)}`,
      );
    }
    let events = 0;
    let bytes = 0;
    const latency = { scheduleToStart: 0, execution: 0, n: 0, turnaround: 0, turns: 0 };
    const edges = { start: 0, firstSchedule: 0, lastMarker: 0, end: 0 };
    const wft = { n: 0, queued: 0, running: 0, scheduledAt: 0, startedAt: 0 };
    const ids = [handle.workflowId];
    for await (const child of client.workflow.list({
      query: `ParentWorkflowId = '${handle.workflowId}'`,
    })) {
      ids.push(child.workflowId);
    }
    for (const id of ids) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      events += history.events?.length ?? 0;
      bytes += (await historyStats(client, id)).bytes;
      const at = new Map<number, number>();
      const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
        Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
      let lastCompletion: number | undefined;
      const isPass = id === handle.workflowId;
      for (const e of history.events ?? []) {
        const id = Number(e.eventId);
        if (isPass && e.workflowExecutionStartedEventAttributes) edges.start = ms(e.eventTime);
        if (isPass && e.workflowExecutionCompletedEventAttributes) edges.end = ms(e.eventTime);
        if (isPass && e.markerRecordedEventAttributes) edges.lastMarker = ms(e.eventTime);
        if (isPass && e.workflowTaskScheduledEventAttributes) wft.scheduledAt = ms(e.eventTime);
        if (isPass && e.workflowTaskStartedEventAttributes) {
          wft.startedAt = ms(e.eventTime);
          wft.queued += wft.startedAt - wft.scheduledAt;
        }
        if (isPass && e.workflowTaskCompletedEventAttributes) {
          wft.running += ms(e.eventTime) - wft.startedAt;
          wft.n += 1;
        }
        if (e.activityTaskScheduledEventAttributes) {
          at.set(id, ms(e.eventTime));
          if (isPass && e.activityTaskScheduledEventAttributes.activityType?.name === 'deprovision') {
            edges.firstSchedule ||= ms(e.eventTime);
          }
          // From a lane's teardown completing to its next teardown being scheduled.
          if (lastCompletion !== undefined) {
            latency.turnaround += ms(e.eventTime) - lastCompletion;
            latency.turns += 1;
            lastCompletion = undefined;
          }
        }
        const started = e.activityTaskStartedEventAttributes;
        if (started) {
          latency.scheduleToStart += ms(e.eventTime) - (at.get(Number(started.scheduledEventId)) ?? 0);
          at.set(id, ms(e.eventTime));
        }
        const done = e.activityTaskCompletedEventAttributes;
        if (done) {
          latency.execution += ms(e.eventTime) - (at.get(Number(done.startedEventId)) ?? 0);
          latency.n += 1;
          lastCompletion ??= ms(e.eventTime);
        }
      }
    }
    process.stderr.write(
      `  deprovision: mean schedule-to-start ${(latency.scheduleToStart / latency.n).toFixed(1)} ms, ` +
        `mean execution ${(latency.execution / latency.n).toFixed(1)} ms, ` +
        `lane utilisation ${((latency.execution / 1000 / (concurrency * seconds)) * 100).toFixed(0)}%\n` +
        `  pass: start → first deprovision ${(edges.firstSchedule - edges.start).toFixed(0)} ms, ` +
        `completion → next schedule ${(latency.turnaround / Math.max(1, latency.turns)).toFixed(1)} ms, ` +
        `last delete → pass closed ${(edges.end - edges.lastMarker).toFixed(0)} ms\n` +
        `  workflow tasks: ${wft.n} (${(wft.n / items.length).toFixed(2)} per item), mean ${(wft.queued / Math.max(1, wft.n)).toFixed(1)} ms ` +
        `scheduled → started, ${(wft.running / Math.max(1, wft.n)).toFixed(1)} ms started → completed\n`,
    );
    process.stderr.write(`  SDK metrics: ${JSON.stringify(sdk)}\n`);
    return {
      seconds,
      eventsPerItem: events / items.length,
      historyBytesPerItem: bytes / items.length,
      items: items.length,
      workerCpuMsPerItem: (workerCpu * 1000) / items.length,
      serverCpuMsPerItem: (serverCpu * 1000) / items.length,
      workflowTasksPerItem: wft.n / items.length,
      sdk,
    };
  });
}

/** User + system CPU seconds a process has used so far (Linux /proc). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function startPgbench(adminUrl: string): { stop: () => void } {
  const url = databaseUrl(adminUrl, 'pool_reaper_bench_load');
  spawnSync('psql', [adminUrl, '-qc', 'DROP DATABASE IF EXISTS pool_reaper_bench_load']);
  spawnSync('psql', [adminUrl, '-qc', 'CREATE DATABASE pool_reaper_bench_load']);
  const init = spawnSync('pgbench', ['-i', '-q', '-s', '5', url], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  const load = spawn('pgbench', ['-c', '4', '-j', '1', '-T', '3600', url], { stdio: 'ignore' });
  return {
    stop: () => {
      load.kill('SIGINT');
      spawnSync('psql', [adminUrl, '-qc', 'DROP DATABASE IF EXISTS pool_reaper_bench_load WITH (FORCE)']);
    },
  };
}

const f = (v: number | undefined, digits = 2) => (v === undefined ? '' : v.toFixed(digits));

function table(rows: Row[]): string {
  const header =
    '| mode | items | seconds | items/s | worker (or loop) CPU ms/item | server CPU ms/item | history events/item | workflow tasks/item |\n' +
    '|---|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map(
    (r) =>
      `| ${r.mode} | ${r.items} | ${r.seconds.toFixed(2)} | ${r.perSecond.toFixed(1)} | ` +
      `${f(r.workerCpuMsPerItem ?? r.cpuMsPerItem)} | ${f(r.serverCpuMsPerItem)} | ${f(r.eventsPerItem)} | ${f(r.workflowTasksPerItem)} |`,
  );
  return [header, ...lines].join('\n');
}

/** The machine and what else ran on it: the figures are only comparable within one run. */
export function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Writes the run's figures where `--json` says (artifacts/ by default; bench/results/ to keep them). */
export function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

async function main() {
  const program = new Command('bench')
    .option('--postgres <n>', 'postgres items per mode', (v) => Number.parseInt(v, 10), 200)
    .option('--redis <n>', 'redis items per mode', (v) => Number.parseInt(v, 10), 50)
    .option('-c, --concurrency <n>', 'C for modes (b) and (c)', (v) => Number.parseInt(v, 10), 16)
    .option('--pgbench', 'also run (b) and (c) under a pgbench write load on another database', false)
    .option(
      '--admin-url <url>',
      'customer Postgres admin URL',
      process.env['POSTGRES_ADMIN_URL'] ?? ENV_DEFAULTS.POSTGRES_ADMIN_URL,
    )
    .option('--redis-url <url>', 'Redis URL', process.env['REDIS_URL'] ?? ENV_DEFAULTS.REDIS_URL)
    .option('--backlog <n>', 'backlog mode: drain N items over two clusters plus Redis', (v) =>
      Number.parseInt(v, 10),
    )
    .option(
      '--admin-url-2 <url>',
      'backlog mode: the second Postgres cluster',
      process.env['POSTGRES_ADMIN_URL_2'] ?? 'postgres://postgres@127.0.0.1:5433/postgres',
    )
    .option(
      '--batch-limit <n>',
      'backlog mode: items per pass (REAPER_BATCH_LIMIT)',
      (v) => Number.parseInt(v, 10),
      500,
    )
    .option(
      '--cluster-concurrency <n>',
      'backlog mode: lanes per cluster (default: C); pass-ceiling --shards mode: default 4',
      (v) => Number.parseInt(v, 10),
    )
    .option('--redis-share <x>', 'backlog mode: share of Redis items', Number.parseFloat, 0.1)
    .option('--ceiling <n>', 'pass-ceiling mode: one pass over N no-op (queue) items per level', (v) =>
      Number.parseInt(v, 10),
    )
    .option('--levels <list>', 'pass-ceiling mode: levels of C', '16,64,256')
    .option('--workers <n>', 'pass-ceiling mode: worker processes', (v) => Number.parseInt(v, 10), 1)
    .option(
      '--shards <list>',
      'pass-ceiling mode: REAPER_PASS_SHARDS values, one ticker tick each (e.g. 1,2,4)',
    )
    .option('--clusters <n>', 'pass-ceiling --shards mode: synthetic clusters the items spread over', (v) =>
      Number.parseInt(v, 10),
    )
    .option(
      '--teardown-delay-ms <n>',
      'pass-ceiling --shards mode: each no-op teardown takes this long',
      (v) => Number.parseInt(v, 10),
    )
    .option('--no-sequential', 'skip mode (a), the sequential direct loop')
    .option('--label <text>', 'what this run measures (a lever), kept in the JSON', '')
    .option('--json <file>', 'where to write the figures', 'artifacts/bench/reap-throughput.json')
    .parse();
  const opts = program.opts<Options>();
  const provisionerUrl = databaseUrl(opts.adminUrl, `pool_reaper_bench_${process.pid}`);
  await ensureDatabase(provisionerUrl);
  await migrate(provisionerUrl);
  // Each lane holds a connection (its row lock): room for the most lanes a mode runs at once.
  const mostLanes =
    opts.ceiling !== undefined
      ? Math.max(...opts.levels.split(',').map(Number)) *
        Math.max(1, ...(opts.shards ?? '1').split(',').map(Number))
      : opts.concurrency;
  const store = PoolStore.connect(provisionerUrl, Math.max(opts.concurrency, mostLanes) * 2 + 8);
  if (opts.ceiling !== undefined) {
    const load = machine();
    try {
      const rows = await passCeiling(store, {
        items: opts.ceiling,
        levels: opts.levels.split(',').map(Number),
        workers: opts.workers,
        ...(opts.shards ? { shards: opts.shards.split(',').map(Number) } : {}),
        ...(opts.clusters !== undefined ? { clusters: opts.clusters } : {}),
        ...(opts.teardownDelayMs !== undefined ? { teardownDelayMs: opts.teardownDelayMs } : {}),
        ...(opts.shards && opts.clusterConcurrency !== undefined
          ? { clusterConcurrency: opts.clusterConcurrency }
          : {}),
        adminUrl: opts.adminUrl,
        redisUrl: opts.redisUrl,
        provisionerUrl,
      });
      writeJson(
        opts.json.endsWith('reap-throughput.json')
          ? `artifacts/bench/pass-ceiling-${opts.shards ? `shards-${opts.shards.replace(/,/g, '-')}` : `w${opts.workers}`}.json`
          : opts.json,
        {
          bench: 'reap-throughput --ceiling',
          label: opts.label,
          at: new Date().toISOString(),
          command: process.argv.slice(2).join(' '),
          machine: { ...load, loadavgAfter: machine().loadavg },
          rows,
        },
      );
    } finally {
      await store.close();
      await dropProvisionerDatabase(opts.adminUrl, provisionerUrl);
    }
    process.exit(0);
  }
  if (opts.backlog !== undefined) {
    await backlogMain(store, opts, provisionerUrl);
    return;
  }
  const total = opts.postgres + opts.redis;
  const rows: Row[] = [];
  const seedNow = async () => {
    process.stderr.write(`seeding ${total} items…\n`);
    return seed(store, opts);
  };
  const direct = (C: number) => async () => {
    const items = await seedNow();
    const before = process.cpuUsage();
    const seconds = await directLoop(store, items, C, opts);
    const used = process.cpuUsage(before);
    const cpu = (used.user + used.system) / 1e6;
    process.stderr.write(`  CPU of the direct loop's process: ${cpu.toFixed(2)} s\n`);
    return { seconds, items: items.length, cpuMsPerItem: (cpu * 1000) / items.length };
  };
  const loadBefore = machine();
  const run = async (mode: string, fn: () => Promise<PassRun>) => {
    const result = await fn();
    rows.push({ mode, ...result, perSecond: result.items / result.seconds });
    const { items, seconds } = result;
    process.stderr.write(`${mode}: ${(items / seconds).toFixed(1)} items/s\n`);
  };
  try {
    const C = opts.concurrency;
    if (opts.sequential) await run('(a) direct, sequential', direct(1));
    await run(`(b) direct, C=${C}`, direct(C));
    await run(`(c) reapPass on Temporal, C=${C}`, () => temporalPass(store, seedNow, C, opts));
    if (opts.pgbench) {
      const load = startPgbench(opts.adminUrl);
      try {
        await run(`(d) direct, C=${C}, pgbench load`, direct(C));
        await run(`(d) reapPass, C=${C}, pgbench load`, () => temporalPass(store, seedNow, C, opts));
      } finally {
        load.stop();
      }
    }
  } finally {
    await store.close();
    const admin = new pg.Client({ connectionString: opts.adminUrl });
    await admin.connect();
    await admin.query(
      `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(new URL(provisionerUrl).pathname.slice(1))} WITH (FORCE)`,
    );
    await admin.end();
  }
  const by = (prefix: string) => rows.find((r) => r.mode.startsWith(prefix));
  const [a, b, c] = [by('(a)'), by('(b)')!, by('(c)')!];
  process.stdout.write(`${table(rows)}\n\n`);
  const ratios: Record<string, number> = { 'reapPass / direct at the same C': c.perSecond / b.perSecond };
  if (a) ratios['reapPass / direct sequential'] = c.perSecond / a.perSecond;
  const d = rows.filter((r) => r.mode.startsWith('(d)'));
  if (d.length === 2) ratios['under pgbench load: reapPass / direct'] = d[1]!.perSecond / d[0]!.perSecond;
  for (const [k, v] of Object.entries(ratios)) process.stdout.write(`${k} = ${v.toFixed(2)}\n`);
  writeJson(opts.json, {
    bench: 'reap-throughput',
    label: opts.label,
    at: new Date().toISOString(),
    command: process.argv.slice(2).join(' '),
    workerOptions: benchWorkerOptions(),
    machine: { ...loadBefore, loadavgAfter: machine().loadavg },
    rows,
    ratios,
  });
  process.exit(0);
}

async function dropProvisionerDatabase(adminUrl: string, provisionerUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(
    `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(new URL(provisionerUrl).pathname.slice(1))} WITH (FORCE)`,
  );
  await admin.end();
}

async function backlogMain(store: PoolStore, opts: Options, provisionerUrl: string): Promise<void> {
  const o = {
    backlog: opts.backlog ?? 5000,
    concurrency: opts.concurrency,
    clusterConcurrency: opts.clusterConcurrency ?? opts.concurrency,
    batchLimit: opts.batchLimit,
    redisShare: opts.redisShare,
    adminUrl: opts.adminUrl,
    adminUrl2: opts.adminUrl2,
    redisUrl: opts.redisUrl,
    provisionerUrl,
  };
  const load = machine();
  let direct: Awaited<ReturnType<typeof directBacklog>>;
  let temporal: Awaited<ReturnType<typeof temporalBacklog>>;
  try {
    direct = await directBacklog(store, o);
    process.stderr.write(`${direct.mode}: ${direct.perSecond.toFixed(1)} items/s\n`);
    temporal = await temporalBacklog(store, o);
    process.stderr.write(`${temporal.mode}: ${temporal.perSecond.toFixed(1)} items/s\n`);
  } finally {
    await store.close();
    await dropProvisionerDatabase(opts.adminUrl, provisionerUrl);
  }
  const ratio = temporal.perSecond / direct.perSecond;
  const table = backlogTable(o.backlog, direct, temporal, ratio);
  process.stdout.write(
    `${JSON.stringify({ direct, temporal }, null, 2)}\n\n${table}\nbacklog ${o.backlog}: ticker / direct = ${ratio.toFixed(2)}\n`,
  );
  const result = {
    bench: 'reap-throughput --backlog',
    label: opts.label,
    at: new Date().toISOString(),
    command: process.argv.slice(2).join(' '),
    workerOptions: benchWorkerOptions(),
    machine: { ...load, loadavgAfter: machine().loadavg },
    options: {
      ...o,
      adminUrl: undefined,
      adminUrl2: undefined,
      redisUrl: undefined,
      provisionerUrl: undefined,
    },
    direct,
    temporal,
    ratios: { 'ticker / direct over the same clusters': ratio },
    table,
  };
  // Operators always find the run under artifacts/ (a JSON and its table); --json keeps a copy
  // elsewhere (bench/results/ for the figures the docs quote).
  const artifact = `artifacts/bench/backlog-${o.backlog}.json`;
  writeJson(artifact, result);
  writeFileSync(artifact.replace(/\.json$/, '.md'), `${table}\n`);
  if (!opts.json.endsWith('reap-throughput.json')) writeJson(opts.json, result);
  process.exit(0);
}

type DirectBacklog = Awaited<ReturnType<typeof directBacklog>>;
type TemporalBacklog = Awaited<ReturnType<typeof temporalBacklog>>;

/** The backlog run as a markdown table: both drains, and what the issue asks of the ticker's. */
function backlogTable(n: number, d: DirectBacklog, t: TemporalBacklog, ratio: number): string {
  const s = (ms: number | undefined) => (ms === undefined ? '' : (ms / 1000).toFixed(1));
  const load = (l: { min: number; mean: number; max: number }) =>
    `${l.min.toFixed(1)}–${l.max.toFixed(1)} (mean ${l.mean.toFixed(1)})`;
  const rss = t.rssAtReaped.map((r) => `${r.reaped}: ${r.rssMiB}`).join(', ');
  return [
    `Backlog of ${n} items over two Postgres clusters and Redis`,
    '',
    '| drain | items/s | seconds | worker CPU ms/item | peak RSS MiB | first / last reap (s) | load average (1 min) during the drain |',
    '|---|---:|---:|---:|---:|---|---|',
    `| ${d.mode} | ${d.perSecond.toFixed(1)} | ${d.seconds.toFixed(0)} | ${d.cpuMsPerItem.toFixed(1)} | ${d.peakRssMiB} | ${s(d.firstReapMs)} / ${s(d.lastReapMs)} | ${load(d.loadDuringRun)} |`,
    `| ${t.mode} | ${t.perSecond.toFixed(1)} | ${t.seconds.toFixed(0)} | ${t.workerCpuMsPerItem.toFixed(1)} | ${t.peakRssMiB} | ${s(t.firstReapMs)} / ${s(t.lastReapMs)} | ${load(t.loadDuringRun)} |`,
    '',
    `- ticker / direct: ${ratio.toFixed(2)}`,
    `- passes: ${t.passes}; events per item over every workflow: ${t.eventsPerItem.toFixed(2)}; history bytes per item: ${t.historyBytesPerItem.toFixed(0)}`,
    `- largest pass history: ${t.largestPass.events} events, ${(t.largestPass.bytes / 1024).toFixed(0)} KiB (${t.largestPass.workflowId})`,
    `- worker RSS (MiB) after N items reaped: ${rss}`,
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
