import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import {
  ClusterUnreachableError,
  DropRefusedError,
  type RefusalSite,
  UnknownClusterError,
  UnsupportedResourceTypeError,
} from '../../src/teardown/errors';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import { databaseExists, roleExists } from '../helpers/postgres';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import {
  captureLog,
  cleanupToken,
  countingServer,
  eventsNamed,
  itemRef,
  type LogLine,
  seedTargets,
  testClusters,
} from '../helpers/teardown-fixtures';

/** The canary: real infra that a badly guarded teardown of any token below could reach. */
const CANARY = newPoolToken();

interface Row {
  readonly label: string;
  readonly token: string;
  readonly postgres: RefusalSite;
  readonly redis: RefusalSite;
}

const t = (
  label: string,
  token: string,
  postgres: RefusalSite = 'token',
  redis: RefusalSite = postgres,
): Row => ({
  label,
  token,
  postgres,
  redis,
});

const ADVERSARIAL: readonly Row[] = [
  t('empty', ''),
  t('64 bytes', 'a'.repeat(64)),
  t('63 bytes: db_/usr_ name over 63', 'a'.repeat(63), 'database_name', 'redis_user'),
  t('60 bytes: db_ fits, usr_ does not', 'a'.repeat(60), 'role_name', 'redis_user'),
  t('double quote injection', 'x"; DROP DATABASE postgres; --'),
  t('single quote', "pool-'1"),
  t('semicolon', 'pool;1'),
  t('space', 'pool 1'),
  t('only a space', ' '),
  t('star', '*'),
  t('pool-*', 'pool-*'),
  t('canary followed by a star', `${CANARY}*`),
  t('canary stem followed by a star', `${CANARY.slice(0, 8)}*`),
  t('canary with its key separator', `${CANARY}:*`),
  t('canary with a trailing space', `${CANARY} `),
  t('canary with a trailing newline', `${CANARY}\n`),
  t('percent', '%'),
  t('canary stem with percent', `${CANARY.slice(0, 10)}%`),
  t('question mark', 'pool-?'),
  t('bracket', 'pool-[a-z]'),
  t('backslash', 'pool-\\*'),
  t('unicode', 'pööl-1'),
  t('cyrillic look-alike', 'p\u043eol-1'),
  t('zero-width space', 'pool\u200b-1'),
  t('emoji', 'pool-😀'),
  t('postgres', 'postgres'),
  t('template1', 'template1'),
  t('Template0', 'Template0'),
  t('default', 'default'),
  t('DEFAULT', 'DEFAULT'),
  t('root', 'root'),
  t('admin', 'admin'),
  t('doadmin', 'doadmin'),
  t('instant_customers', 'instant_customers'),
  t('instanode_admin', 'instanode_admin'),
  t('DB_POSTGRES', 'DB_POSTGRES'),
  t('usr_default', 'usr_default'),
  t('../x', '../x'),
  t('absolute path', '/etc/passwd'),
  t('newline', 'pool-1\nDROP'),
  t('NUL', 'pool-1\u0000'),
  t('tab', 'pool-1\t'),
  t('shell substitution', '$(reboot)'),
];

const TYPES = ['postgres', 'redis'] as const;

