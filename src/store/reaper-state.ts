import type pg from 'pg';
import { secs } from './predicates';

/**
 * The store is one facade (PoolStore) over one connection pool, grouped by idea into a chain
 * of small classes so that each module holds one group of statements and callers keep one
 * object: reaper-state.ts (shared state rows, pass records, tombstones) → quarantine.ts
 * (failures, deferrals, clusters down) → item-lock.ts (the row lock and the conditional
 * delete) → assigned-items.ts → failed-items.ts → pool-store.ts (connect, close).
 */
export class ReaperStateStore {
  constructor(
    readonly pool: pg.Pool,
    onIdleError: (err: Error) => void = () => undefined,
  ) {
    // An idle connection that the server closes (restart, pg_terminate_backend, failover) is
    // discarded by the pool; without a listener Node would treat it as an uncaught error.
    pool.on('error', onIdleError);
  }

  /** Claims the right to count a pass: true once per pass id, however often it is asked. */
  async claimPassRecord(passId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'INSERT INTO pool_reaper_passes (pass_id) VALUES ($1) ON CONFLICT (pass_id) DO NOTHING',
      [passId],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Pass records only guard against retried recordings; drop them with the tombstones. */
  async prunePassRecords(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM pool_reaper_passes WHERE recorded_at < now() - make_interval(secs => $1)',
      [secs(olderThanMs)],
    );
    return rowCount ?? 0;
  }

  /** Tombstones only answer retries; keep them a while for audits, then drop them. */
  async pruneReaped(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      'DELETE FROM pool_reaper_reaped WHERE reaped_at < now() - make_interval(secs => $1)',
      [secs(olderThanMs)],
    );
    return rowCount ?? 0;
  }

  async writeState(key: string, value: unknown): Promise<void> {
    await this.pool.query(
      `INSERT INTO pool_reaper_state (key, value, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [key, JSON.stringify(value)],
    );
  }

  async readState<T>(key: string): Promise<{ value: T; updatedAt: Date } | undefined> {
    const { rows } = await this.pool.query('SELECT value, updated_at FROM pool_reaper_state WHERE key = $1', [
      key,
    ]);
    const row = rows[0];
    return row ? { value: row.value as T, updatedAt: row.updated_at } : undefined;
  }
}
