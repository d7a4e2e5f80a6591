import { InvalidArgumentError } from 'commander';
import pino from 'pino';
import { ReaperClient } from '../client';
import { loadConfig, parseDuration, type ReaperConfig } from '../config';
import { createLogger } from '../logger';
import { connectClient, temporalTarget } from '../temporal-connection';

/** What every command group shares: exit codes, configuration, output, argument parsers. */

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

export class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Operator commands keep stdout for their answer; their log lines (audit included) go to stderr. */
export function operatorLogger(cfg: ReaperConfig) {
  return createLogger({ level: cfg.logLevel }, pino.destination({ dest: 2, sync: true }));
}

export function config(): ReaperConfig {
  return loadConfig();
}

export async function reaperClient(cfg: ReaperConfig): Promise<ReaperClient> {
  const client = await connectClient(temporalTarget());
  return new ReaperClient(client, cfg.tickerWorkflowId);
}

export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

export function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${raw}"`);
  return n;
}

export function duration(raw: string): number {
  try {
    return parseDuration('--age', raw);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
