import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { infraFor, type ProvisionedItem, provisionItem } from '../../src/dev/seed';
import { ClusterAccessError, ForceBlockedError } from '../../src/teardown/errors';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { adminQuery, databaseExists, roleExists, urlForDatabase } from '../helpers/postgres';
import {
  captureLog,
  cleanupToken,
  eventsNamed,
  itemRef,
  type LogLine,
  seedTargets,
  testClusters,
} from '../helpers/teardown-fixtures';

const targets = seedTargets();
const infraTargets = { adminUrl: TEST_POSTGRES_URL, redisUrl: TEST_REDIS_URL };
const tokens: string[] = [];
let registry: TeardownRegistry;
let lines: LogLine[];

async function seed(): Promise<ProvisionedItem> {
  const item = await provisionItem(targets, { resourceType: 'postgres' });
  tokens.push(item.poolToken);
  return item;
}

const secretOf = (item: ProvisionedItem) => new URL(item.connectionUrl).password;

beforeAll(() => {
  const captured = captureLog();
  lines = captured.lines;
  registry = createTeardownRegistry({ ...testClusters(), concurrency: 4, log: captured.log });
});

afterEach(async () => {
  for (const token of tokens.splice(0)) await cleanupToken(targets, token);
});

afterAll(async () => {
  await registry.close();
  await targets.close();
});

