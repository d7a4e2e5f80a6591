/**
 * The backoff rule of the reaper's bookkeeping, written once: an item deferred after a
 * retryable failure of its own (next_attempt_at) and a cluster marked down (retry_at) both
 * wait base × 2^(passes it failed in − 1), at most max. The SQL the store runs and the
 * JavaScript twin below are held to the same answers by test/store/backoff.test.ts.
 */

/** Exponential backoff bounds. */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Past 2^30 × base every sane max has long been reached; the cap keeps power() finite. */
export const BACKOFF_MAX_DOUBLINGS = 30;

/** How long the `failures`-th failing pass (1 for the first) waits, in milliseconds. */
export function backoffMs(failures: number, backoff: Backoff): number {
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(BACKOFF_MAX_DOUBLINGS, failures - 1));
}

/**
 * The same rule in SQL, in seconds: `failures` an integer expression (1 for the first failing
 * pass), `baseSecs` and `maxSecs` parameter references holding the bounds in seconds.
 */
export const backoffSecsSql = (failures: string, baseSecs: string, maxSecs: string) =>
  `least(${maxSecs}::float8, ${baseSecs}::float8 * power(2, least(${BACKOFF_MAX_DOUBLINGS}, ${failures} - 1)))`;

/**
 * In an upsert keyed by a row that records `last_pass_id`: the column's count after this
 * failure, one more unless this pass was already counted (a pass counts once however many
 * attempts it made). `alias` is the upserted table's alias.
 */
export const countOncePerPassSql = (alias: string, column: string) =>
  `${alias}.${column} + (${alias}.last_pass_id IS DISTINCT FROM EXCLUDED.last_pass_id)::int`;
