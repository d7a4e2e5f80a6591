import type { Command } from 'commander';
import { formatDuration } from '../operator-format';
import { PoolStore } from '../store/pool-store';
import { CliExit, config, EXIT, operatorLogger, print } from './common';

/** `quarantine list` / `quarantine release`: the rows passes leave out. */
export function addQuarantineCommands(program: Command): void {
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
}
