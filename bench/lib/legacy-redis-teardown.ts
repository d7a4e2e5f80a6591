/**
 * The Redis backend as it was before issue 18 item 5 (main at 3f215db), kept only so that
 * bench/redis-walk.ts can measure the per-item walk against the shared one. Not used by the reaper.
 */
import Redis from 'ioredis';
import type { Logger } from '../../src/logger';
import { clusterOf } from '../../src/shared/clusters';
import type { PoolItemRef, TeardownResult } from '../../src/shared/types';
import { auditFor, type ItemAudit } from '../../src/teardown/audit';
import type { PlannedObject, TeardownBackend } from '../../src/teardown/backend';
import {
  assertSafeToken,
  legacyRedisAliasOf,
  redisUserFor,
  redisUserIsShared,
} from '../../src/teardown/drop-guard';
import {
  classifyRedisError,
  type DropRefusedError,
  isRefusal,
  TeardownLedger,
  TransientTeardownError,
  UnknownClusterError,
} from '../../src/teardown/errors';
import type { TeardownCallOptions } from '../../src/teardown/postgres';

/**
 * Redis teardown: ACL users first (DELUSER also closes their connections, so nothing
 * re-creates keys mid-teardown), then SCAN + UNLINK of `<token>:*`, then a confirming scan.
 * A user name other tokens may share (the legacy alias, or the own user of a token of 8
 * characters or fewer) is deleted only when its key patterns are exactly this token's; a
 * legacy alias the guard refuses is skipped (audited), never the whole item.
 * One ioredis client per cluster id, created on first use.
 */

export interface RedisBackendOptions {
  /** Redis URL per cluster id (from `redisClusters`; `local:0` is REDIS_URL). */
  readonly clusters: ReadonlyMap<string, string>;
  readonly log: Logger;
  /** SCAN COUNT hint and so the largest UNLINK batch. Default 500. */
  readonly scanCount?: number;
  /** Per-command limit. Default 10 s. */
  readonly commandTimeoutMs?: number;
  /** Limit on opening the connection. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** CA (PEM) for `rediss://` URLs whose servers are not signed by a public CA (REDIS_TLS_CA_FILE). */
  readonly tlsCa?: string;
}

export interface RedisPlan {
  readonly cluster: string;
  /** `usr_<token>`: always this token's by name, unless `userShared`. */
  readonly user: string;
  /**
   * The token has at most 8 characters, so `user` is also the legacy alias of every longer
   * token that starts with it: deleted only when its key patterns are exactly this token's.
   */
  readonly userShared: boolean;
  /** The legacy alias `usr_<first 8 characters>`, when it is another name than `user`. */
  readonly legacy?: {
    readonly name: string;
    /** The guard refused this one name (e.g. `usr_postgres`): it is never touched. */
    readonly refused?: DropRefusedError;
  };
  readonly keyPattern: string;
}

export interface RedisBackend extends TeardownBackend {
  decide(item: PoolItemRef): RedisPlan;
  preflight(item: PoolItemRef, options?: Pick<TeardownCallOptions, 'log'>): RedisPlan;
}

/** Escapes Redis glob specials so the token matches only itself (the guard already forbids them). */
export function escapeRedisGlob(text: string): string {
  return text.replace(/[\\*?[\]^]/g, (c) => `\\${c}`);
}

/** The key patterns and selectors of an `ACL GETUSER` reply (Redis 6 and 7 shapes). */
export function aclKeyPatterns(reply: unknown): { patterns: string[]; allKeys: boolean; selectors: number } {
  const fields = new Map<string, unknown>();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1]);
  }
  const flags = Array.isArray(fields.get('flags')) ? (fields.get('flags') as unknown[]).map(String) : [];
  const keys = fields.get('keys');
  let patterns: string[] = [];
  if (typeof keys === 'string') {
    // Redis 7: one string, space-separated, each with its ~ / %R~ / %W~ / %RW~ prefix.
    patterns = keys.split(/\s+/).filter((p) => p !== '');
  } else if (Array.isArray(keys)) {
    // Redis 6: an array of bare patterns.
    patterns = keys.map((k) => String(k)).map((k) => (k.startsWith('~') || k.startsWith('%') ? k : `~${k}`));
  }
  const selectors = Array.isArray(fields.get('selectors'))
    ? (fields.get('selectors') as unknown[]).length
    : 0;
  return { patterns, allKeys: flags.includes('allkeys'), selectors };
}

