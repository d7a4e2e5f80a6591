import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import { freePort } from '../../src/dev/temporal-server';
import { createLogger } from '../../src/logger';
import { createTeardownRegistry } from '../../src/teardown';
import { runBin } from '../helpers/bin';
import { TEST_POSTGRES_URL, TEST_POSTGRES_URL_2 } from '../helpers/env';
import {
  createThrowawayCluster,
  dropLeftoverClusters,
  type ThrowawayCluster,
} from '../helpers/throwaway-postgres';

const run = promisify(execFile);
const silent = createLogger({ level: 'silent' });

/** A CA and a server certificate for localhost and 127.0.0.1 made with openssl, plus an unrelated CA. */
async function makeCertificates(dir: string) {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  for (const ca of ['ca', 'wrong-ca']) {
    await openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=pool-reaper test ${ca}`,
    );
  }
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  return {
    ca: path.join(dir, 'ca.crt'),
    wrongCa: path.join(dir, 'wrong-ca.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
  };
}

/** The first row of `sql` on a connection of its own to `url`. */
async function firstRow<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R | undefined> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows[0];
  } finally {
    await client.end();
  }
}

/** Whether a connection with `url` is encrypted, as the server sees it. */
async function sslInUse(url: string): Promise<boolean> {
  const row = await firstRow<{ ssl: boolean }>(
    url,
    'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  return row?.ssl === true;
}

/**
 * Issue 19, item 2: Postgres TLS from the URL or libpq's variables and Redis rediss:// with a
 * CA, against a Postgres cluster of this test's own serving a certificate from a CA made here.
 * The shared clusters (5432, 5433) are never reconfigured: a test process that dies mid-test
 * leaves at most a throwaway cluster, which the next run drops (test/helpers/throwaway-postgres.ts).
 */
describe('TLS to Postgres (a throwaway cluster) and Redis with a CA made in the test', () => {
  let dir: string;
  let certs: Awaited<ReturnType<typeof makeCertificates>>;
  let cluster: ThrowawayCluster | undefined;
  /** The throwaway cluster's superuser URL. */
  let serverUrl: string;
  const withParams = (params: Record<string, string>, host?: string) => {
    const url = new URL(serverUrl);
    if (host !== undefined) url.hostname = host;
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pool-reaper-tls-'));
    chmodSync(dir, 0o755);
    certs = await makeCertificates(dir);
    // The server reads its key as the postgres user, and only from a file no one else can read.
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(certs.key, Number(stdout.trim()), Number(gid.trim()));
    chmodSync(certs.key, 0o600);
    chmodSync(certs.cert, 0o644);
    cluster = await createThrowawayCluster('tls', {
      ssl: 'on',
      ssl_cert_file: certs.cert,
      ssl_key_file: certs.key,
    });
    serverUrl = cluster.url;
    // Started with the test certificate: a verified connection works from the first one.
    expect(await sslInUse(withParams({ sslmode: 'verify-full', sslrootcert: certs.ca }))).toBe(true);
  });

  afterAll(async () => {
    try {
      await cluster?.drop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never reconfigures the shared clusters, and the next run drops a throwaway cluster whose test died (never a live one)', async () => {
    for (const shared of [TEST_POSTGRES_URL, TEST_POSTGRES_URL_2]) {
      const row = await firstRow<{ cert: string }>(shared, "SELECT current_setting('ssl_cert_file') AS cert");
      expect(row?.cert, shared).not.toBe(certs.cert);
    }
    // What a test process killed before its afterAll leaves: a running cluster named for it.
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    const left = await createThrowawayCluster('tls', {}, dead.pid!);
    const listed = async () => (await run('pg_lsclusters', ['--no-header'])).stdout;
    expect(await listed()).toContain(left.name);
    try {
      await dropLeftoverClusters();
      expect(await listed()).not.toContain(left.name);
      // This run's own cluster belongs to a live process: untouched, still serving.
      expect(await listed()).toContain(cluster!.name);
      expect(await sslInUse(withParams({ sslmode: 'verify-full', sslrootcert: certs.ca }))).toBe(true);
    } finally {
      await left.drop().catch(() => undefined);
    }
  });

  it('honours sslmode=verify-full and sslrootcert from the URL', async () => {
    const cfg = loadConfig({
      PROVISIONER_DATABASE_URL: withParams({ sslmode: 'verify-full', sslrootcert: certs.ca }),
    });
    expect(await sslInUse(cfg.provisionerDatabaseUrl)).toBe(true);
  });

  it('honours PGSSLMODE and PGSSLROOTCERT for every Postgres URL that leaves them out', async () => {
    const cfg = loadConfig({
      PROVISIONER_DATABASE_URL: serverUrl,
      POSTGRES_ADMIN_URL: serverUrl,
      POSTGRES_ADMIN_URLS: `local:1=${serverUrl}`,
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: certs.ca,
    });
    expect(await sslInUse(cfg.provisionerDatabaseUrl)).toBe(true);
    for (const url of cfg.postgresClusters.values()) expect(await sslInUse(url)).toBe(true);
    // A URL's own setting wins over the variable.
    const own = loadConfig({
      PROVISIONER_DATABASE_URL: withParams({ sslmode: 'disable' }),
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: certs.ca,
    });
    expect(await sslInUse(own.provisionerDatabaseUrl)).toBe(false);
  });

  it('verify-full checks the host name: a name the certificate does not carry is refused', async () => {
    // 127.0.0.1 and localhost are in the certificate; the same server under another name is not.
    const url = withParams({ sslmode: 'verify-full', sslrootcert: certs.ca }, 'ip6-localhost');
    const err = await sslInUse(url).then(
      () => undefined,
      (e: Error) => e,
    );
    // ip6-localhost may not resolve or listen on this machine: either way it is never a success.
    expect(err).toBeInstanceOf(Error);
  });

  it('a missing CA file or an unknown sslmode is one line naming the variable', () => {
    expect(() =>
      loadConfig({
        PROVISIONER_DATABASE_URL: serverUrl,
        PGSSLROOTCERT: path.join(dir, 'nope.crt'),
      }),
    ).toThrow(
      new ConfigError(
        'PROVISIONER_DATABASE_URL',
        `sslrootcert to name a readable file, got ${path.join(dir, 'nope.crt')} (not found)`,
      ),
    );
    expect(() => loadConfig({ POSTGRES_ADMIN_URL: withParams({ sslmode: 'sometimes' }) })).toThrow(
      /^POSTGRES_ADMIN_URL: expected sslmode one of disable, prefer, require, no-verify, verify-ca, verify-full, got "sometimes"$/,
    );
  });

  it('the worker refuses a server whose certificate the configured CA did not sign: exit 2, one clear line, no retries', async () => {
    const result = await runBin(
      ['worker'],
      {
        PROVISIONER_DATABASE_URL: withParams({ sslmode: 'verify-full', sslrootcert: certs.wrongCa }),
        METRICS_PORT: String(await freePort()),
        REAPER_STARTUP_TIMEOUT: '1m',
      },
      { timeoutMs: 30_000 },
    );
    expect(result.code).toBe(2);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^pool-reaper: PROVISIONER_DATABASE_URL: TLS to the server failed \((self[- ]signed certificate in certificate chain|unable to verify the first certificate)\); check sslmode and sslrootcert/,
    );
    expect(result.stdout).not.toContain('pool_reaper.provisioner_db.unreachable');
  });

  it('tears a tenant database down over verified TLS; with the wrong CA the cluster is refused as a TLS failure', async () => {
    const token = newPoolToken();
    const superPool = new pg.Pool({ connectionString: serverUrl, max: 2 });
    const redisStub = new Redis({ lazyConnect: true });
    try {
      await provisionItem(
        {
          admin: superPool,
          adminUrl: serverUrl,
          redis: redisStub,
          redisUrl: 'redis://127.0.0.1:6379',
        },
        { resourceType: 'postgres', token, providerResourceId: 'local:1' },
      );
      const item = {
        id: randomUUID(),
        resourceType: 'postgres',
        poolToken: token,
        providerResourceId: 'local:1',
      };
      const wrong = createTeardownRegistry({
        postgresClusters: new Map([
          ['local:1', withParams({ sslmode: 'verify-full', sslrootcert: certs.wrongCa })],
        ]),
        redisClusters: new Map(),
        concurrency: 1,
        log: silent,
      });
      try {
        await expect(wrong.teardown(item)).rejects.toThrow(/certificate/);
      } finally {
        await wrong.close();
      }
      const right = createTeardownRegistry({
        postgresClusters: new Map([
          ['local:1', withParams({ sslmode: 'verify-full', sslrootcert: certs.ca })],
        ]),
        redisClusters: new Map(),
        concurrency: 1,
        log: silent,
      });
      try {
        expect((await right.teardown(item)).confirmedFreed).toBe(true);
      } finally {
        await right.close();
      }
      const { rows } = await superPool.query('SELECT 1 FROM pg_database WHERE datname = $1', [`db_${token}`]);
      expect(rows).toEqual([]);
    } finally {
      await superPool.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(`db_${token}`)} WITH (FORCE)`);
      await superPool.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(`usr_${token}`)}`);
      await superPool.end();
      redisStub.disconnect();
    }
  });

  describe('Redis rediss:// with REDIS_TLS_CA_FILE (a TLS-only redis-server started here)', () => {
    let server: ChildProcess | undefined;
    let port: number;
    const admin = () =>
      new Redis(`rediss://127.0.0.1:${port}`, {
        tls: { ca: readFileSync(certs.ca) },
        maxRetriesPerRequest: 1,
      });

    beforeAll(async () => {
      port = await freePort();
      // Its own copy of the key (root's): the Postgres one now belongs to the postgres user.
      copyFileSync(certs.key, path.join(dir, 'redis.key'));
      server = spawn(
        'redis-server',
        [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--tls-cert-file',
          certs.cert,
          '--tls-key-file',
          path.join(dir, 'redis.key'),
          '--tls-ca-cert-file',
          certs.ca,
          '--tls-auth-clients',
          'no',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      const deadline = Date.now() + 10_000;
      for (;;) {
        const probe = new Redis(`rediss://127.0.0.1:${port}`, {
          tls: { ca: readFileSync(certs.ca) },
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        probe.on('error', () => undefined);
        const ok = await probe
          .connect()
          .then(() => probe.ping())
          .then(
            () => true,
            () => false,
          );
        probe.disconnect();
        if (ok) break;
        if (Date.now() > deadline) throw new Error('the TLS redis-server did not start');
        await new Promise((r) => setTimeout(r, 200));
      }
    });
    afterAll(() => {
      if (server?.pid !== undefined && server.exitCode === null) server.kill('SIGTERM');
    });

    it('reaps a Redis item over rediss:// with the configured CA; with another CA the cluster is refused', async () => {
      const cfg = loadConfig({ REDIS_URL: `rediss://127.0.0.1:${port}`, REDIS_TLS_CA_FILE: certs.ca });
      expect(cfg.redisTlsCa).toContain('BEGIN CERTIFICATE');
      const redis = admin();
      const token = newPoolToken();
      try {
        await provisionItem(
          {
            admin: { query: async () => ({}) as pg.QueryResult },
            adminUrl: serverUrl,
            redis,
            redisUrl: `rediss://127.0.0.1:${port}`,
          },
          { resourceType: 'redis', token },
        );
        const item = {
          id: randomUUID(),
          resourceType: 'redis',
          poolToken: token,
          providerResourceId: 'local:0',
        };
        const wrong = createTeardownRegistry({
          postgresClusters: new Map(),
          redisClusters: cfg.redisClusters,
          concurrency: 1,
          log: silent,
          redis: { tlsCa: readFileSync(certs.wrongCa, 'utf8'), connectTimeoutMs: 2_000 },
        });
        try {
          await expect(wrong.teardown(item)).rejects.toThrow();
        } finally {
          await wrong.close();
        }
        expect(await redis.exists(`${token}:k1`)).toBe(1);
        const right = createTeardownRegistry({
          postgresClusters: new Map(),
          redisClusters: cfg.redisClusters,
          concurrency: 1,
          log: silent,
          redis: { tlsCa: cfg.redisTlsCa as string },
        });
        try {
          expect((await right.teardown(item)).confirmedFreed).toBe(true);
        } finally {
          await right.close();
        }
        expect(await redis.keys(`${token}:*`)).toEqual([]);
        expect((await redis.call('ACL', 'USERS')) as string[]).not.toContain(`usr_${token}`);
      } finally {
        redis.disconnect();
      }
    });
  });
});
