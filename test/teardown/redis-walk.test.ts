import Redis from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import { TeardownError, TransientTeardownError } from '../../src/teardown/errors';
import type { WalkObserver } from '../../src/teardown/redis-walker';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import { TEST_REDIS_URL } from '../helpers/env';
import { keysMatching, testRedis } from '../helpers/redis';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { captureLog, cleanupToken, eventsNamed, itemRef, seedTargets } from '../helpers/teardown-fixtures';

// The shared keyspace walk (src/teardown/redis-walker.ts) against the real test Redis. The
// keyspace is shared with other tests, so these count the walk's own SCAN steps and cycles
// (through its observer), never INFO commandstats; filler keys are this file's own and few.

const targets = seedTargets();
const redis = testRedis();
const tokens: string[] = [];
const extraKeys: string[] = [];
const FILLER = 1500;
const fillerPrefix = `walkfill-${Math.random().toString(36).slice(2, 8)}`;

function freshToken(): string {
  const token = newPoolToken().replace('pool-', `w${Math.random().toString(36).slice(2, 5)}-`);
  tokens.push(token);
  return token;
}

/** Counts the walk's steps and cycles on `local:0`; `onCycle`/`onScan` extras are awaited. */
function counter(extra: WalkObserver = {}) {
  const state = { scans: 0, cycles: 0 };
  const observer: WalkObserver = {
    onScan(step) {
      state.scans++;
      extra.onScan?.(step);
    },
    async onCycle(cycle) {
      state.cycles++;
      await extra.onCycle?.(cycle);
    },
  };
  return { state, observer };
}

function registryWith(observer: WalkObserver, scanCount = 25, clusters?: Map<string, string>) {
  const captured = captureLog();
  const registry = createTeardownRegistry({
    postgresClusters: new Map(),
    redisClusters: clusters ?? new Map([['local:0', TEST_REDIS_URL]]),
    concurrency: 8,
    log: captured.log,
    redis: { scanCount, scanPauseMs: 0, walkObserver: () => observer, commandTimeoutMs: 3_000 },
  });
  return { registry, lines: captured.lines };
}

const registries: TeardownRegistry[] = [];

beforeAll(async () => {
  // A keyspace of some steps even when the shared Redis is otherwise empty.
  const pipeline = redis.pipeline();
  for (let i = 0; i < FILLER; i++) pipeline.set(`${fillerPrefix}:${i}`, '1');
  await pipeline.exec();
});

afterEach(async () => {
  for (const r of registries.splice(0)) await r.close();
  for (const token of tokens.splice(0)) await cleanupToken(targets, token);
  if (extraKeys.length) await redis.unlink(...extraKeys.splice(0));
});

afterAll(async () => {
  await cleanupToken(targets, fillerPrefix);
  await targets.close();
  redis.disconnect();
});

