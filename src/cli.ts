import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { CommandExit } from './cli/command-exit';
import { registerPlanCommands } from './cli/plan';
import { PassFailedError, ReaperClient, ReaperRequestRefusedError, TickerNotRunningError } from './client';
import { ConfigError, loadConfig, parseDuration, type ReaperConfig } from './config';
import { createLogger } from './logger';
import { formatDuration, formatStatus, formatSummary } from './operator-format';
import { seedFromCli } from './provision/seed-cli';
import { ensureDatabase, migrate, SchemaOutdatedError } from './store/migrate';
import { PoolStore } from './store/pool-store';
import { connectClient, TemporalUnreachableError, temporalTarget } from './temporal-connection';
import { workflowUrl } from './ui-links';
import { ProvisionerUnreachableError, startWorker } from './worker';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  failed: 1,
  /** Bad usage or configuration, or a provisioner database that is missing or not migrated. */
  usage: 2,
  temporalUnreachable: 3,
  /** No ticker runs (never started, or closed: failed, terminated). */
  tickerNotRunning: 4,
  refused: 5,
  /** The pass `reap-now --wait` waited for had errors, could not list, or failed. */
  passErrors: 6,
  /** The provisioner database did not answer (worker start-up). */
  databaseUnreachable: 7,
} as const;

class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Operator commands keep stdout for their answer; their log lines (audit included) go to stderr. */
function operatorLogger(cfg: ReaperConfig) {
  return createLogger({ level: cfg.logLevel }, pino.destination({ dest: 2, sync: true }));
}

function config(): ReaperConfig {
  return loadConfig();
}

async function reaperClient(cfg: ReaperConfig): Promise<ReaperClient> {
  const client = await connectClient(temporalTarget());
  return new ReaperClient(client, cfg.tickerWorkflowId);
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${raw}"`);
  return n;
}

