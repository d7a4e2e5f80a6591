import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/dev/temporal-server';
import { runBin } from '../helpers/bin';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

/** A password Postgres (trust auth) and Redis (no auth) ignore, so it can be looked for everywhere. */
const FILE_SECRET = `file-secret-${uniqueSuffix()}`;

async function probe(
  port: number,
  route: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, limitMs = 30_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('issue 19: secrets from files, /healthz and /readyz, exit on a lost Temporal (the real binary)', () => {
  let temporal: TestTemporal;
  let db: TestDatabase;
  let dir: string;
  const tickerIds: string[] = [];
  const isolated = () => {
    const id = `prod-${uniqueSuffix()}`;
    tickerIds.push(id);
    return { TEMPORAL_TASK_QUEUE: id, REAPER_WORKFLOW_ID: id };
  };

  beforeAll(async () => {
    temporal = await connectTestTemporal();
    db = await createTestDatabase('prod_health');
    dir = mkdtempSync(path.join(tmpdir(), 'pool-reaper-secrets-'));
  });
  afterAll(async () => {
    for (const id of tickerIds) {
      await temporal.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
    await temporal?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A file holding `value` as a mounted secret would (with a trailing newline). */
  const secretFile = (name: string, value: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return file;
  };
  const withPassword = (base: string) => {
    const url = new URL(base);
    url.username ||= 'postgres';
    url.password = FILE_SECRET;
    return url.toString();
  };

  it('stops with one line naming the variable when both X and X_FILE are set (exit 2)', async () => {
    const file = secretFile('both', db.url);
    const result = await runBin(
      ['worker'],
      {
        PROVISIONER_DATABASE_URL: db.url,
        PROVISIONER_DATABASE_URL_FILE: file,
        METRICS_PORT: String(await freePort()),
      },
      { timeoutMs: 30_000 },
    );
    expect(result.code).toBe(2);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toEqual([
      'pool-reaper: PROVISIONER_DATABASE_URL: expected either PROVISIONER_DATABASE_URL or ' +
        'PROVISIONER_DATABASE_URL_FILE, not both (both are set)',
    ]);
    expect(result.stderr).not.toContain(db.url);
  });

  it('a missing secret file is one line naming <NAME>_FILE and its path, exit 2', async () => {
    const missing = path.join(dir, 'not-there');
    const result = await runBin(['worker'], { REDIS_URL_FILE: missing }, { timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      `pool-reaper: REDIS_URL_FILE: expected a readable file, got ENOENT for ${missing}`,
    );
  });

  describe('a worker whose URLs come from files, reaching Temporal through a proxy', () => {
    let proxy: TcpProxy;
    let worker: WorkerProcess;

    beforeAll(async () => {
      const [host, port] = inject('temporalAddress').split(':');
      proxy = await startTcpProxy(host ?? '127.0.0.1', Number(port));
      worker = await startWorkerProcess({
        ...isolated(),
        TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
        PROVISIONER_DATABASE_URL_FILE: secretFile('provisioner', withPassword(db.url)),
        POSTGRES_ADMIN_URL: '',
        POSTGRES_ADMIN_URL_FILE: secretFile('admin', withPassword(TEST_POSTGRES_URL)),
        REDIS_URL: '',
        REDIS_URL_FILE: secretFile('redis', TEST_REDIS_URL.replace('redis://', `redis://:${FILE_SECRET}@`)),
        REAPER_TEMPORAL_LOSS_LIMIT: '3s',
        REAPER_SHUTDOWN_GRACE: '2s',
        LOG_LEVEL: 'debug',
      });
      await worker.waitForEvent('pool_reaper.worker.started');
    });
    afterAll(async () => {
      worker?.kill('SIGKILL');
      await proxy?.close();
    });

    it('is live and ready; /readyz names the database when its schema is behind, and recovers', async () => {
      expect(await probe(worker.metricsPort, '/healthz')).toMatchObject({ status: 200, body: { ok: true } });
      const ready = await until('ready', async () => {
        const r = await probe(worker.metricsPort, '/readyz');
        return r.status === 200 ? r : undefined;
      });
      expect(ready.body).toEqual({ ok: true, checks: { worker: 'ok', temporal: 'ok', database: 'ok' } });

      const { rows } = await db.pool.query<{ version: number }>(
        'DELETE FROM pool_reaper_migrations WHERE version = (SELECT max(version) FROM pool_reaper_migrations) RETURNING *',
      );
      try {
        const behind = await probe(worker.metricsPort, '/readyz');
        expect(behind.status).toBe(503);
        expect(String((behind.body['checks'] as Record<string, string>)['database'])).toMatch(
          /lacks migration\(s\) \d+.*`pool-reaper migrate`/,
        );
        // Not ready is not dead: the worker is still live, so Kubernetes does not restart it.
        expect((await probe(worker.metricsPort, '/healthz')).status).toBe(200);
      } finally {
        const cols = Object.keys(rows[0] ?? {});
        await db.pool.query(
          `INSERT INTO pool_reaper_migrations (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
          cols.map((c) => (rows[0] as Record<string, unknown>)[c]),
        );
      }
      expect((await probe(worker.metricsPort, '/readyz')).status).toBe(200);
    });

    it('exports build_info with the package version', async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
      const { version } = (await import('../../package.json')) as { version: string };
      expect(metrics).toMatch(
        new RegExp(
          `^instant_pool_reaper_build_info\\{version="${version.replace(/\./g, '\\.')}",node_version="[^"]+",temporal_sdk_version="\\d+\\.\\d+\\.\\d+"\\} 1$`,
          'm',
        ),
      );
      expect(metrics).not.toContain(FILE_SECRET);
    });

    it('exits 8 with one line once Temporal has been gone for REAPER_TEMPORAL_LOSS_LIMIT, never printing a secret', async () => {
      await proxy.close();
      const code = await Promise.race([
        worker.exited,
        new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000)),
      ]);
      expect(code).toBe(8);
      const stderr = worker.stderr
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '');
      expect(stderr).toHaveLength(1);
      expect(stderr[0]).toMatch(
        /^pool-reaper: lost Temporal at 127\.0\.0\.1:\d+ for \d+s \(REAPER_TEMPORAL_LOSS_LIMIT\)/,
      );
      expect(worker.lines.some((l) => l['event'] === 'pool_reaper.temporal.unreachable')).toBe(true);
      expect(worker.lines.some((l) => l['event'] === 'pool_reaper.temporal.lost')).toBe(true);
      const everything = JSON.stringify(worker.lines) + worker.stderr.join('');
      expect(everything).not.toContain(FILE_SECRET);
    });
  });
});
