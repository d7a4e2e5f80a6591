import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/dev/temporal-server';
import { type BinResult, runBin } from '../helpers/bin';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';

/**
 * `pool-reaper worker` as a container runs it, with only the given environment. A worker
 * that starts when it should not would run until the limit; it is then killed and reported
 * as code -1, which no assertion below accepts.
 */
async function startWorker(env: Record<string, string>, limitMs = 45_000): Promise<BinResult> {
  return runBin(
    ['worker'],
    {
      POSTGRES_ADMIN_URL: TEST_POSTGRES_URL,
      REDIS_URL: TEST_REDIS_URL,
      METRICS_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
      ...env,
    },
    { timeoutMs: limitMs, killSignal: 'SIGKILL' },
  );
}

const stderrLines = (result: BinResult) => result.stderr.split('\n').filter((l) => l.trim() !== '');
const logEvents = (result: BinResult, event: string) =>
  result.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['event'] === event);

/**
 * Issue 13, item 11: a worker that cannot work says why in one line and exits with a
 * documented code (README, EXIT in src/cli.ts), and starts no ticker that would look healthy.
 */
describe('pool-reaper worker start-up failures (the real binary)', () => {
  let temporal: TestTemporal;
  let db: TestDatabase;
  const tickerIds: string[] = [];

  beforeAll(async () => {
    temporal = await connectTestTemporal();
    db = await createTestDatabase('startup');
  });
  afterAll(async () => {
    // A worker that wrongly started would have left a ticker behind.
    for (const id of tickerIds) {
      await temporal.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await temporal?.close();
    await db?.drop();
  });

  const isolated = () => {
    const id = `startup-${uniqueSuffix()}`;
    tickerIds.push(id);
    return { TEMPORAL_TASK_QUEUE: id, REAPER_WORKFLOW_ID: id };
  };

  it('exits 3 with one line when Temporal cannot be reached', async () => {
    const result = await startWorker({
      ...isolated(),
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      PROVISIONER_DATABASE_URL: db.url,
    });
    expect(result.code).toBe(3);
    const lines = stderrLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^pool-reaper: cannot reach Temporal at 127\.0\.0\.1:1 \(namespace default\)/);
  });

  it('exits 2 with one line naming `pool-reaper migrate` when the schema is not migrated, and starts no ticker', async () => {
    const bare = await createTestDatabase('startup_bare', { migrate: false });
    try {
      const env = isolated();
      const result = await startWorker({
        ...env,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        PROVISIONER_DATABASE_URL: bare.url,
      });
      expect(result.code).toBe(2);
      const lines = stderrLines(result);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^pool-reaper: .*`pool-reaper migrate`/);
      await expect(
        temporal.client.workflow.getHandle(env.REAPER_WORKFLOW_ID).describe(),
      ).rejects.toBeInstanceOf(WorkflowNotFoundError);
    } finally {
      await bare.drop();
    }
  });

  it('exits 2 at once, naming `pool-reaper migrate --create-database`, when the provisioner database does not exist', async () => {
    const env = isolated();
    const missing = new URL(TEST_POSTGRES_URL);
    missing.pathname = `/prt_missing_${uniqueSuffix()}`;
    const result = await startWorker({
      ...env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      PROVISIONER_DATABASE_URL: missing.toString(),
      // Long enough that a worker waiting for a database nobody creates would be caught.
      REAPER_STARTUP_TIMEOUT: '1m',
    });
    expect(result.code).toBe(2);
    const lines = stderrLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^pool-reaper: the provisioner database \(PROVISIONER_DATABASE_URL\) does not exist/,
    );
    expect(lines[0]).toContain('`pool-reaper migrate --create-database`');
    // The server answered: nothing to wait for, no retry logged.
    expect(logEvents(result, 'pool_reaper.provisioner_db.unreachable')).toEqual([]);
    await expect(
      temporal.client.workflow.getHandle(env.REAPER_WORKFLOW_ID).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('exits 7 with one line after REAPER_STARTUP_TIMEOUT when the provisioner database does not answer, logging each retry', async () => {
    const closedPort = await freePort();
    const env = isolated();
    const result = await startWorker({
      ...env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      PROVISIONER_DATABASE_URL: `postgres://postgres:not-a-secret@127.0.0.1:${closedPort}/pool_provisioner`,
      REAPER_STARTUP_TIMEOUT: '3s',
    });
    expect(result.code).toBe(7);
    const lines = stderrLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^pool-reaper: cannot reach the provisioner database \(PROVISIONER_DATABASE_URL\)/,
    );
    expect(lines[0]).not.toContain('not-a-secret');
    const retries = logEvents(result, 'pool_reaper.provisioner_db.unreachable');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries.map((r) => r['attempt'])).toEqual(retries.map((_, i) => i + 1));
    expect(result.stdout).not.toContain('not-a-secret');
    // Nothing reached Temporal: no ticker looks healthy while the worker cannot reap.
    await expect(
      temporal.client.workflow.getHandle(env.REAPER_WORKFLOW_ID).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
