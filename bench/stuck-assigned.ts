/**
 * The stuck-assigned report with a million bound items (not a test): what one pass costs, from
 * an empty reaper table until every item is classified, then in steady state.
 *
 * Seeds, with plain SQL generate_series, a scratch provisioner database (pool_items: N bound
 * assigned rows two days old, plus a few orphans) and a scratch platform database (resources:
 * one live binding per bound item, plus rows that bind nothing), then runs the real
 * reportStuckAssigned activity pass after pass with the production settings (the sweep
 * budget, adapted slice sizes) and times each call. Prints the figures and writes
 * artifacts/bench/stuck-assigned.json; drops both databases unless --keep.
 *
 *   npm run build && npm run bench:stuck-assigned -- [--items 1000000] [--orphans 20] [--steady 12]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { createActivities } from '../activities';
import { STATE_KEYS } from '../activities/deps';
import { ENV_DEFAULTS } from '../src/config';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/metrics';
import { PlatformStore } from '../src/platform/platform-store';
import type { SweepProgress } from '../src/platform/sweep';
import type { StuckAssignedReport } from '../src/shared/types';
import { migrate } from '../src/store/migrate';
import { PoolStore } from '../src/store/pool-store';

interface Options {
  items: number;
  orphans: number;
  steady: number;
  maxPasses: number;
  adminUrl: string;
  keep: boolean;
}

interface PassFigure {
  readonly pass: number;
  readonly ms: number;
  readonly phase: string;
  readonly syncSlices: number;
  readonly scanSlices: number;
  readonly completedSweep: number | null;
  readonly unknown: number;
  readonly orphans: number;
}

const log = createLogger({ level: 'silent' });

function databaseUrl(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The same token for row g in both databases: `pool-<uuid from md5>`. */
const TOKEN = (g: string) => `'pool-' || md5('stuck-bench-' || ${g})::uuid::text`;

async function seedProvisioner(url: string, opts: Options): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query(
      `INSERT INTO pool_items (resource_type, connection_url, provider_resource_id, pool_token, status,
                               created_at, assigned_at)
       SELECT CASE WHEN g % 4 = 0 THEN 'redis' ELSE 'postgres' END, 'postgres://u:bench@h/db', 'local:0',
              ${TOKEN('g')}, 'assigned', now() - interval '3 days',
              now() - interval '2 days' + g * interval '1 millisecond'
         FROM generate_series(1, $1::int + $2::int) AS g`,
      [opts.items, opts.orphans],
    );
    await client.query('ANALYZE pool_items');
  } finally {
    await client.end();
  }
}

