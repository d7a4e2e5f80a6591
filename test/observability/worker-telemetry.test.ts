import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { seedItems } from '../../src/dev/seed';
import { freePort } from '../../src/dev/temporal-server';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { childWorkflowIds } from '../helpers/history';
import { metricNamesInQueries } from '../helpers/metric-names';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { insertRow } from '../helpers/rows';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const HOUR = 3_600_000;
const root = process.cwd();

/** Names a /metrics page exposes, from its `# TYPE` lines, with histogram and counter sample suffixes. */
function exposedNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const match of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram' || type === 'summary')
      for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'counter' && !name.endsWith('_total')) names.add(`${name}_total`);
  }
  return names;
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** Every string in a history, with payload bytes decoded, so a secret cannot hide in base64. */
function historyText(value: unknown, out: string[] = []): string[] {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) historyText(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) historyText(v, out);
  return out;
}

async function allHistories(client: Client, root: WorkflowHandle): Promise<string> {
  const texts: string[] = [];
  const queue = [root.workflowId];
  while (queue.length > 0) {
    const id = queue.shift()!;
    const history = await client.workflow.getHandle(id).fetchHistory();
    texts.push(...historyText(history));
    queue.push(...childWorkflowIds(history));
  }
  return texts.join('\n');
}