function duration(raw: string): number {
  try {
    return parseDuration('--age', raw);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function buildProgram(): Command {
  const program = new Command('pool-reaper')
    .description('Tear down leaked hot-pool infrastructure on Temporal, with every teardown audited.')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('worker')
    .description('run the worker: poll the task queue, serve /metrics, keep the ticker running')
    .action(async () => {
      const cfg = config();
      const log = createLogger({ level: cfg.logLevel });
      const target = temporalTarget();
      const running = await startWorker(cfg, target, log);
      log.info(
        {
          event: 'pool_reaper.worker.started',
          temporal: target.address,
          namespace: target.namespace,
          taskQueue: cfg.taskQueue,
          metrics: `http://localhost:${running.metricsServer.port}/metrics`,
          temporalMetrics: cfg.temporalMetricsPort
            ? `http://localhost:${cfg.temporalMetricsPort}/metrics`
            : undefined,
        },
        'pool-reaper worker started',
      );
      await running.done;
    });

  program
    .command('migrate')
    .description('apply the schema (pool_items if absent, the reaper index and tables)')
    .option('--create-database', 'create the provisioner database first if it does not exist')
    .action(async (opts: { createDatabase?: boolean }) => {
      const cfg = config();
      const log = operatorLogger(cfg);
      if (opts.createDatabase && (await ensureDatabase(cfg.provisionerDatabaseUrl))) {
        log.info({ event: 'pool_reaper.database.created' }, 'provisioner database created');
      }
      const result = await migrate(cfg.provisionerDatabaseUrl, log);
      process.stdout.write(
        `schema at version ${result.current}${result.applied.length ? ` (applied ${result.applied.join(', ')})` : ' (up to date)'}\n`,
      );
    });

  program
    .command('seed')
    .description('provision real pool items the way the provisioner does (for demos, tests, benchmarks)')
    .option('-t, --type <type>', 'postgres, redis, queue or mongodb', 'postgres')
    .option('-n, --count <n>', 'how many items', positiveInt, 1)
    .option('-s, --status <status>', 'ready, assigned or failed', 'failed')
    .option('-a, --age <duration>', 'how long ago they were assigned/failed, e.g. 1h', duration, 3_600_000)
    .option('-c, --concurrency <n>', 'items provisioned at once', positiveInt, 8)
    .option('--json', 'print the created items as JSON')
    .action(
      async (opts: {
        type: string;
        count: number;
        status: string;
        age: number;
        concurrency: number;
        json?: boolean;
      }) => {
        const cfg = config();
        await seedFromCli(cfg, opts);
      },
    );

  program
    .command('reap-now')
    .description('force a pass as soon as the current one (if any) finishes')
    .option('-w, --wait', 'wait for the pass and print its summary (shows progress on a terminal)')
    .option('--json', 'machine-readable output, no progress')
    .action(async (opts: { wait?: boolean; json?: boolean }) => {
      const cfg = config();
      const reaper = await reaperClient(cfg);
      const request = { requestedBy: `cli:${process.env['USER'] ?? 'unknown'}` };
      if (!opts.wait) {
        await reaper.reapNow(request);
        print(
          !!opts.json,
          { requested: true },
          'reapNow sent: a pass starts as soon as the current one (if any) ends',
        );
        return;
      }
      const stopProgress = opts.json || !process.stderr.isTTY ? () => {} : showProgress(reaper);
      try {
        const summary = await reaper.reapNowAndWait(request);
        stopProgress();
        const url = workflowUrl(cfg.temporalUiUrl, temporalTarget().namespace, summary.passId);
        print(!!opts.json, summary, `${formatSummary(summary)}\n  ${url}`);
        const errors = summary.deprovisionErrors + summary.deleteErrors;
        if (summary.aborted) throw new CliExit(EXIT.passErrors, `pass ${summary.passId} could not list`);
        if (errors > 0) throw new CliExit(EXIT.passErrors, `pass ${summary.passId} had ${errors} error(s)`);
      } finally {
        stopProgress();
      }
    });

  program
    .command('status')
    .description("show the ticker's state: paused, passes run, last summary, next tick")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const reaper = await reaperClient(config());
      const status = await reaper.status();
      print(!!opts.json, status, formatStatus(status));
    });

  program
    .command('pause')
    .description('stop ticks and forced passes until resume (a running pass finishes)')
    .option('-r, --reason <reason>', 'shown in the Temporal UI and in status')
    .action(async (opts: { reason?: string }) => {
      const reaper = await reaperClient(config());
      await reaper.pause(opts.reason ? { reason: opts.reason } : {});
      process.stdout.write(`paused${opts.reason ? `: ${opts.reason}` : ''}\n`);
    });

  program
    .command('resume')
    .description('resume ticks; a reapNow sent while paused runs at once')
    .option('-r, --reason <reason>', 'shown in the Temporal UI')
    .action(async (opts: { reason?: string }) => {
      const reaper = await reaperClient(config());
      await reaper.resume(opts.reason ? { reason: opts.reason } : {});
      process.stdout.write('resumed\n');
    });

  const quarantine = program
    .command('quarantine')
    .description('items left out of passes after repeated refusals');
  quarantine
    .command('list')
    .option('--all', 'include items with failures below the quarantine threshold, and deferred items')
    .option('--json', 'machine-readable output')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const cfg = config();
      const store = PoolStore.connect(cfg.provisionerDatabaseUrl, 1);
      try {
        const rows = await store.listFailures({ quarantinedOnly: !opts.all });
        const text =
          rows.length === 0
            ? 'no quarantined items'
            : rows
                .map(
                  (r) =>
                    `${r.itemId}  ${r.resourceType.padEnd(8)} ${r.poolToken || '(empty token)'}  failures=${r.failures}` +
                    `  ${r.quarantinedAt ? `quarantined ${formatDuration(Date.now() - r.quarantinedAt.getTime())} ago` : 'not quarantined'}` +
                    `${r.nextAttemptAt && r.nextAttemptAt.getTime() > Date.now() ? `  deferred (${r.deferrals}x) until ${r.nextAttemptAt.toISOString()}` : ''}` +
                    `${r.rowExists ? '' : '  (row gone)'}\n    ${r.lastErrorType}: ${r.lastError}`,
                )
                .join('\n');
        print(!!opts.json, rows, text);
      } finally {
        await store.close();
      }
    });
  quarantine
    .command('release')
    .description('let the next pass try these items again')
    .argument('[idOrToken]', 'an item id (uuid) or pool token')
    .option('--all', 'release every quarantined item')
    .action(async (idOrToken: string | undefined, opts: { all?: boolean }) => {
      if (!idOrToken && !opts.all)
        throw new CliExit(EXIT.usage, 'quarantine release: give an item id or pool token, or --all');
      const cfg = config();
      const log = operatorLogger(cfg);
      const store = PoolStore.connect(cfg.provisionerDatabaseUrl, 1);
      try {
        const selector = opts.all
          ? ({ all: true } as const)
          : /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrToken!)
            ? { itemId: idOrToken! }
            : { poolToken: idOrToken! };
        const released = await store.releaseQuarantine(selector);
        for (const r of released) {
          log.info(
            {
              event: 'pool_reaper.quarantine.released',
              itemId: r.itemId,
              poolToken: r.poolToken,
              by: process.env['USER'],
            },
            'quarantine released',
          );
        }
        if (released.length === 0) throw new CliExit(EXIT.failed, 'no quarantined item matched');
        process.stdout.write(`released ${released.length} item(s)\n`);
      } finally {
        await store.close();
      }
    });

  registerPlanCommands(program);
  return program;
}

/** Polls the running pass's current details and redraws one status line on stderr. */
function showProgress(reaper: ReaperClient): () => void {
  let stopped = false;
  let last = '';
  const tick = async () => {
    while (!stopped) {
      try {
        const status = await reaper.status();
        const details = status.currentPassId ? await reaper.passDetails(status.currentPassId) : undefined;
        const line = status.currentPassId
          ? `${status.currentPassId}: ${(details ?? 'starting').replace(/\*\*/g, '')}`
          : status.paused
            ? 'paused'
            : 'waiting for the pass to start';
        if (line !== last) process.stderr.write(`\r\x1b[2K${line}`);
        last = line;
      } catch {
        // Progress is best effort; the update's answer is what counts.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  void tick();
  return () => {
    if (!stopped && last) process.stderr.write('\r\x1b[2K');
    stopped = true;
  };
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CliExit || err instanceof CommandExit) return err.code;
  if (err instanceof ConfigError || (err as Error)?.name === 'SeedUsageError') return EXIT.usage;
  if (err instanceof TemporalUnreachableError) return EXIT.temporalUnreachable;
  if (err instanceof TickerNotRunningError) return EXIT.tickerNotRunning;
  if (err instanceof ReaperRequestRefusedError) return EXIT.refused;
  if (err instanceof PassFailedError) return EXIT.passErrors;
  if (err instanceof SchemaOutdatedError) return EXIT.usage;
  if (err instanceof ProvisionerUnreachableError) return EXIT.databaseUnreachable;
  return EXIT.failed;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // Help and version are successes; commander already printed usage errors.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? EXIT.ok : EXIT.usage;
    }
    const line = `pool-reaper: ${(e.message ?? String(err)).split('\n')[0]}`;
    process.stderr.write(`${line}\n`);
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}
