import type { Command } from 'commander';
import { createLogger } from '../logger';
import { ensureDatabase, migrate } from '../store/migrate';
import { temporalTarget } from '../temporal-connection';
import { startWorker } from '../worker';
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
}
