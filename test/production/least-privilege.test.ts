import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Worker } from '@temporalio/worker';
import Redis from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { insertPoolItemRow, newPoolToken, provisionItem } from '../../src/dev/seed';
import { createMetrics } from '../../src/metrics';
import type { PassSummary } from '../../src/shared/types';
import { PoolStore } from '../../src/store/pool-store';
import { MIGRATIONS } from '../../src/store/schema';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown';
import { TEST_POSTGRES_URL, TEST_POSTGRES_URL_2, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { CapturedLog, TEST_PASS_OPTIONS, TEST_SETTINGS } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { connectTestTemporal, createTestWorker, type TestTemporal, testTaskQueue } from '../helpers/temporal';

const run = promisify(execFile);
const BIN = path.resolve(process.cwd(), 'bin', 'pool-reaper.js');
const HOUR = 3_600_000;

/** `url` with another user (trust auth here: the role, not a password, is what is tested). */
const asRole = (url: string, role: string) => {
  const u = new URL(url);
  u.username = role;
  u.password = '';
  return u.toString();
};

async function psql(url: string, vars: Record<string, string>, file: string): Promise<string> {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  args.push('-f', path.resolve(process.cwd(), file));
  const { stdout } = await run('psql', args);
  return stdout;
}

async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  params: unknown[] = [],
) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** One tenant cluster as the provisioner and the reaper see it under least privilege. */
interface TenantCluster {
  readonly id: string;
  readonly superUrl: string;
  /** The provisioner's role: creates tenant roles and databases, so it owns the databases. */
  readonly tenantsRole: string;
  readonly adminRole: string;
  readonly provisioner: pg.Pool;
}

/**
 * Issue 19, item 1: the roles in deploy/postgres and deploy/redis, created for real on both
 * local clusters and Redis, run real passes: tenant items are reaped, and a database owned by
 * anyone but the provisioner is not dropped even when a failed row names it.
 */
