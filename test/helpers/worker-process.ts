import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { inject } from 'vitest';
import { freePort } from '../../src/dev/temporal-server';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from './env';

const CLI = path.resolve(process.cwd(), 'dist', 'src', 'cli.js');
const PRELOAD = path.resolve(__dirname, 'worker-preload.cjs');

/**
 * Variables for a REAPER_TRIGGER=schedule worker that looks for failed scheduled passes every
 * `ms` (10 s in production) and reuses the Schedule's pause in scrapes for at most `ms` (5 s),
 * through the test preload (worker-preload.cjs). Same looks, only more often.
 */
export function scheduleWatchEvery(ms: number): Record<string, string> {
  return { NODE_OPTIONS: `--require ${PRELOAD}`, REAPER_TEST_SCHEDULE_WATCH_MS: String(ms) };
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly metricsPort: number;
  /** Every stdout line parsed as JSON (non-JSON lines kept as { raw }). */
  readonly lines: Record<string, unknown>[];
  readonly stderr: string[];
  waitForEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal name) once the process has exited and its pipes are drained. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `node dist/src/cli.js worker` (the built binary, as a container would run it) with
 * the test's isolated database, task queue and ticker id. Signals go to node itself.
 */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      REDIS_URL: TEST_REDIS_URL,
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'info',
      REAPER_SHUTDOWN_GRACE: '20s',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const waiters: { event: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      if (text.trim() === '') continue;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text);
      } catch {
        line = { raw: text };
      }
      lines.push(line);
      for (const w of waiters.filter((w) => w.event === line['event'])) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  // 'close', not 'exit': 'exit' can fire before the pipes are drained, and a test that reads the
  // last stderr line right after (exit 8's one line) then saw none (seen in a loaded run).
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    metricsPort,
    lines,
    stderr,
    exited,
    waitForEvent(event, timeoutMs = 60_000) {
      const seen = lines.find((l) => l['event'] === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `worker did not log ${event} in ${timeoutMs} ms; stderr: ${stderr.join('').slice(-2000)}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          event,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(
            new Error(
              `worker exited (${code}) before logging ${event}; stderr: ${stderr.join('').slice(-2000)}`,
            ),
          );
        });
      });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** SIGTERM each worker (absent ones skipped) and wait until all have exited. */
export async function stopWorkers(...workers: (WorkerProcess | undefined)[]): Promise<void> {
  for (const w of workers) w?.kill('SIGTERM');
  await Promise.all(workers.map((w) => w?.exited));
}
