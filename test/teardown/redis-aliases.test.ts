import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { provisionItem } from '../../src/dev/seed';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import {
  cleanupToken,
  createTimeline,
  eventsNamed,
  itemRef,
  seedTargets,
  type TimelineEntry,
  testClusters,
} from '../helpers/teardown-fixtures';

/**
 * Issue 13, items 3 and 4: the names a Redis item shares with others.
 *
 * 3. A valid token whose legacy alias `usr_<first 8 characters>` is a reserved name
 *    (`postgres-…` gives `usr_postgres`): that one alias is refused (audited, never touched),
 *    the rest of the item is torn down and confirmed. Before, the whole item was refused and
 *    its own ACL user and keys leaked for good.
 * 4. A token of 8 characters or fewer: its own ACL user `usr_<token>` IS the legacy alias that
 *    every longer token with the same first 8 characters shares. It is deleted only when its
 *    key patterns are exactly this token's, like any legacy alias.
 */

const targets = seedTargets();
const redis = testRedis();
const tokens: string[] = [];
const extraUsers: string[] = [];
const extraKeys: string[] = [];
let registry: TeardownRegistry;
let timeline: ReturnType<typeof createTimeline>;

beforeAll(() => {
  timeline = createTimeline();
  registry = createTeardownRegistry({ ...testClusters(), concurrency: 2, log: timeline.log });
});

afterEach(async () => {
  for (const token of tokens.splice(0)) await cleanupToken(targets, token);
  for (const user of extraUsers.splice(0)) await redis.call('ACL', 'DELUSER', user);
  if (extraKeys.length) await redis.unlink(...extraKeys.splice(0));
});

afterAll(async () => {
  timeline.restore();
  await registry.close();
  await targets.close();
  redis.disconnect();
});

/** Redis commands this process sent that name `user` as an argument. */
const commandsNaming = (entries: readonly TimelineEntry[], user: string) =>
  entries.filter((e) => e.kind === 'redis' && e.text.split(' ').includes(user)).map((e) => e.text);

/** 8 random characters from the token charset (lower case and digits, so never reserved). */
const shortToken = (length = 8) => `q${randomBytes(8).toString('hex')}`.slice(0, length).replace(/^./, 'q');

describe('item 3: a valid token whose legacy alias is a reserved name', () => {
  it.each([
    ['postgres', 'usr_postgres', 'reserved'],
    ['usr_root', 'usr_usr_root', 'reserved_after_prefix'],
  ])('%s…: refuses only the alias %s, tears down and confirms the rest', async (stem, alias, reason) => {
    const token = `${stem}-${randomUUID()}`;
    tokens.push(token);
    await provisionItem(targets, { resourceType: 'redis', token, keys: 4 });
    // Were the alias not reserved, this user would be deleted: its only keys are this token's.
    const existed = await aclUserExists(redis, alias);
    if (!existed) {
      extraUsers.push(alias);
      await redis.call('ACL', 'SETUSER', alias, 'on', '>x', `~${token}:*`, '+@all');
    }
    const aliasBefore = await redis.call('ACL', 'GETUSER', alias);
    const item = itemRef(token, 'redis');
    const firstEntry = timeline.entries.length;
    const firstLine = timeline.lines.length;

    registry.preflight(item);
    const result = await registry.teardown(item);
    const sent = commandsNaming(timeline.entries.slice(firstEntry), alias);

    expect(result.confirmedFreed).toBe(true);
    expect(result.dropped).toEqual([`acl user usr_${token}`, `keys ${token}:* (4)`]);
    expect(result.remaining).toEqual([]);
    expect(result.kept).toEqual([
      expect.stringMatching(
        new RegExp(`^acl user ${alias} \\(legacy\\) \\(refused by the drop guard: .*reserved`),
      ),
    ]);
    expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
    expect(await aclUserExists(redis, `usr_${token}`)).toBe(false);
    // The alias was never touched: not even read.
    expect(await redis.call('ACL', 'GETUSER', alias)).toEqual(aliasBefore);
    expect(sent).toEqual([]);
    // One refusal line for the alias (the teardown's; preflight does not refuse the item).
    const lines = timeline.lines.slice(firstLine);
    expect(eventsNamed(lines, 'provisioner.drop.refused')).toEqual([
      expect.objectContaining({ token, site: 'redis_user', reason, resource_type: 'RESOURCE_TYPE_REDIS' }),
    ]);
    expect(
      eventsNamed(lines, 'provisioner.drop')
        .map((l) => l.target)
        .filter((t) => t === alias),
    ).toEqual([]);
  });
});

describe('item 4: a token of 8 characters or fewer, whose own user is a shared legacy name', () => {
  it.each([8, 5])('%i characters, user owned by this token alone: deleted with its keys', async (length) => {
    const token = shortToken(length);
    tokens.push(token);
    await provisionItem(targets, { resourceType: 'redis', token, keys: 3 });

    const result = await registry.teardown(itemRef(token, 'redis'));

    expect(result).toMatchObject({
      dropped: [`acl user usr_${token}`, `keys ${token}:* (3)`],
      kept: [],
      remaining: [],
      confirmedFreed: true,
    });
    expect(await aclUserExists(redis, `usr_${token}`)).toBe(false);
    expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
  });

  it('8 characters, user owned by a longer token (its legacy alias): kept, the rest torn down', async () => {
    const token = shortToken(8);
    const owner = `${token}-${randomUUID()}`;
    tokens.push(token, owner);
    // The longer item's legacy user: same name as the short item's own user.
    const user = `usr_${token}`;
    extraUsers.push(user);
    await redis.call('ACL', 'SETUSER', user, 'on', '>x', `~${owner}:*`, '+@all');
    await redis.set(`${owner}:k1`, 'keep');
    extraKeys.push(`${owner}:k1`);
    for (const n of [1, 2]) await redis.set(`${token}:k${n}`, 'mine');
    const firstLine = timeline.lines.length;

    const result = await registry.teardown(itemRef(token, 'redis'));

    expect(result.confirmedFreed).toBe(true);
    expect(result.dropped).toEqual([`keys ${token}:* (2)`]);
    expect(result.kept).toEqual([
      `acl user ${user} (key patterns "~${owner}:*" are not exactly "~${token}:*")`,
    ]);
    expect(await aclUserExists(redis, user)).toBe(true);
    expect(await redis.get(`${owner}:k1`)).toBe('keep');
    expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
    const deletes = eventsNamed(timeline.lines.slice(firstLine), 'provisioner.drop').filter(
      (l) => l.action === 'acl_deluser',
    );
    expect(deletes).toEqual([]);
  });

  it('5 characters, user with all keys: kept', async () => {
    const token = shortToken(5);
    tokens.push(token);
    const user = `usr_${token}`;
    extraUsers.push(user);
    await redis.call('ACL', 'SETUSER', user, 'on', '>x', 'allkeys', '+@all');

    const result = await registry.teardown(itemRef(token, 'redis'));

    // Redis 7 reports `allkeys` as the pattern `~*`, Redis 6 as a flag.
    expect(result.kept).toEqual([
      expect.stringMatching(new RegExp(`^acl user ${user} \\(key patterns "(~\\*|allkeys)" are not exactly`)),
    ]);
    expect(await aclUserExists(redis, user)).toBe(true);
  });
});