describe('least privilege: deploy/postgres/*.sql and deploy/redis/reaper-acl.sh on the real clusters', () => {
  const s = uniqueSuffix();
  const clusters: TenantCluster[] = [
    { id: 'local:0', superUrl: TEST_POSTGRES_URL },
    { id: 'local:1', superUrl: TEST_POSTGRES_URL_2 },
  ].map(({ id, superUrl }) => ({
    id,
    superUrl,
    tenantsRole: `prt_tenants_${s}`,
    adminRole: `prt_reaper_admin_${s}`,
    provisioner: new pg.Pool({ connectionString: asRole(superUrl, `prt_tenants_${s}`), max: 2 }),
  }));
  const itemsOwner = `prt_items_owner_${s}`;
  const reaperRole = `prt_reaper_${s}`;
  const migrateRole = `prt_reaper_migrate_${s}`;
  const canaryOwner = `prt_canary_owner_${s}`;
  const redisUser = `prt-reaper-${s}`;
  const redisPassword = `pw-${s}`;
  const redis = testRedis();
  const tokens: string[] = [];

  let db: TestDatabase;
  let temporal: TestTemporal;
  let store: PoolStore;
  let registry: TeardownRegistry;
  let worker: Worker;
  let running: Promise<void>;
  let log: CapturedLog;
  const taskQueue = testTaskQueue('least_privilege');

  const runPass = async (): Promise<PassSummary> => {
    const handle = await temporal.client.workflow.start('reapPass', {
      taskQueue,
      workflowId: `${taskQueue}-pass-${uniqueSuffix()}`,
      args: [{ ...TEST_PASS_OPTIONS }],
    });
    return (await handle.result()) as PassSummary;
  };

  beforeAll(async () => {
    // Tenant clusters: the provisioner's role, then deploy/postgres/tenant-cluster.sql.
    for (const c of clusters) {
      await sql(c.superUrl, `CREATE ROLE ${c.tenantsRole} LOGIN CREATEDB CREATEROLE`);
      await psql(
        c.superUrl,
        { tenant_owner: c.tenantsRole, admin_role: c.adminRole },
        'deploy/postgres/tenant-cluster.sql',
      );
    }
    // The provisioner database: pool_items created and owned by the provisioner's own role.
    db = await createTestDatabase('least_privilege', { migrate: false });
    await sql(db.url, `CREATE ROLE ${itemsOwner} LOGIN`);
    await sql(db.url, `GRANT CREATE ON SCHEMA public TO ${itemsOwner}`);
    for (const statement of MIGRATIONS[0]?.statements ?? []) await sql(asRole(db.url, itemsOwner), statement);
    await psql(
      db.url,
      { items_owner: itemsOwner, reaper_role: reaperRole, migrate_role: migrateRole },
      'deploy/postgres/provisioner-db.sql',
    );
    // Redis: the reaper's ACL user.
    await run(path.resolve(process.cwd(), 'deploy/redis/reaper-acl.sh'), [redisUser], {
      env: { ...process.env, REDIS_ADMIN_URL: TEST_REDIS_URL, REAPER_REDIS_PASSWORD: redisPassword },
    });

    temporal = await connectTestTemporal();
  });

  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await registry?.close();
    await store?.close();
    await temporal?.close();
    for (const c of clusters) {
      await c.provisioner.end();
      for (const token of tokens) {
        await sql(c.superUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(`db_${token}`)} WITH (FORCE)`);
        await sql(c.superUrl, `DROP ROLE IF EXISTS ${pg.escapeIdentifier(`usr_${token}`)}`);
      }
      for (const role of [c.adminRole, c.tenantsRole, canaryOwner]) {
        await sql(c.superUrl, `DROP OWNED BY ${role} CASCADE`).catch(() => undefined);
        await sql(c.superUrl, `DROP ROLE IF EXISTS ${role}`);
      }
    }
    await db?.drop();
    for (const role of [reaperRole, migrateRole, itemsOwner]) {
      await sql(TEST_POSTGRES_URL, `DROP ROLE IF EXISTS ${role}`);
    }
    await redis.call('ACL', 'DELUSER', redisUser);
    for (const token of tokens) {
      await redis.call('ACL', 'DELUSER', `usr_${token}`);
      const keys = await keysMatching(redis, `${token}:*`);
      if (keys.length) await redis.unlink(...keys);
    }
    redis.disconnect();
  });

  it('creates roles that are not superusers, with only the grants the scripts name', async () => {
    for (const c of clusters) {
      const [admin] = await sql<Record<string, boolean>>(
        c.superUrl,
        `SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
                pg_has_role($1, $2, 'USAGE') AS owner_member,
                pg_has_role($1, 'pg_signal_backend', 'USAGE') AS signal
           FROM pg_roles WHERE rolname = $1`,
        [c.adminRole, c.tenantsRole],
      );
      expect(admin).toEqual({
        rolsuper: false,
        rolcreaterole: true,
        rolcreatedb: false,
        rolreplication: false,
        rolbypassrls: false,
        owner_member: true,
        signal: true,
      });
    }
    const privileges = await sql<{ privilege_type: string }>(
      db.url,
      `SELECT privilege_type FROM information_schema.role_table_grants
        WHERE grantee = $1 AND table_name = 'pool_items' ORDER BY 1`,
      [reaperRole],
    );
    expect(privileges.map((p) => p.privilege_type)).toEqual(['DELETE', 'SELECT']);
    const acl = (await redis.call('ACL', 'GETUSER', redisUser)) as unknown[];
    const commands = String(acl[acl.indexOf('commands') + 1]);
    expect(commands.startsWith('-@all')).toBe(true);
  });

  it('`pool-reaper migrate` runs as the migrate role and hands the reaper tables (only) to the worker role', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'migrate'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        PROVISIONER_DATABASE_URL: asRole(db.url, reaperRole),
        MIGRATE_DATABASE_URL: asRole(db.url, migrateRole),
        LOG_LEVEL: 'warn',
      },
    });
    expect(stdout).toMatch(/^schema at version \d+ \(applied 1, 2/);
    const owners = await sql<{ relname: string; owner: string }>(
      db.url,
      `SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class
        WHERE relkind IN ('r', 'i') AND relnamespace = 'public'::regnamespace ORDER BY 1`,
    );
    for (const { relname, owner } of owners) {
      const expected = relname.startsWith('pool_reaper_')
        ? reaperRole
        : relname === 'pool_items' || relname.startsWith('idx_pool_ready') || relname === 'pool_items_pkey'
          ? itemsOwner
          : undefined;
      if (expected !== undefined) expect({ relname, owner }).toEqual({ relname, owner: expected });
    }
    // The indexes on pool_items exist (built by the migrate role through its membership).
    expect(owners.map((o) => o.relname)).toEqual(
      expect.arrayContaining(['idx_pool_reaper_stale', 'idx_pool_reaper_failed_since']),
    );
    // Running it again is a no-op.
    const again = await run(process.execPath, [BIN, 'migrate'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        PROVISIONER_DATABASE_URL: asRole(db.url, reaperRole),
        MIGRATE_DATABASE_URL: asRole(db.url, migrateRole),
      },
    });
    expect(again.stdout).toMatch(/\(up to date\)/);
  });

  describe('passes with the least-privilege roles', () => {
    beforeAll(async () => {
      log = new CapturedLog();
      store = PoolStore.connect(asRole(db.url, reaperRole), 8);
      registry = createTeardownRegistry({
        postgresClusters: new Map(clusters.map((c) => [c.id, asRole(c.superUrl, c.adminRole)])),
        redisClusters: new Map([
          ['local:0', TEST_REDIS_URL.replace('redis://', `redis://${redisUser}:${redisPassword}@`)],
        ]),
        concurrency: 4,
        log: log.logger,
      });
      const metrics = createMetrics(undefined, { defaultMetrics: false });
      worker = await createTestWorker(temporal, {
        taskQueue,
        activities: createActivities({
          store,
          teardown: registry,
          settings: TEST_SETTINGS,
          metrics,
          log: log.logger,
        }),
      });
      running = worker.run();
    });

    it('reaps tenant databases, roles, Redis keys and users on both clusters', async () => {
      const items = [];
      for (const c of clusters) {
        const token = newPoolToken();
        tokens.push(token);
        const item = await provisionItem(
          { admin: c.provisioner, adminUrl: c.superUrl, redis, redisUrl: TEST_REDIS_URL },
          { resourceType: 'postgres', token, providerResourceId: c.id },
        );
        items.push({ ...item, superUrl: c.superUrl });
      }
      const redisToken = newPoolToken();
      tokens.push(redisToken);
      const redisItem = await provisionItem(
        { admin: clusters[0]!.provisioner, adminUrl: TEST_POSTGRES_URL, redis, redisUrl: TEST_REDIS_URL },
        { resourceType: 'redis', token: redisToken },
      );
      for (const item of [...items, redisItem]) {
        await insertPoolItemRow(db.pool, { ...item, status: 'failed', ageMs: HOUR });
      }

      const summary = await runPass();
      expect(summary.errors).toEqual([]);
      expect(summary.reaped).toBe(3);
      for (const item of items) {
        const [left] = await sql<{ db: boolean; role: boolean }>(
          item.superUrl,
          `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS db,
                  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
          [item.databaseName, item.username],
        );
        expect(left).toEqual({ db: false, role: false });
      }
      expect(await keysMatching(redis, `${redisToken}:*`)).toEqual([]);
      expect(await aclUserExists(redis, `usr_${redisToken}`)).toBe(false);
      const { rows } = await db.pool.query('SELECT 1 FROM pool_items');
      expect(rows).toEqual([]);
    });

    it('cannot drop a canary database owned by another role, even when a failed row names it', async () => {
      const token = newPoolToken();
      tokens.push(token);
      const canary = `db_${token}`;
      await sql(TEST_POSTGRES_URL, `CREATE ROLE ${canaryOwner} NOLOGIN`);
      await sql(TEST_POSTGRES_URL, `CREATE DATABASE ${pg.escapeIdentifier(canary)} OWNER ${canaryOwner}`);
      await insertPoolItemRow(db.pool, {
        resourceType: 'postgres',
        poolToken: token,
        connectionUrl: `postgres://usr_${token}:not-a-real-secret@127.0.0.1:5432/${canary}`,
        databaseName: canary,
        username: `usr_${token}`,
        status: 'failed',
        ageMs: HOUR,
      });

      const summary = await runPass();
      expect(summary.reaped).toBe(0);
      expect(summary.errors.map((e) => e.poolToken)).toEqual([token]);
      expect(summary.errors[0]?.message).toMatch(/must be owner of database/);
      const [still] = await sql<{ owner: string }>(
        TEST_POSTGRES_URL,
        'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
        [canary],
      );
      expect(still).toEqual({ owner: canaryOwner });
      // The row stays for an operator: nothing was freed, so nothing is forgotten.
      const { rows } = await db.pool.query('SELECT status FROM pool_items WHERE pool_token = $1', [token]);
      expect(rows).toEqual([{ status: 'failed' }]);
    });

    it('the Redis user is refused every command the teardown does not send, and keys outside pool-*', async () => {
      const reaper = new Redis(TEST_REDIS_URL.replace('redis://', `redis://${redisUser}:${redisPassword}@`), {
        maxRetriesPerRequest: 1,
      });
      try {
        await expect(reaper.flushall()).rejects.toThrow(/NOPERM/);
        await expect(reaper.call('CONFIG', 'GET', 'dir')).rejects.toThrow(/NOPERM/);
        await expect(reaper.call('ACL', 'SETUSER', `x-${s}`, 'on')).rejects.toThrow(/NOPERM/);
        await expect(reaper.get(`pool-${s}:k1`)).rejects.toThrow(/NOPERM/);
        await expect(reaper.unlink(`not-pool-${s}`)).rejects.toThrow(/NOPERM/);
        expect(await reaper.unlink(`pool-${s}:nothing`)).toBe(0);
      } finally {
        reaper.disconnect();
      }
    });
  });
});
