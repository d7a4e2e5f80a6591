import Redis from 'ioredis';
import type { Logger } from '../logger';
import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor, type ItemAudit } from './audit';
import type { PlannedObject, TeardownBackend } from './backend';
import { assertSafeToken, legacyRedisAliasOf, redisUserFor, redisUserIsShared } from './drop-guard';
import {
  classifyRedisError,
  type DropRefusedError,
  isRefusal,
  TeardownLedger,
  TransientTeardownError,
  UnknownClusterError,
} from './errors';
import type { TeardownCallOptions } from './postgres';
import { escapeRedisGlob } from './redis-glob';
import {
  createKeyspaceWalker,
  type KeyspaceWalker,
  WalkCommandError,
  type WalkObserver,
} from './redis-walker';

/**
 * Redis teardown: ACL users first (DELUSER also closes their connections, so the item's own
 * users cannot re-create keys mid-teardown), then the item's `<token>:*` keys through the
 * cluster's shared keyspace walker (redis-walker.ts): one SCAN loop per cluster for all the
 * item teardowns running on it, which unlinks each item's keys in one full iteration and
 * confirms them gone in the next.
 * A user name other tokens may share (the legacy alias, or the own user of a token of 8
 * characters or fewer) is deleted only when its key patterns are exactly this token's; a
 * legacy alias the guard refuses is skipped (audited), never the whole item.
 * One ioredis client per cluster id, created on first use.
 */

export interface RedisBackendOptions {
  /** Redis URL per cluster id (from `redisClusters`; `local:0` is REDIS_URL). */
  readonly clusters: ReadonlyMap<string, string>;
  readonly log: Logger;
  /** SCAN COUNT hint of the shared keyspace walk and of `inspect`'s scan. Default 1000. */
  readonly scanCount?: number;
  /**
   * Pause after each SCAN step of the shared walk, bounding the share of the cluster's one
   * thread the reaper takes (REAPER_REDIS_SCAN_PAUSE). Default 1 ms; 0 walks flat out.
   */
  readonly scanPauseMs?: number;
  /** Optional view of the walk's steps and cycles (tests count SCANs with it). */
  readonly walkObserver?: (cluster: string) => WalkObserver | undefined;
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

export { escapeRedisGlob };

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
  const scanCount = options.scanCount ?? 1000;
  const scanPauseMs = options.scanPauseMs ?? 1;
  const clients = new Map<string, Redis>();
  const walkers = new Map<string, KeyspaceWalker>();
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

  /** The cluster's shared keyspace walker, created on first use. */
  function walkerFor(cluster: string, client: Redis): KeyspaceWalker {
    let walker = walkers.get(cluster);
    if (!walker) {
      const observer = options.walkObserver?.(cluster);
      walker = createKeyspaceWalker({
        commands: {
          scan: (cursor, match, count) =>
            match === undefined
              ? client.scan(cursor, 'COUNT', count)
              : client.scan(cursor, 'MATCH', match, 'COUNT', count),
          unlink: async (keys) => Number(await client.unlink(...keys)),
        },
        scanCount,
        pauseMs: scanPauseMs,
        ...(observer ? { observer } : {}),
      });
      walkers.set(cluster, walker);
    }
    return walker;
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

    // (2) Keys, and (3) their confirmation: the shared walk unlinks the item's keys in one full
    // SCAN iteration and counts, in the next, any that still exist (see redis-walker.ts).
    progress('unlink_keys');
    const walked = await walkerFor(cluster, client)
      .sweep(keyPrefix, {
        onProgress: progress,
        beforeUnlink: (keys) => audit.drop('unlink_keys', keyPattern, { keys }),
      })
      .catch((err: unknown) => {
        const action = err instanceof WalkCommandError ? err.action : 'scan';
        const cause = err instanceof WalkCommandError ? err.cause : err;
        const error = classifyRedisError(cause, {
          action,
          target: keyPattern,
          cluster,
          partial: ledger.result(false),
        });
        audit.failed(action, keyPattern, error);
        throw error;
      });
    const removed = walked.removed;
    ledger.set(keysObject, removed > 0 ? 'dropped' : 'absent', removed > 0 ? String(removed) : undefined);

    // Confirm: no key left, no deleted user back.
    progress('confirm');
    const left = walked.left;
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
      for (const walker of walkers.values()) {
        walker.close(new TransientTeardownError('the redis teardown backend is closed'));
      }
      walkers.clear();
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