export function createLegacyRedisBackend(options: RedisBackendOptions): RedisBackend {
  const { clusters, log } = options;
  const scanCount = options.scanCount ?? 500;
  const clients = new Map<string, Redis>();
  let closed = false;

  function clientFor(cluster: string, url: string): Redis {
    let client = clients.get(cluster);
    if (!client) {
      client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: options.connectTimeoutMs ?? 5_000,
        commandTimeout: options.commandTimeoutMs ?? 10_000,
        // A command waits for at most one reconnect; the teardown then fails as transient.
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(times * 200, 2_000),
        connectionName: 'pool-reaper-teardown',
        ...(options.tlsCa !== undefined && url.startsWith('rediss://') ? { tls: { ca: options.tlsCa } } : {}),
      });
      // Without a listener ioredis prints every connection error; the teardown reports them.
      client.on('error', (err: Error) =>
        log.debug({ cluster, err: err.message }, 'redis teardown connection error'),
      );
      clients.set(cluster, client);
    }
    return client;
  }

  /**
   * The names this item may free. Refusing the token or the item's own user refuses the item;
   * a refused legacy alias is only that name's refusal (audited by the teardown that skips it).
   */
  function plan(item: PoolItemRef, audit: ItemAudit): RedisPlan & { url: string } {
    try {
      return decide(item);
    } catch (err) {
      if (isRefusal(err)) audit.refused(err);
      throw err;
    }
  }

  /** The guard and the cluster check, pure: throws the refusal, audits nothing. */
  function decide(item: PoolItemRef): RedisPlan & { url: string } {
    assertSafeToken(item.poolToken);
    const user = redisUserFor(item.poolToken);
    const userShared = redisUserIsShared(item.poolToken);
    const alias = legacyRedisAliasOf(item.poolToken);
    const cluster = clusterOf(item.providerResourceId);
    const url = clusters.get(cluster);
    if (url === undefined) throw new UnknownClusterError(cluster, 'redis');
    return {
      cluster,
      user,
      userShared,
      ...(alias.name === user ? {} : { legacy: alias }),
      keyPattern: `${escapeRedisGlob(item.poolToken)}:*`,
      url,
    };
  }

  /**
   * Read-only: ACL GETUSER of the item's users and a full SCAN counting its keys. A user name
   * other tokens may share is reported with `kept` when its key patterns are not exactly this
   * token's, as the teardown would leave it.
   */
  async function inspect(item: PoolItemRef): Promise<PlannedObject[]> {
    const { cluster, user, userShared, legacy, keyPattern, url } = decide(item);
    if (closed) throw new TransientTeardownError('the redis teardown backend is closed');
    const client = clientFor(cluster, url);
    const own = `~${item.poolToken}:*`;
    const userObject = async (name: string, shared: boolean): Promise<PlannedObject> => {
      const reply = await client.call('ACL', 'GETUSER', name);
      if (reply === null) return { kind: 'acl_user', name, exists: false };
      if (!shared) return { kind: 'acl_user', name, exists: true };
      const { patterns, allKeys, selectors } = aclKeyPatterns(reply);
      const owned = !allKeys && selectors === 0 && patterns.length === 1 && patterns[0] === own;
      return owned
        ? { kind: 'acl_user', name, exists: true }
        : { kind: 'acl_user', name, exists: true, kept: `key patterns are not exactly "${own}"` };
    };
    const objects: PlannedObject[] = [await userObject(user, userShared)];
    if (legacy) {
      objects.push(
        legacy.refused
          ? {
              kind: 'acl_user',
              name: legacy.name,
              exists: null,
              kept: `refused by the drop guard: ${legacy.refused.message}`,
            }
          : await userObject(legacy.name, true),
      );
    }
    let cursor = '0';
    let count = 0;
    do {
      const [next, found] = await client.scan(cursor, 'MATCH', keyPattern, 'COUNT', scanCount);
      cursor = next;
      count += found.filter((key) => key.startsWith(`${item.poolToken}:`)).length;
    } while (cursor !== '0');
    objects.push({ kind: 'keys', name: keyPattern, exists: count > 0, count });
    return objects;
  }

  async function teardown(item: PoolItemRef, callOptions: TeardownCallOptions = {}): Promise<TeardownResult> {
    const audit = auditFor(callOptions.log ?? log, item);
    const { cluster, user, userShared, legacy, keyPattern, url } = plan(item, audit);
    if (closed) throw new TransientTeardownError('the redis teardown backend is closed');
    const progress = callOptions.onProgress ?? (() => {});
    const token = item.poolToken;
    const keyPrefix = `${token}:`;
    const ledger = new TeardownLedger(item.resourceType, token, cluster);
    const keysObject = `keys ${token}:*`;
    const userObject = `acl user ${user}`;
    const legacyObject = legacy ? `acl user ${legacy.name} (legacy)` : undefined;
    ledger.set(userObject, 'unknown');
    if (legacyObject) ledger.set(legacyObject, 'unknown');
    ledger.set(keysObject, 'unknown');
    const client = clientFor(cluster, url);

    const command = async <T>(action: string, target: string, call: () => Promise<T>): Promise<T> => {
      try {
        return await call();
      } catch (err) {
        const error = classifyRedisError(err, { action, target, cluster, partial: ledger.result(false) });
        audit.failed(action, target, error);
        throw error;
      }
    };
    const getUser = (name: string) => command('acl_getuser', name, () => client.call('ACL', 'GETUSER', name));
    const delUser = async (name: string, object: string) => {
      audit.drop('acl_deluser', name);
      const deleted = Number(await command('acl_deluser', name, () => client.call('ACL', 'DELUSER', name)));
      ledger.set(object, deleted > 0 ? 'dropped' : 'absent');
    };
    /**
     * A user name other tokens share (the legacy alias, or the user of a short token) is
     * deleted only when its keys are exactly this token's: `~<token>:*`, nothing else.
     */
    const delUserIfOwned = async (name: string, object: string) => {
      const reply = await getUser(name);
      if (reply === null) {
        ledger.set(object, 'absent');
        return;
      }
      const { patterns, allKeys, selectors } = aclKeyPatterns(reply);
      const own = `~${keyPrefix}*`;
      if (!allKeys && selectors === 0 && patterns.length === 1 && patterns[0] === own) {
        await delUser(name, object);
      } else {
        const seen = allKeys ? 'allkeys' : patterns.join(' ') || 'none';
        ledger.set(object, 'kept', `key patterns "${seen}" are not exactly "${own}"`);
      }
    };

    /** One full SCAN of the item's keys; `unlink` removes each batch as it comes. */
    const scanKeys = async (unlink: boolean): Promise<number> => {
      let cursor = '0';
      let total = 0;
      let steps = 0;
      do {
        // A large shared keyspace takes many SCAN steps: keep the caller's heartbeat going.
        if (++steps % 200 === 0) progress(`${unlink ? 'unlink_keys' : 'confirm'}: ${steps} scan steps`);
        const [next, found] = await command('scan', keyPattern, () =>
          client.scan(cursor, 'MATCH', keyPattern, 'COUNT', scanCount),
        );
        cursor = next;
        // Belt and braces: only keys that really start with `<token>:` are ever unlinked.
        const mine = found.filter((key) => key.startsWith(keyPrefix));
        if (mine.length === 0) continue;
        if (unlink) {
          audit.drop('unlink_keys', keyPattern, { keys: mine.length });
          total += Number(await command('unlink_keys', keyPattern, () => client.unlink(...mine)));
          progress(`unlink_keys: ${total} removed`);
        } else {
          total += mine.length;
        }
      } while (cursor !== '0');
      return total;
    };

    // (1) ACL users. The item's own user is this token's by name, unless the token is so short
    // that the name is also the legacy alias of longer tokens ...
    progress('acl_deluser');
    if (userShared) await delUserIfOwned(user, userObject);
    else if ((await getUser(user)) === null) ledger.set(userObject, 'absent');
    else await delUser(user, userObject);
    // ... the legacy alias is shared by every token with the same first 8 characters. A name
    // the guard refuses (`usr_postgres`) is never touched, not even read: the refusal is
    // audited and the rest of the item is still freed.
    if (legacy && legacyObject) {
      if (legacy.refused) {
        audit.refused(legacy.refused);
        ledger.set(legacyObject, 'kept', `refused by the drop guard: ${legacy.refused.message}`);
      } else {
        await delUserIfOwned(legacy.name, legacyObject);
      }
    }

    // (2) Keys.
    progress('unlink_keys');
    const removed = await scanKeys(true);
    ledger.set(keysObject, removed > 0 ? 'dropped' : 'absent', removed > 0 ? String(removed) : undefined);

    // (3) Confirm: no key, no deleted user back.
    progress('confirm');
    const left = await scanKeys(false);
    const usersBack: string[] = [];
    const users: [string, string][] = [[user, userObject]];
    if (legacy && legacyObject) users.push([legacy.name, legacyObject]);
    for (const [name, object] of users) {
      const state = ledger.state(object);
      if ((state === 'dropped' || state === 'absent') && (await getUser(name)) !== null) {
        ledger.set(object, 'present');
        usersBack.push(name);
      }
    }
    if (left > 0 || usersBack.length > 0) {
      if (left > 0) ledger.set(keysObject, 'present', `${left} left`);
      const error = new TransientTeardownError(
        `teardown of ${token} on ${cluster} left ${left} key(s)${usersBack.length ? ` and ACL user(s) ${usersBack.join(', ')}` : ''} behind`,
        { partial: ledger.result(false) },
      );
      audit.failed('confirm', keyPattern, error);
      throw error;
    }
    return ledger.result(true);
  }

  return {
    resourceType: 'redis',
    decide(item) {
      const { url: _, ...rest } = decide(item);
      return rest;
    },
    preflight(item, callOptions = {}) {
      const { url: _, ...rest } = plan(item, auditFor(callOptions.log ?? log, item));
      return rest;
    },
    inspect,
    teardown,
    async close() {
      closed = true;
      const all = [...clients.values()];
      clients.clear();
      await Promise.allSettled(
        all.map(async (client) => {
          if (client.status === 'ready') await client.quit();
          else client.disconnect();
        }),
      );
    },
  };
}
