import type { Command } from 'commander';
import { createLogger } from '../logger';
import { handOverReaperObjects } from '../store/hand-over';
import { ensureDatabase, migrate } from '../store/migrate';
import { temporalTarget } from '../temporal-connection';
import { config, operatorLogger } from './common';

/** `worker` and `migrate`: running the reaper and preparing its database. */
export function addProcessCommands(program: Command): void {
  program
    .command('worker')
    .description('run the worker: poll the task queue, serve /metrics, keep the ticker running')
    .action(async () => {
      const cfg = config();
      const log = createLogger({ level: cfg.logLevel });
      const target = temporalTarget();
      // Loaded here, not at the top: only this command needs the SDK's worker and its native
      // bridge, and every other command starts 0.1–0.2 s sooner without them. The `.js`:
      // in the built CommonJS this stays a real import(), which resolves file names exactly.
      const { startWorker } = await import('../worker.js');
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
      // MIGRATE_DATABASE_URL: the role that owns pool_items (see deploy/postgres), when the worker's does not.
      const url = cfg.migrateDatabaseUrl ?? cfg.provisionerDatabaseUrl;
      if (opts.createDatabase && (await ensureDatabase(url))) {
        log.info({ event: 'pool_reaper.database.created' }, 'provisioner database created');
      }
      const result = await migrate(url, log);
      const worker = decodeURIComponent(new URL(cfg.provisionerDatabaseUrl).username);
      if (cfg.migrateDatabaseUrl && worker !== '') await handOverReaperObjects(url, worker, log);
      process.stdout.write(
        `schema at version ${result.current}${result.applied.length ? ` (applied ${result.applied.join(', ')})` : ' (up to date)'}\n`,
      );
    });
}
