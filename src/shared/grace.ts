/**
 * The grace rules, once: which timestamp a row ages by, and when it is past its grace. The
 * SQL fragments (src/store/predicates.ts) are built from these constants, and this module is
 * their JavaScript twin (for workflows, tests and anything that reasons about rows it already
 * holds); test/store/grace.test.ts holds the two to the same answers on real rows. Pure.
 */

/**
 * Since when a failed row has been failed: Discard sets assigned_at; a row that reached
 * `failed` without one (a provisioner bug, a hand edit) ages by created_at instead of never
 * being listed (and leaking for good). The first non-null column wins.
 */
export const FAILED_SINCE_COLUMNS = ['assigned_at', 'created_at'] as const;

/** Since when an assigned row has been assigned (stuck-assigned report, orphan grace). */
export const ASSIGNED_SINCE_COLUMNS = ['assigned_at'] as const;

export type SinceColumn = (typeof FAILED_SINCE_COLUMNS)[number];

/** The row's age origin in ms, as SQL's COALESCE over `columns` computes it; undefined when all are null. */
export function sinceOf(
  columns: readonly SinceColumn[],
  row: Readonly<Partial<Record<SinceColumn, Date | null>>>,
): number | undefined {
  for (const column of columns) {
    const value = row[column];
    if (value !== null && value !== undefined) return value.getTime();
  }
  return undefined;
}

/** Strictly older than the grace, as `since < now() - grace` in SQL; a row with no origin never is. */
export function isPastGrace(sinceMs: number | undefined, graceMs: number, nowMs: number): boolean {
  return sinceMs !== undefined && sinceMs < nowMs - graceMs;
}

/** A failed row past the failed grace (the JavaScript twin of staleFailedSql). */
export function isStaleFailed(
  row: Readonly<{ status: string } & Partial<Record<SinceColumn, Date | null>>>,
  graceMs: number,
  nowMs: number,
): boolean {
  return row.status === 'failed' && isPastGrace(sinceOf(FAILED_SINCE_COLUMNS, row), graceMs, nowMs);
}
