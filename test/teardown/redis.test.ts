import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import { TEST_REDIS_URL } from '../helpers/env';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
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
const redis = testRedis();
const tokens: string[] = [];
const extraUsers: string[] = [];
const extraKeys: string[] = [];
let registry: TeardownRegistry;
let lines: LogLine[];

/** A token whose first 8 characters are random too, so legacy names do not collide across runs. */
function freshToken(): string {
  const token = newPoolToken().replace('pool-', `p${Math.random().toString(36).slice(2, 5)}-`);
  tokens.push(token);
  return token;
}

beforeAll(() => {
  const captured = captureLog();
  lines = captured.lines;
  registry = createTeardownRegistry({
    ...testClusters(),
    concurrency: 2,
    log: captured.log,
    // Small batches so the SCAN loop really iterates.
    redis: { scanCount: 50 },
  });
});

afterEach(async () => {
  for (const token of tokens.splice(0)) await cleanupToken(targets, token);
  for (const user of extraUsers.splice(0)) await redis.call('ACL', 'DELUSER', user);
  if (extraKeys.length) await redis.unlink(...extraKeys.splice(0));
});

afterAll(async () => {
  await registry.close();
  await targets.close();
  redis.disconnect();
});

describe('redis teardown', () => {
  it('deletes the ACL user and every <token>:* key, leaves neighbours and default alone, and is idempotent', async () => {
    const token = freshToken();
    const item = await provisionItem(targets, { resourceType: 'redis', token, keys: 240 });
    const neighbours = [`${token}x:k`, `other:${token}:k`, `${token}`, `x${token}:k`];
    for (const key of neighbours) await redis.set(key, 'keep');
    extraKeys.push(...neighbours);
    const defaultBefore = await redis.call('ACL', 'GETUSER', 'default');
    expect(await aclUserExists(redis, item.username)).toBe(true);

    const result = await registry.teardown(itemRef(token, 'redis'));
    expect(result).toEqual({
      resourceType: 'redis',
      poolToken: token,
      cluster: 'local:0',
      dropped: [`acl user usr_${token}`, `keys ${token}:* (240)`],
      alreadyGone: [`acl user usr_${token.slice(0, 8)} (legacy)`],
      remaining: [],
      kept: [],
      confirmedFreed: true,
    });
    expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
    expect(await aclUserExists(redis, item.username)).toBe(false);
    for (const key of neighbours) expect(await redis.get(key)).toBe('keep');
    expect(await redis.call('ACL', 'GETUSER', 'default')).toEqual(defaultBefore);
    // 240 keys in SCAN batches of ~50: several UNLINKs, each announced.
    const unlinks = eventsNamed(lines, 'provisioner.drop').filter(
      (l) => l.token === token && l.action === 'unlink_keys',
    );
    expect(unlinks.length).toBeGreaterThan(1);
    expect(unlinks.reduce((n, l) => n + Number(l.keys), 0)).toBe(240);

    const again = await registry.teardown(itemRef(token, 'redis'));
    expect(again).toMatchObject({
      dropped: [],
      alreadyGone: [`acl user usr_${token}`, `acl user usr_${token.slice(0, 8)} (legacy)`, `keys ${token}:*`],
      confirmedFreed: true,
    });
    expect(JSON.stringify(lines)).not.toContain(new URL(item.connectionUrl).password);
  });

  it('keeps a legacy user whose key patterns cover other tokens, and reports it', async () => {
    const token = freshToken();
    await provisionItem(targets, { resourceType: 'redis', token });
    const legacy = `usr_${token.slice(0, 8)}`;
    extraUsers.push(legacy);
    await redis.call('ACL', 'SETUSER', legacy, 'on', '>x', `~${token.slice(0, 8)}*`, '+@all');
    const sibling = `${token.slice(0, 8)}-sibling:k`;
    await redis.set(sibling, 'keep');
    extraKeys.push(sibling);

    const result = await registry.teardown(itemRef(token, 'redis'));
    expect(result.confirmedFreed).toBe(true);
    expect(result.kept).toEqual([
      `acl user ${legacy} (legacy) (key patterns "~${token.slice(0, 8)}*" are not exactly "~${token}:*")`,
    ]);
    expect(await aclUserExists(redis, legacy)).toBe(true);
    expect(await aclUserExists(redis, `usr_${token}`)).toBe(false);
    expect(await redis.get(sibling)).toBe('keep');
    const deleted = eventsNamed(lines, 'provisioner.drop')
      .filter((l) => l.token === token && l.action === 'acl_deluser')
      .map((l) => l.target);
    expect(deleted).toEqual([`usr_${token}`]);
  });

  it('keeps a legacy user with this token pattern plus another one', async () => {
    const token = freshToken();
    const legacy = `usr_${token.slice(0, 8)}`;
    extraUsers.push(legacy);
    await redis.call('ACL', 'SETUSER', legacy, 'on', '>x', `~${token}:*`, '~other:*', '+@all');
    const result = await registry.teardown(itemRef(token, 'redis'));
    expect(result.kept).toHaveLength(1);
    expect(await aclUserExists(redis, legacy)).toBe(true);
  });

  it('deletes a legacy user owned only by this token', async () => {
    const token = freshToken();
    await provisionItem(targets, { resourceType: 'redis', token });
    const legacy = `usr_${token.slice(0, 8)}`;
    extraUsers.push(legacy);
    await redis.call('ACL', 'SETUSER', legacy, 'on', '>x', `~${token}:*`, '+@all');

    const result = await registry.teardown(itemRef(token, 'redis'));
    expect(result.dropped).toEqual([
      `acl user usr_${token}`,
      `acl user ${legacy} (legacy)`,
      `keys ${token}:* (3)`,
    ]);
    expect(result.kept).toEqual([]);
    expect(await aclUserExists(redis, legacy)).toBe(false);
    expect(await aclUserExists(redis, `usr_${token}`)).toBe(false);
  });

  it('ends the sessions of the deleted user', async () => {
    const token = freshToken();
    const item = await provisionItem(targets, { resourceType: 'redis', token });
    const url = new URL(TEST_REDIS_URL);
    url.username = item.username;
    url.password = new URL(item.connectionUrl).password;
    const Redis = (await import('ioredis')).default;
    const asItem = new Redis(url.toString(), { maxRetriesPerRequest: 0, retryStrategy: () => null });
    asItem.on('error', () => {});
    expect(await asItem.set(`${token}:live`, '1')).toBe('OK');
    await registry.teardown(itemRef(token, 'redis'));
    await expect(asItem.set(`${token}:after`, '1')).rejects.toThrow();
    expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
    asItem.disconnect();
  });
});