describe('postgres teardown', () => {
  it('drops the database and the role, confirms them gone, and is idempotent', async () => {
    const item = await seed();
    expect(await infraFor(item.poolToken, infraTargets)).toMatchObject({ database: true, role: true });
    const ref = itemRef(item.poolToken, 'postgres');
    const steps: string[] = [];

    const first = await registry.teardown(ref, { onProgress: (s) => steps.push(s) });
    expect(first).toEqual({
      resourceType: 'postgres',
      poolToken: item.poolToken,
      cluster: 'local:0',
      dropped: [`database ${item.databaseName}`, `role ${item.username}`],
      alreadyGone: [],
      remaining: [],
      kept: [],
      confirmedFreed: true,
    });
    expect(await databaseExists(item.databaseName)).toBe(false);
    expect(await roleExists(item.username)).toBe(false);
    expect(steps).toEqual(
      expect.arrayContaining([
        'connect',
        'revoke_connect',
        'terminate_backends',
        'drop_database',
        'drop_role',
        'confirm',
      ]),
    );
    expect(steps.indexOf('drop_database')).toBeLessThan(steps.indexOf('drop_role'));

    const announced = eventsNamed(lines, 'provisioner.drop').filter((l) => l.token === item.poolToken);
    const second = await registry.teardown(ref);
    expect(second).toMatchObject({
      dropped: [],
      alreadyGone: [`database ${item.databaseName}`, `role ${item.username}`],
      remaining: [],
      confirmedFreed: true,
    });
    // The second run issued no destructive statement, so it announced none.
    expect(eventsNamed(lines, 'provisioner.drop').filter((l) => l.token === item.poolToken)).toHaveLength(
      announced.length,
    );
    // The item's password (its connection_url secret) never reached a log line.
    expect(JSON.stringify(lines)).not.toContain(secretOf(item));
  });

  it('is not blocked by sessions connected to the database, even one inside a transaction', async () => {
    const item = await seed();
    const asRole = new pg.Client({ connectionString: item.connectionUrl });
    const asAdmin = new pg.Client({ connectionString: urlForDatabase(TEST_POSTGRES_URL, item.databaseName) });
    const errors: Error[] = [];
    for (const c of [asRole, asAdmin]) {
      c.on('error', (e) => errors.push(e));
      await c.connect();
    }
    await asAdmin.query('BEGIN');
    await asAdmin.query('CREATE TABLE t (id int)');
    await asAdmin.query('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    await asRole.query('BEGIN');
    await asRole.query('CREATE TEMP TABLE mine (id int)');
    const { rows } = await adminQuery<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1',
      [item.databaseName],
    );
    expect(Number(rows[0]?.n)).toBe(2);

    const result = await registry.teardown(itemRef(item.poolToken, 'postgres'));
    expect(result.confirmedFreed).toBe(true);
    expect(await databaseExists(item.databaseName)).toBe(false);
    expect(await roleExists(item.username)).toBe(false);
    // Both sessions were ended by the teardown.
    await expect(asRole.query('SELECT 1')).rejects.toThrow();
    await expect(asAdmin.query('SELECT 1')).rejects.toThrow();
    await Promise.allSettled([asRole.end(), asAdmin.end()]);
  });

  it('drops again a database left invalid by an interrupted drop (datconnlimit = -2)', async () => {
    const item = await seed();
    await adminQuery('UPDATE pg_database SET datconnlimit = -2 WHERE datname = $1', [item.databaseName]);
    expect(await infraFor(item.poolToken, infraTargets)).toMatchObject({
      database: true,
      databaseInvalid: true,
    });
    const result = await registry.teardown(itemRef(item.poolToken, 'postgres'));
    expect(result.dropped).toEqual([`database ${item.databaseName}`, `role ${item.username}`]);
    expect(await databaseExists(item.databaseName)).toBe(false);
    expect(await roleExists(item.username)).toBe(false);
    const drop = eventsNamed(lines, 'provisioner.drop').find(
      (l) => l.token === item.poolToken && l.action === 'drop_database',
    );
    expect(drop).toMatchObject({ invalid: true });
  });

  it('never attempts the role when the database drop fails; the partial result says what is left', async () => {
    const item = await seed();
    // An admin that may manage roles but does not own the database: DROP DATABASE fails 42501.
    const weakAdmin = `prt_weak_admin_${uniqueSuffix()}`;
    await adminQuery(`CREATE ROLE ${pg.escapeIdentifier(weakAdmin)} LOGIN CREATEROLE`);
    const url = new URL(TEST_POSTGRES_URL);
    url.username = weakAdmin;
    const captured = captureLog();
    const weak = createTeardownRegistry({
      postgresClusters: new Map([['local:0', url.toString()]]),
      redisClusters: new Map(),
      concurrency: 1,
      log: captured.log,
    });
    try {
      const error = await weak.teardown(itemRef(item.poolToken, 'postgres')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClusterAccessError);
      const e = error as ClusterAccessError;
      expect(e.code).toBe('42501');
      expect(e.retryable).toBe(false);
      // A missing privilege is the admin role's, for every item of the cluster: never quarantining.
      expect(e.category).toBe('cluster');
      expect(e.partial).toMatchObject({
        dropped: [],
        remaining: [`database ${item.databaseName}`, `role ${item.username}`],
        confirmedFreed: false,
      });
      expect(await databaseExists(item.databaseName)).toBe(true);
      expect(await roleExists(item.username)).toBe(true);
      const actions = eventsNamed(captured.lines, 'provisioner.drop').map((l) => l.action);
      expect(actions).toContain('drop_database');
      expect(actions).not.toContain('drop_role');
      expect(eventsNamed(captured.lines, 'provisioner.drop.failed').at(-1)).toMatchObject({
        action: 'drop_database',
        target: item.databaseName,
        outcome: 'deprovision_err',
        error_type: 'ClusterAccessError',
      });
    } finally {
      await weak.close();
      await adminQuery(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(weakAdmin)}`);
    }
  });

  it('reports a database held by a logical replication subscription as ForceBlockedError, without retrying', async () => {
    const item = await seed();
    const inDb = new pg.Client({ connectionString: urlForDatabase(TEST_POSTGRES_URL, item.databaseName) });
    await inDb.connect();
    const sub = `sub_${uniqueSuffix()}`;
    try {
      await inDb.query(
        `CREATE SUBSCRIPTION ${sub} CONNECTION 'host=127.0.0.1 dbname=postgres' PUBLICATION nothing WITH (connect = false)`,
      );
    } finally {
      await inDb.end();
    }
    const before = eventsNamed(lines, 'provisioner.drop').length;
    try {
      const error = await registry.teardown(itemRef(item.poolToken, 'postgres')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ForceBlockedError);
      const e = error as ForceBlockedError;
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/subscription/);
      expect(e.partial?.remaining).toEqual([`database ${item.databaseName}`, `role ${item.username}`]);
      expect(await databaseExists(item.databaseName)).toBe(true);
      expect(await roleExists(item.username)).toBe(true);
      const announced = eventsNamed(lines, 'provisioner.drop').slice(before);
      expect(announced.filter((l) => l.action === 'drop_database')).toHaveLength(1);
      expect(announced.filter((l) => l.action === 'drop_role')).toHaveLength(0);
    } finally {
      const cleanup = new pg.Client({
        connectionString: urlForDatabase(TEST_POSTGRES_URL, item.databaseName),
      });
      await cleanup.connect();
      await cleanup.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
      await cleanup.query(`DROP SUBSCRIPTION ${sub}`);
      await cleanup.end();
    }
  });

  it('tears down an item whose role is already gone (database only)', async () => {
    const item = await seed();
    await adminQuery(
      `REVOKE ALL ON DATABASE ${pg.escapeIdentifier(item.databaseName)} FROM ${pg.escapeIdentifier(item.username)}`,
    );
    await adminQuery(`DROP ROLE ${pg.escapeIdentifier(item.username)}`);
    const result = await registry.teardown(itemRef(item.poolToken, 'postgres'));
    expect(result).toMatchObject({
      dropped: [`database ${item.databaseName}`],
      alreadyGone: [`role ${item.username}`],
      confirmedFreed: true,
    });
    expect(await databaseExists(item.databaseName)).toBe(false);
  });
});
