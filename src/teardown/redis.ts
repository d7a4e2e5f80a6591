import Redis from 'ioredis';
import type { Logger } from '../logger';
import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor, type ItemAudit } from './audit';
import { assertSafeToken, legacyRedisUserFor, redisUserFor } from './drop-guard';
import {
  classifyRedisError,
  isRefusal,
  TeardownLedger,
  TransientTeardownError,
  UnknownClusterError,
} from './errors';
import type { TeardownCallOptions } from './postgres';

/**
 * Redis teardown: ACL users first (DELUSER also closes their connections, so nothing
 * re-creates keys mid-teardown), then SCAN + UNLINK of `<token>:*`, then a confirming scan.
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
}

export interface RedisPlan {
  readonly cluster: string;
  readonly user: string;
  readonly legacyUser: string;
  readonly keyPattern: string;
}

export interface RedisBackend {
  preflight(item: PoolItemRef, options?: Pick<TeardownCallOptions, 'log'>): RedisPlan;
  teardown(item: PoolItemRef, options?: TeardownCallOptions): Promise<TeardownResult>;
  close(): Promise<void>;
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

export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
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
      });
      // Without a listener ioredis prints every connection error; the teardown reports them.
      client.on('error', (err: Error) =>
        log.debug({ cluster, err: err.message }, 'redis teardown connection error'),
      );
      clients.set(cluster, client);
    }
    return client;
  }

  function plan(item: PoolItemRef, audit: ItemAudit): RedisPlan & { url: string } {
    try {
      assertSafeToken(item.poolToken);
      const user = redisUserFor(item.poolToken);
      const legacyUser = legacyRedisUserFor(item.poolToken);
      const cluster = clusterOf(item.providerResourceId);
      const url = clusters.get(cluster);
      if (url === undefined) throw new UnknownClusterError(cluster, 'redis');
      return { cluster, user, legacyUser, keyPattern: `${escapeRedisGlob(item.poolToken)}:*`, url };
    } catch (err) {
      if (isRefusal(err)) audit.refused(err);
      throw err;
    }
  }

  async function teardown(item: PoolItemRef, callOptions: TeardownCallOptions = {}): Promise<TeardownResult> {
    const audit = auditFor(callOptions.log ?? log, item);
    const { cluster, user, legacyUser, keyPattern, url } = plan(item, audit);
    if (closed) throw new TransientTeardownError('the redis teardown backend is closed');
    const progress = callOptions.onProgress ?? (() => {});
    const token = item.poolToken;
    const keyPrefix = `${token}:`;
    const ledger = new TeardownLedger(item.resourceType, token, cluster);
    const keysObject = `keys ${token}:*`;
    const userObject = `acl user ${user}`;
    const legacyObject = `acl user ${legacyUser} (legacy)`;
    const hasLegacy = legacyUser !== user;
    ledger.set(userObject, 'unknown');
    if (hasLegacy) ledger.set(legacyObject, 'unknown');
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

    // (1) ACL users: the canonical one always (it is this token's by name) ...
    progress('acl_deluser');
    if ((await getUser(user)) === null) ledger.set(userObject, 'absent');
    else await delUser(user, userObject);
    // ... the legacy one only when its keys are exactly this token's: the name is shared by
    // every token with the same first 8 characters.
    if (hasLegacy) {
      const reply = await getUser(legacyUser);
      if (reply === null) {
        ledger.set(legacyObject, 'absent');
      } else {
        const { patterns, allKeys, selectors } = aclKeyPatterns(reply);
        const own = `~${keyPrefix}*`;
        if (!allKeys && selectors === 0 && patterns.length === 1 && patterns[0] === own) {
          await delUser(legacyUser, legacyObject);
        } else {
          const seen = allKeys ? 'allkeys' : patterns.join(' ') || 'none';
          ledger.set(legacyObject, 'kept', `key patterns "${seen}" are not exactly "${own}"`);
        }
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
    for (const [name, object] of [
      [user, userObject],
      [legacyUser, legacyObject],
    ] as const) {
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
    preflight(item, callOptions = {}) {
      const { cluster, user, legacyUser, keyPattern } = plan(item, auditFor(callOptions.log ?? log, item));
      return { cluster, user, legacyUser, keyPattern };
    },
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
