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
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import pg from 'pg';
import { createActivities } from '../activities';
import { DEFAULT_CLUSTER, ENV_DEFAULTS } from '../src/config';
import { mapWithConcurrency, type SeededItem, seedItems } from '../src/dev/seed';
import { findTemporalCli } from '../src/dev/temporal-cli';
import { startDevServer } from '../src/dev/temporal-server';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/metrics';
import type { PoolItemRef } from '../src/shared/types';
import { ensureDatabase, migrate } from '../src/store/migrate';
import { PoolStore } from '../src/store/pool-store';
import { createTeardownRegistry } from '../src/teardown';
import { reapPass } from '../workflows/reap-pass';

interface Options {
  postgres: number;
  redis: number;
  concurrency: number;
  pgbench: boolean;
  adminUrl: string;
  redisUrl: string;
}

interface Row {
  mode: string;
  items: number;
  seconds: number;
  perSecond: number;
  eventsPerItem?: number;
}

const log = createLogger({ level: 'silent' });
const EAGER = process.env['BENCH_EAGER'] !== '0';

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
) {
  const { NativeConnection, Worker, Runtime, DefaultLogger } = await import('@temporalio/worker');
  const { Client, Connection } = await import('@temporalio/client');
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed by an earlier mode
  }
  const server = await startDevServer({
    cliPath: await findTemporalCli(),
    uiPort: false,
    // BENCH_EAGER=0 measures a server without eager activity dispatch (the server's default).
    dynamicConfig: { 'system.enableActivityEagerExecution': EAGER },
  });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const registry = createTeardownRegistry({
    postgresClusters: new Map([[DEFAULT_CLUSTER, opts.adminUrl]]),
    redisClusters: new Map([[DEFAULT_CLUSTER, opts.redisUrl]]),
    concurrency,
    log,
  });
  const taskQueue = `bench-${Date.now()}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('../workflows'),
    activities: createActivities({
      store,
      teardown: registry,
      settings: {
        failedGraceMs: 600_000,
        stuckAssignedGraceMs: 1_800_000,
        batchLimit: opts.postgres + opts.redis,
        quarantineAfter: 3,
      },
      metrics: createMetrics(undefined, { defaultMetrics: false }),
      log,
    }),
    maxConcurrentActivityTaskExecutions: concurrency * 2 + 4,
  });
  try {
    return await worker.runUntil(async () => {
      // Warm up: the first workflow task pays for the sandbox; the original reaper had no such cost.
      await client.workflow.execute(reapPass, {
        taskQueue,
        workflowId: `${taskQueue}-warmup`,
        args: [{ concurrency }],
      });
      const items = await seedNow();
      const cpuBefore = cpuSeconds(server.process.pid);
      const selfBefore = process.cpuUsage();
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
      return { seconds, eventsPerItem: events / items.length, items: items.length };
    });
  } finally {
    await registry.close();
    await connection.close();
    await nativeConnection.close();
    await server.stop();
  }
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

function table(rows: Row[]): string {
  const header = '| mode | items | seconds | items/s | history events/item |\n|---|---:|---:|---:|---:|';
  const lines = rows.map(
    (r) =>
      `| ${r.mode} | ${r.items} | ${r.seconds.toFixed(2)} | ${r.perSecond.toFixed(1)} | ${r.eventsPerItem?.toFixed(2) ?? ''} |`,
  );
  return [header, ...lines].join('\n');
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
    .parse();
  const opts = program.opts<Options>();
  const provisionerUrl = databaseUrl(opts.adminUrl, `pool_reaper_bench_${process.pid}`);
  await ensureDatabase(provisionerUrl);
  await migrate(provisionerUrl);
  const store = PoolStore.connect(provisionerUrl, opts.concurrency * 2 + 8);
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
    process.stderr.write(
      `  CPU of the direct loop's process: ${((used.user + used.system) / 1e6).toFixed(2)} s\n`,
    );
    return { seconds, items: items.length };
  };
  const run = async (
    mode: string,
    fn: () => Promise<{ seconds: number; items: number; eventsPerItem?: number }>,
  ) => {
    const { seconds, eventsPerItem, items } = await fn();
    rows.push({
      mode,
      items,
      seconds,
      perSecond: items / seconds,
      ...(eventsPerItem ? { eventsPerItem } : {}),
    });
    process.stderr.write(`${mode}: ${(items / seconds).toFixed(1)} items/s\n`);
  };
  try {
    const C = opts.concurrency;
    await run('(a) direct, sequential', direct(1));
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
  const by = (prefix: string) => rows.find((r) => r.mode.startsWith(prefix))!;
  const [a, b, c] = [by('(a)'), by('(b)'), by('(c)')];
  process.stdout.write(`${table(rows)}\n\n`);
  process.stdout.write(
    `(c)/(b) = ${(c.perSecond / b.perSecond).toFixed(2)}   (c)/(a) = ${(c.perSecond / a.perSecond).toFixed(2)}\n`,
  );
  const d = rows.filter((r) => r.mode.startsWith('(d)'));
  if (d.length === 2)
    process.stdout.write(`under load: reapPass/direct = ${(d[1]!.perSecond / d[0]!.perSecond).toFixed(2)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
