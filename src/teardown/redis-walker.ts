import { escapeRedisGlob } from './redis-glob';

/**
 * One SCAN cursor loop per Redis cluster, shared by every item teardown running on it in this
 * worker. Each item registers its key prefix `<token>:` (after its ACL users are fenced); the
 * walker matches every key SCAN returns against all registered prefixes, UNLINKs an item's
 * keys as it finds them, and settles an item once two full iterations have passed since it
 * joined: the first frees, the second confirms. So a pass's teardowns on one cluster cost two
 * keyspace walks per wave of concurrent items, not two per item.
 *
 * Why two iterations, and why they are enough (the same claim as the former per-item unlink
 * scan + confirm scan, and no more):
 * - SCAN guarantees (redis.io/commands/scan) that a full iteration, from cursor 0 until it
 *   returns 0, returns every key present in the keyspace for the whole iteration. It promises
 *   nothing for an iteration taken up in the middle, so an item counts only iterations that
 *   started (cursor 0) after it joined; the keys met before that are unlinked all the same.
 *   When an item joins while the current iteration is still young (a few steps in), the
 *   walker restarts it at cursor 0 rather than make the newcomer wait a whole extra cycle.
 * - After the first full iteration, every `<token>:` key that existed throughout it is gone.
 *   A key can survive only if it was written during that iteration. Fencing the item's users
 *   does not rule that out: a kept legacy alias with wider patterns, an admin or `allkeys`
 *   user, or a provisioner re-using the token may still write under the prefix. So the second
 *   full iteration is the confirm: it unlinks nothing of the item, and any of its keys it
 *   returns existed throughout it, were not freed, and are reported as left (the teardown then
 *   fails as transient and keeps the row, as the former confirm scan did). A key written
 *   during the confirm iteration can be missed, exactly as with the former confirm scan.
 * - Prefixes cannot overlap: a token has no `:` (TOKEN_CHARSET), so `abc:` never matches a key
 *   of `abcd:`; a key belongs to the prefix up to its first `:` or to none. Two registrations
 *   of one token (two rows, one token) share their matches.
 * - MATCH is the longest common prefix of the registered prefixes (`pool-*` for pool tokens),
 *   recomputed at each step: MATCH only filters what a step returns, never moves the cursor,
 *   and always covers every registered prefix, so changing it mid-iteration loses nothing.
 * A failed SCAN or UNLINK fails every registered item (each classifies it, none is settled)
 * and resets the walker; the next teardown starts a new iteration at cursor 0.
 */

/** The two commands the walker sends (the backend adapts its ioredis client). */
export interface WalkCommands {
  scan(cursor: string, match: string | undefined, count: number): Promise<[string, string[]]>;
  unlink(keys: readonly string[]): Promise<number>;
}

/** Optional view of each step (metrics, tests); awaited, so it can hold the walk. */
export interface WalkObserver {
  /** After each SCAN reply, before its keys are unlinked. */
  onScan?(step: { cursor: string; next: string; returned: number; match: string | undefined }): void;
  /** When a full iteration ends (the cursor came back to 0), before the next one starts. */
  onCycle?(cycle: { iteration: number; steps: number; registered: number }): void | Promise<void>;
}

export interface WalkerOptions {
  readonly commands: WalkCommands;
  /** SCAN COUNT per step. */
  readonly scanCount: number;
  /** Pause after each SCAN step, bounding the share of Redis's one thread the walk takes. */
  readonly pauseMs: number;
  /** Call each item's progress callback every this many steps (heartbeat). Default 100. */
  readonly progressEverySteps?: number;
  readonly observer?: WalkObserver;
}

export interface SweepHooks {
  /** Heartbeat: called while the item waits on the walk. */
  readonly onProgress: (step: string) => void;
  /** Called before each UNLINK of this item's keys (the audit line), with the batch size. */
  readonly beforeUnlink: (keys: number) => void;
}

export interface SweepResult {
  /** Keys of the item the walk unlinked. */
  readonly removed: number;
  /** Keys of the item the confirming iteration still found (not unlinked). */
  readonly left: number;
  /** SCAN steps the walk took while the item was registered. */
  readonly steps: number;
}