describe('adversarial tokens never reach a server', () => {
  let server: Awaited<ReturnType<typeof countingServer>>;
  let registry: TeardownRegistry;
  let lines: LogLine[];

  beforeAll(async () => {
    server = await countingServer();
    const captured = captureLog();
    lines = captured.lines;
    registry = createTeardownRegistry({
      postgresClusters: new Map([['local:0', `postgres://admin:pw@127.0.0.1:${server.port}/postgres`]]),
      redisClusters: new Map([['local:0', `redis://127.0.0.1:${server.port}`]]),
      concurrency: 2,
      log: captured.log,
      postgres: { connectTimeoutMs: 2_000 },
      redis: { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 },
    });
  });

  afterAll(async () => {
    await registry.close();
    await server.close();
  });

  it('has a table of at least 30 distinct tokens', () => {
    expect(ADVERSARIAL.length).toBeGreaterThanOrEqual(30);
    expect(new Set(ADVERSARIAL.map((r) => r.token)).size).toBe(ADVERSARIAL.length);
  });

  for (const type of TYPES) {
    it.each(ADVERSARIAL)(
      `${type}: $label is refused at its site, audited once, with no connection`,
      async (row) => {
        const before = lines.length;
        // Counted from this test's start: the control case below may have connected already.
        const connections = server.connections();
        const error = await registry.teardown(itemRef(row.token, type)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(DropRefusedError);
        const refusal = error as DropRefusedError;
        expect(refusal.site).toBe(row[type]);
        expect(refusal.retryable).toBe(false);
        const emitted = lines.slice(before);
        expect(emitted).toHaveLength(1);
        expect(emitted[0]).toMatchObject({
          event: 'provisioner.drop.refused',
          msg: 'provisioner.drop.refused',
          token: row.token,
          site: row[type],
          reason: refusal.reason,
          resource_type: type === 'postgres' ? 'RESOURCE_TYPE_POSTGRES' : 'RESOURCE_TYPE_REDIS',
          backend: 'shared',
          caller: 'pool_reaper',
          provider_resource_id: 'local:0',
        });
        // preflight refuses the same way, also audited once.
        expect(() => registry.preflight(itemRef(row.token, type))).toThrow(DropRefusedError);
        expect(lines.slice(before)).toHaveLength(2);
        expect(server.connections() - connections).toBe(0);
      },
    );
  }

  it('unknown cluster ids are refused without a connection and never sent to local:0', async () => {
    const connections = server.connections();
    for (const type of TYPES) {
      for (const provider of ['local:7', 'local:7;pooltok:pool-x']) {
        const before = lines.length;
        const error = await registry
          .teardown(itemRef(newPoolToken(), type, provider))
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnknownClusterError);
        expect(error).toMatchObject({ cluster: 'local:7', retryable: false, name: 'UnknownClusterError' });
        expect(lines.slice(before)).toEqual([
          expect.objectContaining({
            event: 'provisioner.drop.refused',
            site: 'cluster',
            provider_resource_id: provider,
          }),
        ]);
      }
    }
    expect(server.connections() - connections).toBe(0);
  });

  it('mongodb and unknown types are refused as unsupported, without a connection', async () => {
    const before = lines.length;
    const connections = server.connections();
    const mongo = await registry.teardown(itemRef(newPoolToken(), 'mongodb')).catch((e: unknown) => e);
    expect(mongo).toBeInstanceOf(UnsupportedResourceTypeError);
    expect((mongo as Error).message).toMatch(
      /refused as unsupported until a MongoDB backend can be tested for real/,
    );
    const other = await registry.teardown(itemRef(newPoolToken(), 'mysql')).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(UnsupportedResourceTypeError);
    expect(other).toMatchObject({ retryable: false, resourceType: 'mysql' });
    expect(lines.slice(before).map((l) => [l.event, l.site, l.resource_type])).toEqual([
      ['provisioner.drop.refused', 'resource_type', 'RESOURCE_TYPE_MONGODB'],
      ['provisioner.drop.refused', 'resource_type', 'RESOURCE_TYPE_UNSPECIFIED'],
    ]);
    expect(server.connections() - connections).toBe(0);
  });

  it('queue items succeed with nothing to do and no connection', async () => {
    const connections = server.connections();
    const token = newPoolToken();
    expect(await registry.teardown(itemRef(token, 'queue'))).toEqual({
      resourceType: 'queue',
      poolToken: token,
      cluster: 'local:0',
      dropped: [],
      alreadyGone: [],
      remaining: [],
      kept: [],
      confirmedFreed: true,
    });
    expect(server.connections() - connections).toBe(0);
  });

  it('control: a valid token does connect (so the counter works) and fails as cluster-unreachable without a password in logs', async () => {
    // Every zero above was measured by a counter that counts (whatever the order of the tests).
    const before = lines.length;
    const connections = server.connections();
    const pgError = await registry.teardown(itemRef(newPoolToken(), 'postgres')).catch((e: unknown) => e);
    expect(pgError).toBeInstanceOf(ClusterUnreachableError);
    const afterPostgres = server.connections();
    expect(afterPostgres).toBeGreaterThan(connections);
    const redisError = await registry.teardown(itemRef(newPoolToken(), 'redis')).catch((e: unknown) => e);
    expect(redisError).toBeInstanceOf(ClusterUnreachableError);
    expect(server.connections()).toBeGreaterThan(afterPostgres);
    const failed = eventsNamed(lines.slice(before), 'provisioner.drop.failed');
    expect(failed.map((l) => l.action)).toEqual(['connect', 'acl_getuser']);
    expect(JSON.stringify(lines)).not.toContain(':pw@');
  });
});

describe('adversarial tokens against the real services leave the canary alone', () => {
  const targets = seedTargets();
  const redis = testRedis();
  let registry: TeardownRegistry;
  let lines: LogLine[];

  beforeAll(async () => {
    await provisionItem(targets, { resourceType: 'postgres', token: CANARY });
    await provisionItem(targets, { resourceType: 'redis', token: CANARY, keys: 5 });
    const captured = captureLog();
    lines = captured.lines;
    registry = createTeardownRegistry({ ...testClusters(), concurrency: 2, log: captured.log });
  });

  afterAll(async () => {
    await registry.close();
    await cleanupToken(targets, CANARY);
    await targets.close();
    redis.disconnect();
  });

  it('refuses every row for both types and the canary database, role, keys and ACL user survive', async () => {
    for (const type of TYPES) {
      for (const row of ADVERSARIAL) {
        await expect(registry.teardown(itemRef(row.token, type))).rejects.toBeInstanceOf(DropRefusedError);
      }
    }
    expect(eventsNamed(lines, 'provisioner.drop.refused')).toHaveLength(ADVERSARIAL.length * TYPES.length);
    expect(eventsNamed(lines, 'provisioner.drop')).toHaveLength(0);
    expect(await databaseExists(`db_${CANARY}`)).toBe(true);
    expect(await roleExists(`usr_${CANARY}`)).toBe(true);
    expect(await aclUserExists(redis, `usr_${CANARY}`)).toBe(true);
    expect((await keysMatching(redis, `${CANARY}:*`)).sort()).toEqual(
      [1, 2, 3, 4, 5].map((n) => `${CANARY}:k${n}`),
    );
  });
});