describe('a real worker process: metrics it exports, and secrets it never shows', () => {
  let db: TestDatabase;
  let connection: Connection;
  let client: Client;
  let worker: WorkerProcess;
  let temporalMetricsPort: number;
  const secrets = {
    admin: `AdminPw${uniqueSuffix()}`,
    provisioner: `ProvPw${uniqueSuffix()}`,
    unreachable: `OtherClusterPw${uniqueSuffix()}`,
  };
  let connectionUrlPasswords: string[] = [];
  const secretDir = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-telemetry-'));
  const secretFile = (value: string) => {
    const file = path.join(secretDir, 'provisioner-database-url');
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return file;
  };
  let tickerId: string;

  beforeAll(async () => {
    db = await createTestDatabase('telemetry');
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    const items = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 2,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    const redisItems = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType: 'redis',
      status: 'failed',
      ageMs: HOUR,
    });
    // A teardown that fails: its error travels into logs, history and the pass summary.
    await insertRow(db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: 'local:1',
    });
    // The generated passwords of the three real items, as stored in their rows' connection_url.
    connectionUrlPasswords = [...items, ...redisItems].map((i) => new URL(i.item.connectionUrl).password);
    expect(connectionUrlPasswords).toHaveLength(3);
    const { rows } = await db.pool.query<{ connection_url: string }>('SELECT connection_url FROM pool_items');
    const stored = new Set(rows.map((r) => new URL(r.connection_url).password));
    for (const password of connectionUrlPasswords) {
      expect(password.length).toBeGreaterThanOrEqual(16);
      expect(stored.has(password)).toBe(true);
    }

    temporalMetricsPort = await freePort();
    const taskQueue = `telemetry-${uniqueSuffix()}`;
    tickerId = `${taskQueue}-ticker`;
    worker = await startWorkerProcess({
      TEMPORAL_TASK_QUEUE: taskQueue,
      REAPER_WORKFLOW_ID: tickerId,
      REAPER_TICK: '1h',
      LOG_LEVEL: 'debug',
      TEMPORAL_METRICS_PORT: String(temporalMetricsPort),
      // From a file, as a mounted Secret passes it (issue 19): the secret must not leak from there either.
      PROVISIONER_DATABASE_URL_FILE: secretFile(withPassword(db.url, secrets.provisioner)),
      POSTGRES_ADMIN_URL: withPassword(TEST_POSTGRES_URL, secrets.admin),
      POSTGRES_ADMIN_URLS: `local:1=postgres://postgres:${secrets.unreachable}@127.0.0.1:1/postgres`,
    });
    await worker.waitForEvent('pool_reaper.ticker.ensured');
    const summary = await new ReaperClient(client, tickerId).reapNowAndWait({
      requestedBy: 'telemetry-test',
    });
    expect(summary).toMatchObject({ listed: 4, reaped: 3, deprovisionErrors: 1 });
  });

  afterAll(async () => {
    worker?.kill('SIGTERM');
    await worker?.exited;
    await connection?.close();
    await db?.drop();
    rmSync(secretDir, { recursive: true, force: true });
  });

  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  it('exports every metric the dashboard and the alert rules query (no drift)', async () => {
    const dashboard = readFileSync(path.join(root, 'deploy/grafana/dashboards/pool-reaper.json'), 'utf8');
    const rules = readFileSync(path.join(root, 'deploy/prometheus/rules/pool-reaper.rules.yml'), 'utf8');
    const wanted = metricNamesInQueries(dashboard, rules);
    const exposed = new Set([
      ...exposedNames(await scrape(worker.metricsPort)),
      ...exposedNames(await scrape(temporalMetricsPort)),
    ]);
    expect(wanted.length).toBeGreaterThan(8);
    expect(wanted.filter((name) => !exposed.has(name))).toEqual([]);
  });

  it('serves the SDK metrics on TEMPORAL_METRICS_PORT, beside prom-client on METRICS_PORT', async () => {
    const sdk = await scrape(temporalMetricsPort);
    const own = await scrape(worker.metricsPort);
    expect(sdk).toMatch(/^temporal_worker_task_slots_available\{/m);
    expect(sdk).not.toContain('instant_pool_reap_total');
    expect(own).toMatch(
      /^instant_pool_reap_total\{resource_type="postgres",status="failed",outcome="reaped"\} 2$/m,
    );
    expect(own).toMatch(
      /^instant_pool_reap_total\{resource_type="postgres",status="failed",outcome="deprovision_err"\} 1$/m,
    );
  });

  it("counts the Redis keyspace walk's SCAN steps, keys and iterations per cluster", async () => {
    const own = await scrape(worker.metricsPort);
    const counter = (name: string) =>
      [...own.matchAll(new RegExp(`^${name}\\{cluster="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => ({
        cluster: m[1],
        value: Number(m[2]),
      }));
    // One Redis item with 3 keys, one cluster: a walk frees them, a second iteration confirms.
    const iterations = counter('instant_pool_redis_walk_iterations_total');
    expect(iterations).toHaveLength(1);
    const cluster = iterations[0]!.cluster;
    expect(iterations[0]!.value).toBeGreaterThanOrEqual(2);
    const steps = counter('instant_pool_redis_scan_steps_total');
    expect(steps).toEqual([{ cluster, value: expect.any(Number) }]);
    expect(steps[0]!.value).toBeGreaterThanOrEqual(iterations[0]!.value);
    const keys = counter('instant_pool_redis_scan_keys_total');
    expect(keys).toEqual([{ cluster, value: expect.any(Number) }]);
    expect(keys[0]!.value).toBeGreaterThanOrEqual(3);
  });

  it('writes one JSON stream with workflow and activity context, the audit events included', () => {
    const parsed = worker.lines.filter((l) => !('raw' in l));
    expect(parsed.length).toBe(worker.lines.length);
    const drops = parsed.filter((l) => l['event'] === 'provisioner.drop');
    expect(drops.length).toBeGreaterThanOrEqual(4);
    for (const line of drops) {
      expect(line).toMatchObject({ caller: 'pool_reaper', backend: 'shared', activityType: 'deprovision' });
      expect(typeof line['workflowId']).toBe('string');
      expect(typeof line['runId']).toBe('string');
      expect(typeof line['attempt']).toBe('number');
    }
    const workflowLines = parsed.filter((l) => l['sdk'] === 'workflow');
    expect(workflowLines.length).toBeGreaterThan(0);
    for (const line of workflowLines) expect(typeof line['workflowId']).toBe('string');
    // The SDK's own activity lifecycle lines (debug level) carry the activity's context too.
    const activityLines = parsed.filter((l) => l['msg'] === 'Activity completed' || l['sdk'] === 'activity');
    expect(activityLines.length).toBeGreaterThan(0);
    for (const line of activityLines) {
      expect(line).toHaveProperty('activityType');
      expect(line).toHaveProperty('attempt');
      expect(line).toHaveProperty('workflowId');
    }
  });

  it('never shows a password: not in logs, /metrics, /healthz, /readyz, or the exported workflow histories', async () => {
    const logs = [...worker.lines.map((l) => JSON.stringify(l)), ...worker.stderr].join('\n');
    const health = await Promise.all(
      ['/healthz', '/readyz'].map(async (p) =>
        (await fetch(`http://127.0.0.1:${worker.metricsPort}${p}`)).text(),
      ),
    );
    const metrics =
      (await scrape(worker.metricsPort)) + (await scrape(temporalMetricsPort)) + health.join('');
    const histories = await allHistories(client, client.workflow.getHandle(tickerId));
    expect(histories).toContain('deprovision'); // the histories were really read
    for (const secret of [...Object.values(secrets), ...connectionUrlPasswords]) {
      expect(logs.includes(secret), `log contains ${secret.slice(0, 6)}…`).toBe(false);
      expect(metrics.includes(secret), `metrics contain ${secret.slice(0, 6)}…`).toBe(false);
      expect(histories.includes(secret), `history contains ${secret.slice(0, 6)}…`).toBe(false);
    }
  });
});
