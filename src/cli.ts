import { Command } from 'commander';
import { CliExit, EXIT } from './cli/common';
import { addDevCommands } from './cli/dev-commands';
import { registerPlanCommands } from './cli/plan';
import { addProcessCommands } from './cli/process-commands';
import { addQuarantineCommands } from './cli/quarantine-commands';
import { addTickerCommands } from './cli/ticker-commands';
import { PassFailedError, ReaperRequestRefusedError, TickerNotRunningError } from './client';
import { ConfigError } from './config';
import { SeedRefusedError } from './dev/dev-database';
import { errorLine } from './shared/error-line';
import { SchemaOutdatedError } from './store/migrate';
import { TemporalUnreachableError } from './temporal-connection';
import { ProvisionerUnreachableError, TemporalLostError } from './worker-errors';

/**
 * The `pool-reaper` binary (bin/pool-reaper.js, `node dist/src/cli.js`): the program, its exit
 * codes and its one-line errors. Each command group lives in src/cli/.
 */
export { EXIT };

export function buildProgram(): Command {
  const program = new Command('pool-reaper')
    .description('Tear down leaked hot-pool infrastructure on Temporal, with every teardown audited.')
    .showHelpAfterError()
    .exitOverride();
  addProcessCommands(program);
  addDevCommands(program);
  addTickerCommands(program);
  addQuarantineCommands(program);
  registerPlanCommands(program);
  return program;
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CliExit) return err.code;
  if (err instanceof ConfigError || (err as Error)?.name === 'SeedUsageError') return EXIT.usage;
  if (err instanceof TemporalUnreachableError) return EXIT.temporalUnreachable;
  if (err instanceof TickerNotRunningError) return EXIT.tickerNotRunning;
  if (err instanceof ReaperRequestRefusedError || err instanceof SeedRefusedError) return EXIT.refused;
  if (err instanceof PassFailedError) return EXIT.passErrors;
  if (err instanceof SchemaOutdatedError) return EXIT.usage;
  if (err instanceof ProvisionerUnreachableError) return EXIT.databaseUnreachable;
  if (err instanceof TemporalLostError) return EXIT.temporalLost;
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
    process.stderr.write(`${errorLine(e.message ?? String(err))}\n`);
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}
