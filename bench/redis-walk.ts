/**
 * Issue 18 item 5: what Redis teardowns cost a big shared keyspace, per-item walk (main before
 * the change: SCAN MATCH <token>:* COUNT 500 + UNLINK, then a confirming full SCAN, per item)
 * against the shared keyspace walk (one SCAN loop per cluster for all concurrent teardowns).
 * Run it against a Redis of its own, never the shared test Redis: it FLUSHALLs and loads
 * millions of keys (DEBUG POPULATE, so the server needs `--enable-debug-command local`).
 *
 *   redis-server --port 6390 --save "" --appendonly no --daemonize yes --enable-debug-command local
 *   flock /work/.locks/bench node dist/bench/redis-walk.js --url redis://127.0.0.1:6390 \
 *     [--unrelated 5000000] [--pass-items 10] [--out bench/results/redis-walk.json]
 *
 * Per scenario: wall time, the server's SCAN and UNLINK calls (INFO commandstats delta), its CPU
 * (INFO cpu used_cpu_user+sys delta), and a probe client's PING latency (every 10 ms) meanwhile.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import Redis from 'ioredis';
import { mapWithConcurrency } from '../src/dev/seed';
import { createLogger } from '../src/logger';
import type { PoolItemRef } from '../src/shared/types';
import { createRedisBackend } from '../src/teardown';
import { createLegacyRedisBackend } from './lib/legacy-redis-teardown';

interface Stats {
  scans: number;
  unlinks: number;
  cpuSeconds: number;
}

async function serverStats(redis: Redis): Promise<Stats> {
  const commandstats = String(await redis.info('commandstats'));
  const calls = (name: string) =>
    Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(commandstats)?.[1] ?? 0);
  const cpu = String(await redis.info('cpu'));
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
  return {
    scans: calls('scan'),
    unlinks: calls('unlink'),
    cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
  };
}

/** PINGs every 10 ms from its own connection until stopped: what a customer command waits meanwhile. */
function latencyProbe(url: string) {
  const probe = new Redis(url);
  const samples: number[] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const start = process.hrtime.bigint();
      await probe.ping();
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      probe.disconnect();
      const sorted = [...samples].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      return {
        samples: sorted.length,
        p50Ms: +at(0.5).toFixed(2),
        p99Ms: +at(0.99).toFixed(2),
        maxMs: +(sorted[sorted.length - 1] ?? 0).toFixed(2),
      };
    },
  };
}

const load = () => os.loadavg().map((v) => +v.toFixed(2));

