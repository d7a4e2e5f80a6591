import { condition } from '@temporalio/workflow';

/** A lane count that can be trusted: a positive integer, whatever a message carried. */
export function laneCount(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : fallback;
}

/**
 * A fixed number of runners pulling from one queue, in order: bounded concurrency,
 * deterministic order. With `perKey`, at most that many items of one key (a cluster) run
 * at once (a number, or one derived from the item's key); a runner takes the first waiting item whose key has room,
 * so the other keys' items flow past a busy one.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  perKey?: { readonly limit: number | ((item: T) => number); readonly keyOf: (item: T) => string },
): Promise<void> {
  const waiting = [...items];
  const running = new Map<string, number>();
  // A per-item limit must be the same for every item of one key (it is derived from the key).
  const hasRoom = (item: T) => {
    if (perKey === undefined) return true;
    const limit = typeof perKey.limit === 'number' ? perKey.limit : perKey.limit(item);
    return (running.get(perKey.keyOf(item)) ?? 0) < limit;
  };
  const runner = async () => {
    for (;;) {
      const index = waiting.findIndex(hasRoom);
      if (index < 0) {
        if (waiting.length === 0) return;
        // Every waiting item's key is at its limit: wait until one of them frees a lane.
        await condition(() => waiting.length === 0 || waiting.some(hasRoom));
        continue;
      }
      const [item] = waiting.splice(index, 1) as [T];
      const key = perKey?.keyOf(item) ?? '';
      running.set(key, (running.get(key) ?? 0) + 1);
      try {
        await fn(item);
      } finally {
        running.set(key, (running.get(key) ?? 1) - 1);
      }
    }
  };
  const lanes = Math.max(1, Math.min(laneCount(limit, 1), items.length));
  await Promise.all(Array.from({ length: lanes }, runner));
}
