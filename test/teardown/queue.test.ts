import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infraFor, newPoolToken, provisionItem } from '../../src/dev/seed';
import { DropRefusedError, UnknownClusterError } from '../../src/teardown/errors';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import {
  captureLog,
  countingServer,
  eventsNamed,
  itemRef,
  type LogLine,
  seedTargets,
} from '../helpers/teardown-fixtures';

/**
 * Issue 13, item 5: queue (shared NATS) items pass the drop guard and the cluster check like
 * every other type, and their teardown, having nothing to free, never opens a connection.
 */

describe('queue items: guard and cluster check, no connection', () => {
  let server: Awaited<ReturnType<typeof countingServer>>;
  let registry: TeardownRegistry;
  let lines: LogLine[];

  beforeAll(async () => {
    // Every configured URL points at a server that counts connections: none may open.
    server = await countingServer();
    const captured = captureLog();
    lines = captured.lines;
    registry = createTeardownRegistry({
      postgresClusters: new Map([['local:0', `postgres://u:pw@127.0.0.1:${server.port}/postgres`]]),
      redisClusters: new Map([
        ['local:0', `redis://127.0.0.1:${server.port}`],
        ['local:2', `redis://127.0.0.1:${server.port}`],
      ]),
      concurrency: 2,
      log: captured.log,
    });
  });

  afterAll(async () => {
    await registry.close();
    await server.close();
  });

  it.each([
    ['empty', ''],
    ['reserved', 'postgres'],
    ['reserved after a tenant prefix', 'usr_root'],
    ['glob', 'pool-*'],
    ['quote', 'x"; DROP DATABASE postgres; --'],
    ['64 bytes', 'a'.repeat(64)],
    ['newline', 'pool-1\n'],
  ])('a %s token is refused by the guard, audited once, in preflight and teardown', async (_label, token) => {
    const before = lines.length;
    const item = itemRef(token, 'queue');
    expect(() => registry.preflight(item)).toThrow(DropRefusedError);
    const error = await registry.teardown(item).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DropRefusedError);
    expect(error).toMatchObject({ site: 'token', retryable: false });
    expect(lines.slice(before)).toEqual([
      expect.objectContaining({
        event: 'provisioner.drop.refused',
        site: 'token',
        resource_type: 'RESOURCE_TYPE_QUEUE',
      }),
      expect.objectContaining({
        event: 'provisioner.drop.refused',
        site: 'token',
        resource_type: 'RESOURCE_TYPE_QUEUE',
      }),
    ]);
    expect(server.connections()).toBe(0);
  });

  it('an unconfigured cluster id is refused, never taken for the default cluster', async () => {
    for (const provider of ['local:9', 'local:9;pooltok:pool-x', 'elsewhere']) {
      const before = lines.length;
      const item = itemRef(newPoolToken(), 'queue', provider);
      expect(() => registry.preflight(item)).toThrow(UnknownClusterError);
      const error = await registry.teardown(item).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownClusterError);
      expect(error).toMatchObject({ backend: 'queue', retryable: false });
      expect(eventsNamed(lines.slice(before), 'provisioner.drop.refused')).toHaveLength(2);
      expect(lines.slice(before)[0]).toMatchObject({ site: 'cluster', provider_resource_id: provider });
    }
    expect(server.connections()).toBe(0);
  });

  it('a valid item on a configured cluster (of either backend) is freed at once, with no connection and no drop', async () => {
    for (const provider of ['local:0', '', 'local:2', 'local:0;pooltok:pool-x']) {
      const token = newPoolToken();
      const before = lines.length;
      registry.preflight(itemRef(token, 'queue', provider));
      expect(await registry.teardown(itemRef(token, 'queue', provider))).toEqual({
        resourceType: 'queue',
        poolToken: token,
        cluster: provider === '' || provider.startsWith('local:0') ? 'local:0' : 'local:2',
        dropped: [],
        alreadyGone: [],
        remaining: [],
        kept: [],
        confirmedFreed: true,
      });
      // Nothing destructive ran, so nothing is announced.
      expect(lines.slice(before)).toEqual([]);
    }
    expect(server.connections()).toBe(0);
  });
});

describe('why a queue teardown has nothing to free', () => {
  const targets = seedTargets();
  afterAll(() => targets.close());

  it('seed gives a queue item a credential only in its connection_url: no database, role, ACL user or key', async () => {
    const token = newPoolToken();
    const item = await provisionItem(targets, { resourceType: 'queue', token });
    // The credential is the row's: user usr_<token> and a secret, on the shared NATS URL.
    const url = new URL(item.connectionUrl);
    expect(url.protocol).toBe('nats:');
    expect(decodeURIComponent(url.username)).toBe(`usr_${token}`);
    expect(url.password.length).toBeGreaterThan(10);
    // Nothing was created anywhere a teardown could reach: deleting the row frees it all.
    expect(await infraFor(token)).toEqual({
      database: false,
      databaseInvalid: false,
      role: false,
      aclUser: false,
      legacyAclUser: false,
      keys: 0,
    });
  });
});