async function main(): Promise<void> {
  const opts = new Command()
    .option('--url <url>', 'a Redis of its own (flushed!)', 'redis://127.0.0.1:6390')
    .option('--unrelated <n>', 'unrelated keys beside the items', (v) => Number(v), 5_000_000)
    .option('--pass-items <n>', 'items in the pass scenario', (v) => Number(v), 10)
    .option('--big <n>', 'keys of the big item', (v) => Number(v), 1_000_000)
    .option('--only <list>', 'comma-separated scenario groups: single,big,pass,naive,pause', '')
    .option('--out <file>', 'results JSON', 'bench/results/redis-walk.json')
    .parse()
    .opts<{ url: string; unrelated: number; passItems: number; big: number; only: string; out: string }>();
  const url = new URL(opts.url);
  if (url.port === '' || url.port === '6379') throw new Error('refusing to flush the shared Redis on 6379');
  const only = new Set(opts.only.split(',').filter(Boolean));
  const want = (group: string) => only.size === 0 || only.has(group);
  const admin = new Redis(opts.url);
  const log = createLogger({ level: 'silent' });
  const clusters = new Map([['local:0', opts.url]]);
  const rows: Record<string, unknown>[] = [];

  let unrelatedNow = -1;
  async function keyspace(unrelated: number): Promise<void> {
    if (unrelatedNow === unrelated) return;
    await admin.flushall();
    if (unrelated > 0) await admin.call('DEBUG', 'POPULATE', String(unrelated), 'cust', '16');
    unrelatedNow = unrelated;
  }
  async function seedItem(keys: number): Promise<PoolItemRef> {
    const token = `pool-${randomUUID()}`;
    await admin.call('ACL', 'SETUSER', `usr_${token}`, 'on', `>${randomUUID()}`, `~${token}:*`, '+@all');
    // DEBUG POPULATE names its keys <prefix>:<n>: exactly the item's `<token>:*`.
    if (keys > 0) await admin.call('DEBUG', 'POPULATE', String(keys), token, '16');
    return { id: randomUUID(), resourceType: 'redis', poolToken: token, providerResourceId: 'local:0' };
  }

  type Mode = 'per-item' | 'shared';
  async function run(
    scenario: string,
    mode: Mode,
    items: PoolItemRef[],
    extra: {
      concurrency?: number;
      scanPauseMs?: number;
      scanCount?: number;
      unrelated: number;
      itemKeys: number;
    },
  ): Promise<void> {
    const concurrency = extra.concurrency ?? items.length;
    const backend =
      mode === 'per-item'
        ? createLegacyRedisBackend({ clusters, log, commandTimeoutMs: 120_000 })
        : createRedisBackend({
            clusters,
            log,
            commandTimeoutMs: 120_000,
            scanPauseMs: extra.scanPauseMs ?? 1,
            ...(extra.scanCount !== undefined ? { scanCount: extra.scanCount } : {}),
          });
    const before = await serverStats(admin);
    const loadBefore = load();
    const probe = latencyProbe(opts.url);
    const start = performance.now();
    const results = await mapWithConcurrency(items, concurrency, (item) => backend.teardown(item));
    const seconds = (performance.now() - start) / 1000;
    const latency = await probe.stop();
    const after = await serverStats(admin);
    await backend.close();
    const freed = results.every((r) => r.confirmedFreed);
    const row = {
      scenario,
      mode,
      items: items.length,
      itemKeys: extra.itemKeys,
      unrelatedKeys: extra.unrelated,
      concurrency,
      scanCount: mode === 'per-item' ? 500 : (extra.scanCount ?? 1000),
      scanPauseMs: mode === 'per-item' ? 0 : (extra.scanPauseMs ?? 1),
      seconds: +seconds.toFixed(3),
      scanCalls: after.scans - before.scans,
      unlinkCalls: after.unlinks - before.unlinks,
      redisCpuSeconds: +(after.cpuSeconds - before.cpuSeconds).toFixed(3),
      probe: latency,
      allConfirmedFreed: freed,
      loadAverage: loadBefore,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }

  // 1. One item of 100 keys, beside 0 and N unrelated keys.
  if (want('single')) {
    for (const unrelated of [0, opts.unrelated]) {
      await keyspace(unrelated);
      for (const mode of ['per-item', 'shared'] as const) {
        await run('one item, 100 keys', mode, [await seedItem(100)], { unrelated, itemKeys: 100 });
      }
    }
  }
  // 2. One item of 1M keys, beside 0 and N unrelated keys.
  if (want('big')) {
    for (const unrelated of [0, opts.unrelated]) {
      await keyspace(unrelated);
      for (const mode of ['per-item', 'shared'] as const) {
        await run(`one item, ${opts.big} keys`, mode, [await seedItem(opts.big)], {
          unrelated,
          itemKeys: opts.big,
        });
      }
    }
  }
  // 3. A pass: 10 items of 100 keys beside N unrelated keys, 4 at once (REAPER_CLUSTER_CONCURRENCY).
  if (want('pass')) {
    await keyspace(opts.unrelated);
    for (const mode of ['per-item', 'shared'] as const) {
      const items = [];
      for (let i = 0; i < opts.passItems; i++) items.push(await seedItem(100));
      await run(`pass of ${opts.passItems} items, 100 keys each, 4 at once`, mode, items, {
        concurrency: 4,
        unrelated: opts.unrelated,
        itemKeys: 100,
      });
    }
    const items = [];
    for (let i = 0; i < opts.passItems; i++) items.push(await seedItem(100));
    await run(`pass of ${opts.passItems} items, 100 keys each, all at once`, 'shared', items, {
      unrelated: opts.unrelated,
      itemKeys: 100,
    });
  }
  // 4. The pause and COUNT levers: one item of 100 keys beside N, shared walk.
  if (want('pause')) {
    await keyspace(opts.unrelated);
    for (const [scanCount, scanPauseMs] of [
      [1000, 0],
      [1000, 1],
      [5000, 0],
      [5000, 1],
    ] as const) {
      await run(
        `one item, 100 keys, COUNT ${scanCount}, pause ${scanPauseMs} ms`,
        'shared',
        [await seedItem(100)],
        {
          unrelated: opts.unrelated,
          itemKeys: 100,
          scanCount,
          scanPauseMs,
        },
      );
    }
  }
  // 5. The naive shell baseline for the big item: redis-cli --scan --pattern | xargs redis-cli unlink.
  if (want('naive')) {
    await keyspace(opts.unrelated);
    const item = await seedItem(opts.big);
    const before = await serverStats(admin);
    const loadBefore = load();
    const probe = latencyProbe(opts.url);
    const start = performance.now();
    const port = url.port;
    // Asynchronously, so that the latency probe keeps running meanwhile.
    await promisify(execFile)('bash', [
      '-c',
      `redis-cli -p ${port} --scan --pattern '${item.poolToken}:*' | xargs -r -n 1000 redis-cli -p ${port} unlink > /dev/null`,
    ]);
    const seconds = (performance.now() - start) / 1000;
    const latency = await probe.stop();
    const after = await serverStats(admin);
    const left = (await admin.scan('0', 'MATCH', `${item.poolToken}:*`, 'COUNT', 1000))[1].length;
    const row = {
      scenario: `one item, ${opts.big} keys`,
      mode: 'naive redis-cli --scan | xargs redis-cli unlink',
      items: 1,
      itemKeys: opts.big,
      unrelatedKeys: opts.unrelated,
      seconds: +seconds.toFixed(3),
      scanCalls: after.scans - before.scans,
      unlinkCalls: after.unlinks - before.unlinks,
      redisCpuSeconds: +(after.cpuSeconds - before.cpuSeconds).toFixed(3),
      probe: latency,
      keysLeftInFirstScanStep: left,
      loadAverage: loadBefore,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }

  await admin.flushall();
  admin.disconnect();
  const server = new Redis(opts.url);
  const version = /redis_version:(\S+)/.exec(String(await server.info('server')))?.[1];
  server.disconnect();
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(
    opts.out,
    `${JSON.stringify(
      {
        bench: 'redis-walk',
        issue: '18 item 5',
        at: new Date().toISOString(),
        host: { cpus: os.cpus().length, loadAverageAtEnd: load(), redis: version },
        rows,
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