/** Raised to every registered item when the walk's command fails; `cause` is the driver error. */
export class WalkCommandError extends Error {
  constructor(
    readonly action: 'scan' | 'unlink_keys',
    override readonly cause: unknown,
  ) {
    super(`redis keyspace walk: ${action} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'WalkCommandError';
  }
}

interface Registration {
  readonly prefix: string;
  readonly hooks: SweepHooks;
  /** The first iteration number that counts for this item; undefined until the loop admits it. */
  firstFull: number | undefined;
  /** Full iterations completed since firstFull started: 0 frees, 1 confirms, 2 settles. */
  fullDone: number;
  removed: number;
  left: number;
  steps: number;
  resolve(result: SweepResult): void;
  reject(err: unknown): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The longest common prefix of the given strings. */
function commonPrefix(values: readonly string[]): string {
  if (values.length === 0) return '';
  let prefix = values[0] as string;
  for (const value of values) {
    let i = 0;
    while (i < prefix.length && i < value.length && prefix[i] === value[i]) i++;
    prefix = prefix.slice(0, i);
    if (prefix === '') break;
  }
  return prefix;
}

export interface KeyspaceWalker {
  /**
   * Registers `prefix` (`<token>:`) with the walk and resolves once two full iterations have
   * passed since it joined; rejects with WalkCommandError when a command of the walk fails.
   */
  sweep(prefix: string, hooks: SweepHooks): Promise<SweepResult>;
  /** Rejects every waiting item with `reason` and stops the walk after its current step. */
  close(reason: Error): void;
  /** Items registered now (tests, metrics). */
  readonly registered: number;
}

export function createKeyspaceWalker(options: WalkerOptions): KeyspaceWalker {
  const { commands, scanCount, pauseMs, observer } = options;
  const progressEvery = options.progressEverySteps ?? 100;
  const registrations = new Set<Registration>();
  let running = false;
  let closedWith: Error | undefined;
  let cursor = '0';
  let iteration = 0;
  let stepsInIteration = 0;
  let lastIterationSteps = 0;

  /** An iteration is young enough to restart for a newcomer while it has done few steps. */
  const young = () => stepsInIteration <= Math.max(2, Math.floor(lastIterationSteps * 0.05));

  function admitNewcomers(): void {
    const newcomers = [...registrations].filter((r) => r.firstFull === undefined);
    if (newcomers.length === 0) return;
    if (stepsInIteration > 0 && young()) {
      // Restart at cursor 0: the aborted iteration never ends, so it counts for nobody.
      iteration++;
      cursor = '0';
      stepsInIteration = 0;
    }
    for (const r of newcomers) r.firstFull = stepsInIteration === 0 ? iteration : iteration + 1;
  }

  function failAll(err: unknown): void {
    const all = [...registrations];
    registrations.clear();
    for (const r of all) r.reject(err);
  }

  async function step(): Promise<void> {
    admitNewcomers();
    const all = [...registrations];
    const common = commonPrefix(all.map((r) => r.prefix));
    const match = common === '' ? undefined : `${escapeRedisGlob(common)}*`;
    let reply: [string, string[]];
    try {
      reply = await commands.scan(cursor, match, scanCount);
    } catch (err) {
      throw new WalkCommandError('scan', err);
    }
    const [next, keys] = reply;
    observer?.onScan?.({ cursor, next, returned: keys.length, match });
    stepsInIteration++;
    for (const r of all) r.steps++;

    // A key belongs to the prefix up to its first `:` (tokens have none), or to nobody.
    const byPrefix = new Map<string, Registration[]>();
    for (const r of registrations) {
      const list = byPrefix.get(r.prefix);
      if (list) list.push(r);
      else byPrefix.set(r.prefix, [r]);
    }
    const found = new Map<string, string[]>();
    for (const key of keys) {
      const colon = key.indexOf(':');
      if (colon < 0) continue;
      const prefix = key.slice(0, colon + 1);
      if (!byPrefix.has(prefix)) continue;
      const list = found.get(prefix);
      if (list) list.push(key);
      else found.set(prefix, [key]);
    }
    for (const [prefix, mine] of found) {
      const owners = byPrefix.get(prefix) ?? [];
      // Still freeing: everything that joined, including newcomers (their keys go early).
      const freeing = owners.filter((r) => r.fullDone === 0);
      // Confirming: what the confirming iteration returns existed throughout it: left behind.
      for (const r of owners) if (r.fullDone === 1) r.left += mine.length;
      if (freeing.length === 0) continue;
      for (const r of freeing) r.hooks.beforeUnlink(mine.length);
      let removed: number;
      try {
        removed = await commands.unlink(mine);
      } catch (err) {
        throw new WalkCommandError('unlink_keys', err);
      }
      for (const r of freeing) {
        r.removed += removed;
        r.hooks.onProgress(`unlink_keys: ${r.removed} removed`);
      }
    }
    cursor = next;

    if (cursor === '0') {
      const ended = iteration;
      lastIterationSteps = stepsInIteration;
      iteration++;
      stepsInIteration = 0;
      for (const r of [...registrations]) {
        if (r.firstFull === undefined || r.firstFull > ended) continue;
        r.fullDone++;
        if (r.fullDone >= 2) {
          registrations.delete(r);
          r.resolve({ removed: r.removed, left: r.left, steps: r.steps });
        } else {
          r.hooks.onProgress('confirm');
        }
      }
      await observer?.onCycle?.({
        iteration: ended,
        steps: lastIterationSteps,
        registered: registrations.size,
      });
    } else {
      for (const r of all) {
        if (r.steps % progressEvery === 0) {
          r.hooks.onProgress(`${r.fullDone === 0 ? 'unlink_keys' : 'confirm'}: ${r.steps} scan steps`);
        }
      }
    }
  }

  async function run(): Promise<void> {
    running = true;
    try {
      while (registrations.size > 0) {
        if (closedWith) {
          failAll(closedWith);
          break;
        }
        await step();
        if (pauseMs > 0 && registrations.size > 0) await sleep(pauseMs);
      }
    } catch (err) {
      failAll(err);
      // The next teardown starts afresh: the failed iteration counts for nobody.
      cursor = '0';
      iteration++;
      stepsInIteration = 0;
    } finally {
      running = false;
    }
  }

  return {
    sweep(prefix, hooks) {
      if (closedWith) return Promise.reject(closedWith);
      return new Promise<SweepResult>((resolve, reject) => {
        registrations.add({
          prefix,
          hooks,
          firstFull: undefined,
          fullDone: 0,
          removed: 0,
          left: 0,
          steps: 0,
          resolve,
          reject,
        });
        if (!running) {
          cursor = '0';
          stepsInIteration = 0;
          void run();
        }
      });
    },
    close(reason) {
      closedWith = reason;
      if (!running) failAll(reason);
    },
    get registered() {
      return registrations.size;
    },
  };
}
