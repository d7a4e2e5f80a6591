import pg from 'pg';
import { FailedItemsStore } from './failed-items';

export type { BacklogRow } from './failed-items';
export {
  ItemLockedError,
  type LockedRun,
  type RowExpectation,
  SharedPoolTokenError,
} from './item-lock';
export type { Backoff, FailureRecord, QuarantineRow, ReleaseSelector } from './quarantine';
export { withKnownTypes } from './store-rows';

/**
 * All SQL the reaper runs against the provisioner's database: reads of pool_items, the
 * conditional delete, and the reaper's own tables. It never updates a provisioner column.
 */
export class PoolStore extends FailedItemsStore {
  static connect(url: string, maxConnections: number, onIdleError?: (err: Error) => void): PoolStore {
    return new PoolStore(
      new pg.Pool({
        connectionString: url,
        max: maxConnections,
        application_name: 'pool-reaper',
        connectionTimeoutMillis: 10_000,
        statement_timeout: 30_000,
      }),
      onIdleError,
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
