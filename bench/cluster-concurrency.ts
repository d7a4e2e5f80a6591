/**
 * How many teardowns at once one PostgreSQL cluster takes well: the measurement behind
 * REAPER_CLUSTER_CONCURRENCY's default. Direct teardowns (no Temporal), N fresh items per
 * level, each level in one run on one machine; prints items/s per level and writes
 * artifacts/bench/cluster-concurrency.json.
 *
 *   node dist/bench/cluster-concurrency.js [--items 48] [--levels 1,2,4,8,16] [--admin-url URL]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Command } from 'commander';
import { ENV_DEFAULTS } from '../src/config';
import { mapWithConcurrency, seedItems } from '../src/dev/seed';
import { createLogger } from '../src/logger';
import { ensureDatabase, migrate } from '../src/store/migrate';
import { PoolStore } from '../src/store/pool-store';
import { createTeardownRegistry } from '../src/teardown';

async function main(): Promise<void> {
  const opts = new Command()
    .option('--items <n>', 'items per level', (v) => Number(v), 48)
    .option('--levels <list>', 'concurrency levels', '1,2,4,8,16')
    .option('--admin-url <url>', 'the cluster', ENV_DEFAULTS.POSTGRES_ADMIN_URL)
    .parse()
    .opts<{ items: number; levels: string; adminUrl: string }>();
  const levels = opts.levels.split(',').map(Number);
  const url = new URL(opts.adminUrl);
  url.pathname = '/pool_reaper_bench_cc';
  await ensureDatabase(url.toString());
  await migrate(url.toString());
  const store = PoolStore.connect(url.toString(), 8);
  const log = createLogger({ level: 'silent' });
  const rows: { concurrency: number; items: number; seconds: number; perSecond: number }[] = [];
  try {
    for (const concurrency of levels) {
      const items = await seedItems({
        provisionerPool: store.pool,
        adminUrl: opts.adminUrl,
        redisUrl: ENV_DEFAULTS.REDIS_URL,
        count: opts.items,
        resourceType: 'postgres',
        status: 'failed',
        ageMs: 3_600_000,
        concurrency: 8,
      });
      await store.pool.query('CHECKPOINT').catch(() => undefined);
      const registry = createTeardownRegistry({
        postgresClusters: new Map([['local:0', opts.adminUrl]]),
        redisClusters: new Map(),
        concurrency,
        log,
      });
      const started = process.hrtime.bigint();
      await mapWithConcurrency(items, concurrency, (item) => registry.teardown(item));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      await registry.close();
      await store.pool.query('DELETE FROM pool_items');
      rows.push({ concurrency, items: items.length, seconds, perSecond: items.length / seconds });
      console.log(
        `C=${concurrency}: ${items.length} items in ${seconds.toFixed(2)} s = ${(items.length / seconds).toFixed(1)} items/s`,
      );
    }
  } finally {
    await store.close();
  }
  mkdirSync('artifacts/bench', { recursive: true });
  const out = {
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30) },
    rows,
  };
  writeFileSync('artifacts/bench/cluster-concurrency.json', `${JSON.stringify(out, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
