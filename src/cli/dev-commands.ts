import type { Command } from 'commander';
import { seedFromCli } from '../dev/seed-cli';
import { config, duration, positiveInt } from './common';

/** `seed`: development only (src/dev/), refused on a database that does not look like a development one. */
export function addDevCommands(program: Command): void {
  program
    .command('seed')
    .description('provision real pool items the way the provisioner does (development databases only)')
    .option('-t, --type <type>', 'postgres, redis, queue or mongodb', 'postgres')
    .option('-n, --count <n>', 'how many items', positiveInt, 1)
    .option('-s, --status <status>', 'ready, assigned or failed', 'failed')
    .option('-a, --age <duration>', 'how long ago they were assigned/failed, e.g. 1h', duration, 3_600_000)
    .option('-c, --concurrency <n>', 'items provisioned at once', positiveInt, 8)
    .option('--json', 'print the created items as JSON')
    .option('--force', 'seed a provisioner database that does not look like a development one')
    .action(
      async (opts: {
        type: string;
        count: number;
        status: string;
        age: number;
        concurrency: number;
        json?: boolean;
        force?: boolean;
      }) => {
        const cfg = config();
        await seedFromCli(cfg, opts);
      },
    );
}
