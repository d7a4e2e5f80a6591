import type { Client } from '@temporalio/client';
import type { State as WorkerState } from '@temporalio/worker';
import type { Logger } from './logger';
import { scrubSecrets } from './shared/secrets';
import { assertSchemaCurrent } from './store/migrate';

/** One probe's answer: the HTTP status and a small JSON body naming what failed. */
export interface ProbeResult {
  readonly status: 200 | 503;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface HealthOptions {
  readonly client: Client;
  readonly db: Parameters<typeof assertSchemaCurrent>[0];
  /** The SDK worker's state (read on every probe; RUNNING while it polls). */
  readonly workerState: () => WorkerState;
  readonly log: Logger;
  /** REAPER_TEMPORAL_LOSS_LIMIT: Temporal unreachable this long ends the process. */
  readonly temporalLossLimitMs: number;
  /** Called once when Temporal has been unreachable for temporalLossLimitMs. */
  readonly onTemporalLost: (downForMs: number) => void;
  /** How often Temporal is checked; default min(5 s, limit / 3). */
  readonly checkEveryMs?: number;
  /** Limit on one probe's database or Temporal call. Default 2 s. */
  readonly probeTimeoutMs?: number;
}

export interface Health {
  /** /healthz: the process and its event loop run and the worker has not stopped or failed. */
  live(): Promise<ProbeResult>;
  /** /readyz: Temporal answers, the worker polls, the database answers and its schema is current. */
  ready(): Promise<ProbeResult>;
  stop(): void;
}

/** Worker states in which the process still does (or is about to do) its job. */
const LIVE_STATES: readonly WorkerState[] = ['INITIALIZED', 'RUNNING'];

const withTimeout = <T>(ms: number, what: string, p: Promise<T>): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
};

const oneLine = (err: unknown) => scrubSecrets(String((err as Error)?.message ?? err).split('\n')[0] ?? '');

/**
 * Liveness, readiness and the Temporal watchdog. The SDK worker retries its polls for ever
 * when Temporal goes away, which looks alive but reaps nothing: past the bound the process
 * ends (exit 8) so that its supervisor (Kubernetes, systemd) restarts it and alerts see it.
 */
export function createHealth(options: HealthOptions): Health {
  const { client, db, log } = options;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const checkEveryMs =
    options.checkEveryMs ?? Math.max(100, Math.min(5_000, options.temporalLossLimitMs / 3));
  let lastTemporalOk = Date.now();
  let temporalError: string | undefined;
  let lastTick = Date.now();
  let lost = false;

  const pingTemporal = () =>
    withTimeout(
      probeTimeoutMs,
      'Temporal',
      client.connection.withDeadline(Date.now() + probeTimeoutMs, () =>
        client.workflowService.getSystemInfo({}),
      ),
    );

  let checking = false;
  const timer = setInterval(async () => {
    lastTick = Date.now();
    if (checking || lost) return;
    checking = true;
    try {
      await pingTemporal();
      if (temporalError !== undefined) {
        log.info({ event: 'pool_reaper.temporal.reconnected' }, 'Temporal answers again');
      }
      lastTemporalOk = Date.now();
      temporalError = undefined;
    } catch (err) {
      const downForMs = Date.now() - lastTemporalOk;
      if (temporalError === undefined) {
        log.warn(
          {
            event: 'pool_reaper.temporal.unreachable',
            error: oneLine(err),
            limitMs: options.temporalLossLimitMs,
          },
          'Temporal does not answer; the worker exits if this lasts past REAPER_TEMPORAL_LOSS_LIMIT',
        );
      }
      temporalError = oneLine(err);
      if (downForMs >= options.temporalLossLimitMs) {
        lost = true;
        options.onTemporalLost(downForMs);
      }
    } finally {
      checking = false;
    }
  }, checkEveryMs);
  timer.unref();

  return {
    async live() {
      const state = options.workerState();
      // A timer that has not fired for many periods means a blocked event loop.
      const stalledMs = Date.now() - lastTick;
      const loopOk = stalledMs < Math.max(30_000, checkEveryMs * 6);
      const ok = LIVE_STATES.includes(state) && loopOk && !lost;
      return { status: ok ? 200 : 503, body: { ok, worker: state, eventLoopStalledMs: stalledMs } };
    },
    async ready() {
      const checks: Record<string, string> = {};
      const state = options.workerState();
      checks['worker'] = state === 'RUNNING' ? 'ok' : `worker is ${state}`;
      const [temporal, database] = await Promise.allSettled([
        pingTemporal(),
        withTimeout(probeTimeoutMs, 'the provisioner database', assertSchemaCurrent(db)),
      ]);
      checks['temporal'] = temporal.status === 'fulfilled' ? 'ok' : oneLine(temporal.reason);
      checks['database'] = database.status === 'fulfilled' ? 'ok' : oneLine(database.reason);
      const ok = Object.values(checks).every((c) => c === 'ok');
      return { status: ok ? 200 : 503, body: { ok, checks } };
    },
    stop() {
      clearInterval(timer);
    },
  };
}
