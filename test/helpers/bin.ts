import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The `pool-reaper` binary as an operator or a container runs it (needs `npm run build`). */
export const BIN = path.resolve(process.cwd(), 'bin', 'pool-reaper.js');

export interface BinResult {
  /** The exit code, or -1 when the process did not exit on its own within the limit. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `pool-reaper <args>` with only PATH and `env` in its environment, and returns how it
 * ended: a non-zero exit is a result to assert on, never a throw. A process still running
 * after `timeoutMs` is killed (with `killSignal`) and reported as code -1, which no test
 * expecting an exit accepts.
 */
export async function runBin(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  options: { readonly timeoutMs?: number; readonly killSignal?: NodeJS.Signals } = {},
): Promise<BinResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      timeout: options.timeoutMs ?? 60_000,
      ...(options.killSignal ? { killSignal: options.killSignal } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