async function seedPlatform(url: string, opts: Options): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query(`
      CREATE TABLE resources (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        token uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
        resource_type text NOT NULL,
        status text NOT NULL,
        provider_resource_id text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Rows 1..items are bound; the orphans (items+1..items+orphans) have no binding.
    await client.query(
      `INSERT INTO resources (resource_type, status, provider_resource_id)
       SELECT 'postgres', 'active', 'local:0;pooltok:' || ${TOKEN('g')} FROM generate_series(1, $1::int) AS g`,
      [opts.items],
    );
    // Customer resources that never came from the pool.
    await client.query(
      `INSERT INTO resources (resource_type, status, provider_resource_id)
       SELECT 'redis', 'active', 'dedicated:' || g FROM generate_series(1, $1::int) AS g`,
      [Math.max(1, Math.floor(opts.items / 10))],
    );
    await client.query('ANALYZE resources');
  } finally {
    await client.end();
  }
}

async function main() {
  const program = new Command('bench-stuck-assigned')
    .option('--items <n>', 'bound assigned items', (v) => Number.parseInt(v, 10), 1_000_000)
    .option('--orphans <n>', 'orphaned assigned items', (v) => Number.parseInt(v, 10), 20)
    .option(
      '--steady <n>',
      'steady-state passes to time after the first complete sweep',
      (v) => Number.parseInt(v, 10),
      12,
    )
    .option(
      '--max-passes <n>',
      'give up if the first sweep takes more passes',
      (v) => Number.parseInt(v, 10),
      400,
    )
    .option(
      '--admin-url <url>',
      'Postgres admin URL (the scratch databases are created on this cluster)',
      process.env['POSTGRES_ADMIN_URL'] ?? ENV_DEFAULTS.POSTGRES_ADMIN_URL,
    )
    .option('--keep', 'keep the scratch databases', false)
    .parse();
  const opts = program.opts<Options>();
  const suffix = `${process.pid}_${Date.now().toString(36)}`;
  const provisionerName = `stuck_bench_prov_${suffix}`;
  const platformName = `stuck_bench_plat_${suffix}`;
  const provisionerUrl = databaseUrl(opts.adminUrl, provisionerName);
  const platformUrl = databaseUrl(opts.adminUrl, platformName);

  await admin(opts.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(provisionerName)}`);
  await admin(opts.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(platformName)}`);
  const store = PoolStore.connect(provisionerUrl, 4);
  const platform = PlatformStore.connect(platformUrl, { max: 2 });
  try {
    await migrate(provisionerUrl);
    let t = performance.now();
    process.stderr.write(`seeding ${opts.items} bound + ${opts.orphans} orphaned assigned items…\n`);
    await seedProvisioner(provisionerUrl, opts);
    await seedPlatform(platformUrl, opts);
    const seedSeconds = (performance.now() - t) / 1000;
    process.stderr.write(`  seeded in ${seedSeconds.toFixed(1)} s\n`);

    const { reportStuckAssigned } = createActivities({
      store,
      teardown: {
        preflight: () => undefined,
        teardown: () => Promise.reject(new Error('not in this bench')),
      },
      // The production defaults: a 30 min stuck grace, the default sweep budget and slices.
      settings: {
        failedGraceMs: 600_000,
        stuckAssignedGraceMs: 1_800_000,
        batchLimit: 50,
        quarantineAfter: 3,
      },
      metrics: createMetrics(undefined, { defaultMetrics: false }),
      log,
      platform,
    });
    const figures: PassFigure[] = [];
    const pass = async (): Promise<{ report: StuckAssignedReport; figure: PassFigure }> => {
      const started = performance.now();
      const report = await reportStuckAssigned();
      const ms = performance.now() - started;
      const state = await store.readState<{ sweep: SweepProgress }>(STATE_KEYS.stuckAssigned);
      const sweep = state!.value.sweep;
      const figure: PassFigure = {
        pass: figures.length + 1,
        ms: Math.round(ms),
        phase: sweep.phase,
        syncSlices: sweep.syncSlices,
        scanSlices: sweep.scanSlices,
        completedSweep: sweep.completedSweep,
        unknown: Object.values(report.classes ?? {}).reduce((n, c) => n + c.unknown, 0),
        orphans: report.orphans?.total ?? 0,
      };
      figures.push(figure);
      process.stderr.write(
        `  pass ${figure.pass}: ${figure.ms} ms (${figure.syncSlices} sync, ${figure.scanSlices} scan slices; ` +
          `unknown ${figure.unknown}, orphans ${figure.orphans})\n`,
      );
      if (report.platformCheck?.status === 'failed') {
        throw new Error(`platform check failed: ${JSON.stringify(report.platformCheck)}`);
      }
      return { report, figure };
    };

    t = performance.now();
    let classified: StuckAssignedReport | undefined;
    while (figures.length < opts.maxPasses) {
      const { report, figure } = await pass();
      if (figure.completedSweep !== null) {
        classified = report;
        break;
      }
    }
    if (!classified) throw new Error(`the first sweep did not complete in ${opts.maxPasses} passes`);
    const firstSweepSeconds = (performance.now() - t) / 1000;
    const firstSweep = figures.slice();
    for (let i = 0; i < opts.steady; i++) await pass();
    const steady = figures.slice(firstSweep.length);
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)] ?? 0;
    const bound = Object.values(classified.classes ?? {}).reduce(
      (n, c) => n + c.bound_live + c.bound_terminal,
      0,
    );

    const result = {
      at: new Date().toISOString(),
      items: opts.items,
      orphans: opts.orphans,
      resources: opts.items + Math.max(1, Math.floor(opts.items / 10)),
      seedSeconds: Number(seedSeconds.toFixed(1)),
      firstPassMs: firstSweep[0]?.ms,
      firstSweep: {
        passes: firstSweep.length,
        wallSeconds: Number(firstSweepSeconds.toFixed(1)),
        maxPassMs: Math.max(...firstSweep.map((f) => f.ms)),
        medianPassMs: median(firstSweep.map((f) => f.ms)),
      },
      classified: { bound, orphans: classified.orphans?.total ?? 0, unknown: firstSweep.at(-1)?.unknown },
      steadyState: {
        passes: steady.length,
        medianPassMs: median(steady.map((f) => f.ms)),
        maxPassMs: steady.length ? Math.max(...steady.map((f) => f.ms)) : undefined,
      },
      passes: figures,
    };
    const lines = [
      `stuck-assigned report, ${opts.items} bound + ${opts.orphans} orphaned assigned items, ${result.resources} platform resources`,
      `  first pass:            ${result.firstPassMs} ms`,
      `  first complete sweep:  ${result.firstSweep.passes} passes, ${result.firstSweep.wallSeconds} s of report time, ` +
        `slowest pass ${result.firstSweep.maxPassMs} ms, median ${result.firstSweep.medianPassMs} ms`,
      `  classified:            ${bound} bound, ${result.classified.orphans} orphans, ${result.classified.unknown} unknown`,
      `  steady state:          median ${result.steadyState.medianPassMs} ms, slowest ${result.steadyState.maxPassMs} ms ` +
        `over ${steady.length} passes`,
    ];
    console.log(lines.join('\n'));
    const dir = path.resolve(process.cwd(), 'artifacts', 'bench');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'stuck-assigned.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stderr.write(`wrote ${path.join(dir, 'stuck-assigned.json')}\n`);
  } finally {
    await store.close();
    await platform.close();
    if (!opts.keep) {
      for (const name of [provisionerName, platformName]) {
        await admin(opts.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      }
    } else {
      process.stderr.write(`kept ${provisionerUrl} and ${platformUrl}\n`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