describe('shared redis keyspace walk', () => {
  it('tears down concurrent items in one shared walk, each removing exactly its own keys', async () => {
    const items = [freshToken(), freshToken(), freshToken(), freshToken()];
    const sizes = [40, 3, 120, 0];
    for (const [i, token] of items.entries()) {
      await provisionItem(targets, { resourceType: 'redis', token, keys: sizes[i] ?? 0 });
    }
    // Neighbours: a token sharing the first item's name as a prefix (`abc` vs `abcd`), the bare
    // token, a key with the token inside, and one with the token after another prefix.
    const first = items[0] as string;
    const neighbours = [
      `${first}d:k1`,
      `${first}d:k2`,
      `${first}`,
      `x${first}:k`,
      `other:${first}:k`,
      `${first}-:k`,
    ];
    for (const key of neighbours) await redis.set(key, 'keep');
    extraKeys.push(...neighbours);

    const { state, observer } = counter();
    const { registry, lines } = registryWith(observer);
    registries.push(registry);
    const results = await Promise.all(items.map((t) => registry.teardown(itemRef(t, 'redis'))));

    for (const [i, result] of results.entries()) {
      const size = sizes[i] ?? 0;
      expect(result.confirmedFreed).toBe(true);
      expect(result.dropped).toContain(`acl user usr_${items[i]}`);
      if (size > 0) expect(result.dropped).toContain(`keys ${items[i]}:* (${size})`);
      else expect(result.alreadyGone).toContain(`keys ${items[i]}:*`);
      expect(await keysMatching(redis, `${items[i]}:*`)).toEqual([]);
    }
    for (const key of neighbours) expect(await redis.get(key)).toBe('keep');
    // Per item, the former code walked the keyspace twice: 8 walks for 4 items. One shared
    // walk takes two cycles, three when an item joined after the first had gone some way.
    expect(state.cycles).toBeGreaterThanOrEqual(2);
    expect(state.cycles).toBeLessThanOrEqual(3);
    // Each item's own audit lines: its UNLINK batches sum to exactly its keys.
    for (const [i, token] of items.entries()) {
      const unlinked = eventsNamed(lines, 'provisioner.drop')
        .filter((l) => l['action'] === 'unlink_keys' && l['token'] === token)
        .reduce((sum, l) => sum + Number(l['keys'] ?? 0), 0);
      expect(unlinked).toBe(sizes[i]);
    }
  });

  it('gives a late joiner a full cycle of its own, and heartbeats it while it waits', async () => {
    const early = freshToken();
    const late = freshToken();
    await provisionItem(targets, { resourceType: 'redis', token: early, keys: 5 });
    await provisionItem(targets, { resourceType: 'redis', token: late, keys: 300 });
    let lateTeardown: Promise<unknown> | undefined;
    const lateSteps: string[] = [];
    let cyclesAtJoin = -1;
    let cyclesWhenLateDone = -1;
    let cyclesWhenEarlyDone = -1;
    const { state, observer } = counter({
      onScan() {
        // Join well into the first cycle: too late to restart it (more than a few steps in).
        if (state.scans === 10 && !lateTeardown) {
          cyclesAtJoin = state.cycles;
          lateTeardown = registry
            .teardown(itemRef(late, 'redis'), { onProgress: (s) => lateSteps.push(s) })
            .then((r) => {
              cyclesWhenLateDone = state.cycles;
              return r;
            });
        }
      },
    });
    // Small steps: the cycle has far more than 10 of them, and progress is reported each 100.
    const { registry } = registryWith(observer, 5);
    registries.push(registry);
    const earlyResult = await registry.teardown(itemRef(early, 'redis')).then((r) => {
      cyclesWhenEarlyDone = state.cycles;
      return r;
    });
    expect(lateTeardown).toBeDefined();
    const lateResult = (await lateTeardown) as { confirmedFreed: boolean; dropped: string[] };
    expect(earlyResult.confirmedFreed).toBe(true);
    expect(lateResult.confirmedFreed).toBe(true);
    expect(lateResult.dropped).toContain(`keys ${late}:* (300)`);
    expect(cyclesAtJoin).toBe(0);
    expect(cyclesWhenEarlyDone).toBe(2);
    // The cycle it joined does not count: a full one to free, a full one to confirm.
    expect(cyclesWhenLateDone).toBe(3);
    expect(await keysMatching(redis, `${late}:*`)).toEqual([]);
    // Heartbeat steps while waiting on the walk, before and after its confirm began.
    expect(lateSteps.some((s) => /scan steps/.test(s))).toBe(true);
    expect(lateSteps).toContain('confirm');
  });

  it('catches a key written under the prefix after the freeing cycle: transient, reported, not hidden', async () => {
    const token = freshToken();
    await provisionItem(targets, { resourceType: 'redis', token, keys: 10 });
    let written = false;
    const { observer } = counter({
      async onCycle() {
        // Between the freeing cycle and the confirming one, another user (here the test's
        // admin connection; the item's own user is gone) writes under the item's prefix.
        if (written) return;
        written = true;
        await redis.set(`${token}:late`, 'x');
        extraKeys.push(`${token}:late`);
      },
    });
    const { registry } = registryWith(observer);
    registries.push(registry);
    const failure = await registry.teardown(itemRef(token, 'redis')).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(TransientTeardownError);
    expect((failure as TransientTeardownError).message).toMatch(/left 1 key\(s\) behind/);
    expect((failure as TransientTeardownError).partial?.remaining).toEqual([`keys ${token}:* (1 left)`]);
    // The confirm unlinks nothing: the key is still there for the retry (and the operator) to see.
    expect(await redis.get(`${token}:late`)).toBe('x');
  });

  it('fences the item user before the walk: it cannot write keys while the walk runs', async () => {
    const token = freshToken();
    const item = await provisionItem(targets, { resourceType: 'redis', token, keys: 3 });
    const asUser = new Redis(item.connectionUrl, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    asUser.on('error', () => undefined);
    await asUser.set(`${token}:before`, '1');
    const attempts: Promise<unknown>[] = [];
    const { observer } = counter({
      onScan() {
        if (attempts.length === 0)
          attempts.push(asUser.set(`${token}:during`, '1').then(String, (e: Error) => e));
      },
    });
    const { registry } = registryWith(observer);
    registries.push(registry);
    try {
      const result = await registry.teardown(itemRef(token, 'redis'));
      expect(result.confirmedFreed).toBe(true);
      expect(await Promise.all(attempts)).toEqual([expect.any(Error)]);
      // Nor can it log in again.
      const again = new Redis(item.connectionUrl, {
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      again.on('error', () => undefined);
      await expect(again.connect().then(() => again.set(`${token}:after`, '1'))).rejects.toThrow();
      again.disconnect();
      expect(await keysMatching(redis, `${token}:*`)).toEqual([]);
    } finally {
      asUser.disconnect();
    }
  });

  it('fails every waiting item when Redis goes away mid-walk, none confirmed, and walks afresh after', async () => {
    const proxy: TcpProxy = await startTcpProxy('127.0.0.1', Number(new URL(TEST_REDIS_URL).port || 6379));
    const [a, b] = [freshToken(), freshToken()];
    await provisionItem(targets, { resourceType: 'redis', token: a, keys: 50 });
    await provisionItem(targets, { resourceType: 'redis', token: b, keys: 50 });
    let release: () => void = () => {};
    const back = new Promise<void>((resolve) => {
      release = resolve;
    });
    let cut = false;
    const { state, observer } = counter({
      onScan() {
        if (state.scans === 6 && !cut) {
          cut = true;
          void proxy.refuseUntil(back);
          proxy.cutAll();
        }
      },
    });
    const { registry } = registryWith(
      observer,
      10,
      new Map([['local:0', `redis://127.0.0.1:${proxy.port}`]]),
    );
    registries.push(registry);
    try {
      const outcomes = await Promise.allSettled([
        registry.teardown(itemRef(a, 'redis')),
        registry.teardown(itemRef(b, 'redis')),
      ]);
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        const err = (outcome as PromiseRejectedResult).reason as TeardownError;
        expect(err).toBeInstanceOf(TeardownError);
        // Worth retrying (the row stays for the next attempt); never an operator's case.
        expect(err.retryable).toBe(true);
        expect(err.category).not.toBe('operator');
        expect(err.partial?.confirmedFreed).toBe(false);
      }
      release();
      // The walk starts over at cursor 0 for the next teardown, which frees and confirms both.
      const again = await Promise.all([
        registry.teardown(itemRef(a, 'redis')),
        registry.teardown(itemRef(b, 'redis')),
      ]);
      expect(again.every((r) => r.confirmedFreed)).toBe(true);
      expect(await keysMatching(redis, `${a}:*`)).toEqual([]);
      expect(await keysMatching(redis, `${b}:*`)).toEqual([]);
    } finally {
      release();
      await registry.close();
      await proxy.close();
    }
  });
});
