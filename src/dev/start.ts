import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { errorLine } from '../shared/error-line';
import { ensureDatabase, migrate } from '../store/migrate';
import { logFormatFor, prettyLogStream } from './log-format';
import { findTemporalCli } from './temporal-cli';
import { type DevServer, startDevServer, stopChild } from './temporal-server';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const DATA_DIR = path.join(ROOT, '.data');
const LOCAL_PORT = 7233;
const LOCAL_UI_PORT = 8233;

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * `npm start`: a local Temporal dev server (SQLite under .data/, Web UI on :8233) unless
 * TEMPORAL_ADDRESS names one, the schema, then `pool-reaper worker`. Ctrl-C stops all of it.
 * Long (about 70 lines): a dev script read top to bottom, every step in start-up order.
 */
async function main(): Promise<number> {
  const config = loadConfig();
  // On a terminal, this script's lines and the worker's go through one prettifier; piped, both stay JSON.
  const format = logFormatFor(process.stdout);
  const pretty = format === 'pretty' ? prettyLogStream(1, { colorize: !process.env['NO_COLOR'] }) : undefined;
  const log = pretty
    ? createLogger({ level: config.logLevel, name: 'pool-reaper-start' }, pretty)
    : createLogger({ level: config.logLevel, name: 'pool-reaper-start' });
  const env = { ...process.env };
  let server: DevServer | undefined;
  let worker: ChildProcess | undefined;
  // Settles on the worker's 'close' (not 'exit'): by then its last lines are through the pipe.
  let workerClosed: Promise<number> = Promise.resolve(0);
  let stopping = false;

  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    if (worker && worker.exitCode === null) await stopChild(worker, config.shutdownGraceMs + 5000);
    await workerClosed;
    if (server) {
      await server.stop();
      log.info(
        { event: 'pool_reaper.local_stack.stopped' },
        'local Temporal server stopped; its data stays in .data/',
      );
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  if (!process.env['TEMPORAL_ADDRESS']) {
    if (await portInUse(LOCAL_PORT)) {
      throw new Error(
        `port ${LOCAL_PORT} is already in use: if that is a Temporal server, run with TEMPORAL_ADDRESS=localhost:${LOCAL_PORT}`,
      );
    }
    const cliPath = await findTemporalCli({ log: (line) => log.info(line) });
    const logFile = path.join(DATA_DIR, 'temporal-server.log');
    server = await startDevServer({
      cliPath,
      dbFile: path.join(DATA_DIR, 'temporal.db'),
      port: LOCAL_PORT,
      uiPort: LOCAL_UI_PORT,
      logLevel: 'warn',
      detached: true,
    });
    const out = createWriteStream(logFile, { flags: 'a' });
    server.process.stdout?.pipe(out);
    server.process.stderr?.pipe(out);
    env['TEMPORAL_ADDRESS'] = server.address;
    log.info(
      { event: 'pool_reaper.local_stack.temporal', address: server.address, ui: server.uiUrl, log: logFile },
      `Temporal dev server up: Web UI at ${server.uiUrl}`,
    );
  }

  if (await ensureDatabase(config.provisionerDatabaseUrl)) {
    log.info({ event: 'pool_reaper.database.created' }, 'provisioner database created');
  }
  await migrate(config.provisionerDatabaseUrl, log);

  worker = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli.js'), 'worker'], {
    env,
    // The worker writes JSON (production's format) either way; only its terminal view changes.
    stdio: ['inherit', pretty ? 'pipe' : 'inherit', 'inherit'],
  });
  if (pretty) worker.stdout?.pipe(pretty, { end: false });
  const started = worker;
  workerClosed = new Promise<number>((resolve) => started.once('close', (c) => resolve(c ?? 0)));
  log.info(
    {
      event: 'pool_reaper.local_stack.ready',
      ui: server?.uiUrl ?? '(your Temporal server)',
      metrics: `http://localhost:${config.metricsPort}/metrics`,
    },
    `pool-reaper running. Temporal UI: ${server?.uiUrl ?? env['TEMPORAL_ADDRESS']} · metrics: http://localhost:${config.metricsPort}/metrics · Ctrl-C to stop`,
  );
  const code = await workerClosed;
  await stop(code);
  return code;
}

main().catch((err: unknown) => {
  process.stderr.write(`${errorLine(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(2);
});
