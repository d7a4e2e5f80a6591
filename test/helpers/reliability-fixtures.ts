import { Client, Connection } from '@temporalio/client';
import { inject } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import type { DevServer, DevServerOptions } from '../../src/dev/temporal-server';
import type { TickerStatus } from '../../src/shared/messages';
import { statusQuery } from '../../src/shared/messages';
import { startDevServerWithRetry } from './dev-server';
import type { Prng } from './prng';
import { cleanupToken, seedTargets } from './teardown-fixtures';
import { waitFor } from './wait';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
/** The worker's default REAPER_FAILED_GRACE, which these tests keep. */
export const FAILED_GRACE_MS = 10 * MINUTE;

export interface Population {
  /** Stale failed items: the reaper's work. */
  readonly stale: { id: string; poolToken: string; resourceType: string }[];
  /** Ready/assigned items with infra and failed items inside the grace: must be left alone. */
  readonly keep: { id: string; poolToken: string; resourceType: string; status: string }[];
  /** Every token that may have infra, for cleanup. */
  readonly tokens: string[];
}

export interface PopulationSpec {
  readonly stale: Partial<Record<'postgres' | 'redis' | 'queue', number>>;
  /** Ready, assigned (3 h, "stuck") and fresh failed (2 min) items of each of these types, with infra. */
  readonly keepPerType?: number;
  readonly adminUrl: string;
  readonly redisUrl: string;
  readonly rng: Prng;
}

/**
 * Provisions real items the way the provisioner does, then spreads the stale ones' ages
 * (1 to 2 hours, shuffled) so that passes, which take the oldest first, mix the types.
 */
export async function seedPopulation(pool: import('pg').Pool, spec: PopulationSpec): Promise<Population> {
  const stale: Population['stale'] = [];
  const keep: Population['keep'] = [];
  const base = { provisionerPool: pool, adminUrl: spec.adminUrl, redisUrl: spec.redisUrl, concurrency: 4 };
  for (const [type, count] of Object.entries(spec.stale) as ['postgres' | 'redis' | 'queue', number][]) {
    if (!count) continue;
    const items = await seedItems({ ...base, count, resourceType: type, status: 'failed', ageMs: 2 * HOUR });
    stale.push(...items.map((i) => ({ id: i.id, poolToken: i.poolToken, resourceType: type })));
  }
  const ordered = spec.rng.shuffle(stale);
  await pool.query(
    `UPDATE pool_items p SET assigned_at = now() - make_interval(secs => v.age), created_at = now() - make_interval(secs => v.age + 60)
       FROM unnest($1::uuid[], $2::double precision[]) AS v(id, age) WHERE p.id = v.id`,
    [ordered.map((i) => i.id), ordered.map((_, n) => 2 * 3600 - n * 20)],
  );
  for (const type of ['postgres', 'redis'] as const) {
    for (const [status, ageMs] of [
      ['ready', 2 * HOUR],
      ['assigned', 3 * HOUR],
      ['failed', 2 * MINUTE],
    ] as const) {
      const count = spec.keepPerType ?? 1;
      if (count === 0) continue;
      const items = await seedItems({ ...base, count, resourceType: type, status, ageMs });
      keep.push(...items.map((i) => ({ id: i.id, poolToken: i.poolToken, resourceType: type, status })));
    }
  }
  return { stale, keep, tokens: [...stale, ...keep].map((i) => i.poolToken) };
}

/** Removes whatever is left of these tokens' infra, directly as the superuser. */
export async function cleanupTokens(tokens: readonly string[]): Promise<void> {
  const targets = seedTargets();
  try {
    for (const token of tokens) await cleanupToken(targets, token).catch(() => undefined);
  } finally {
    await targets.close();
  }
}

export async function countStaleFailed(pool: import('pg').Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pool_items
      WHERE status = 'failed' AND assigned_at < now() - make_interval(secs => $1)`,
    [FAILED_GRACE_MS / 1000],
  );
  return rows[0]?.n ?? 0;
}

export function tickerStatus(client: Client, tickerId: string): Promise<TickerStatus> {
  return client.workflow.getHandle(tickerId).query(statusQuery);
}

/** Waits until no pass runs and none is pending. */
export async function waitForIdleTicker(
  client: Client,
  tickerId: string,
  timeoutMs = 60_000,
): Promise<TickerStatus> {
  return waitFor(
    () => tickerStatus(client, tickerId),
    (s) => s.currentPassId === undefined && !s.pendingForce,
    { timeoutMs, intervalMs: 200, what: `ticker ${tickerId} to be idle` },
  );
}

export interface PassInterval {
  readonly workflowId: string;
  readonly startMs: number;
  readonly closeMs: number | undefined;
  readonly status: string;
}

/** Every reapPass workflow of this task queue, oldest first, from visibility. */
export async function passIntervals(client: Client, taskQueue: string): Promise<PassInterval[]> {
  const passes: PassInterval[] = [];
  for await (const wf of client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND WorkflowType = 'reapPass'`,
  })) {
    passes.push({
      workflowId: wf.workflowId,
      startMs: wf.startTime.getTime(),
      closeMs: wf.closeTime?.getTime(),
      status: wf.status.name,
    });
  }
  return passes.sort((a, b) => a.startMs - b.startMs);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface PrivateTemporal {
  readonly server: DevServer;
  readonly address: string;
  readonly client: Client;
  /** Stops the server and starts it again with the same options (same port, same database file). */
  restart(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A dev server of the test's own (the shared one must not be restarted or reconfigured).
 * `workflowTaskTimeout` lowers the default workflow task timeout (10 s): a kill -9 that lands
 * while a workflow task is in flight costs that long, once per open workflow.
 */
export async function startPrivateTemporal(
  options: Partial<Pick<DevServerOptions, 'dbFile' | 'port' | 'dynamicConfig'>> & {
    workflowTaskTimeout?: string;
  } = {},
): Promise<PrivateTemporal> {
  const serverOptions: DevServerOptions = {
    cliPath: inject('temporalCliPath'),
    uiPort: false,
    ...(options.dbFile ? { dbFile: options.dbFile } : {}),
    ...(options.port ? { port: options.port } : {}),
    dynamicConfig: {
      ...options.dynamicConfig,
      ...(options.workflowTaskTimeout
        ? { 'history.defaultWorkflowTaskTimeout': options.workflowTaskTimeout }
        : {}),
    },
  };
  let server = await startDevServerWithRetry(serverOptions);
  const port = Number(server.address.split(':').pop());
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  return {
    get server() {
      return server;
    },
    address: server.address,
    client,
    async restart(downMs = 0) {
      await server.stop();
      if (downMs > 0) await sleep(downMs);
      server = await startDevServerWithRetry({ ...serverOptions, port });
    },
    async close() {
      await connection.close().catch(() => undefined);
      await server.stop();
    },
  };
}
