import { insertPoolItemRow, newPoolToken, type PoolItemStatus, type Queryable } from '../../src/dev/seed';
import type { PoolItemRef } from '../../src/shared/types';

/** A pool_items row with no infra behind it (queue/mongodb items, refused tokens, unreachable clusters). */
export async function insertRow(
  pool: Queryable,
  row: {
    resourceType: string;
    status: PoolItemStatus;
    ageMs: number;
    poolToken?: string;
    providerResourceId?: string;
  },
): Promise<PoolItemRef & { ageMs: number }> {
  const poolToken = row.poolToken ?? newPoolToken();
  const ref = await insertPoolItemRow(pool, {
    ...row,
    poolToken,
    connectionUrl: `nats://usr_${poolToken}:not-a-real-secret@127.0.0.1:4222`,
  });
  return { ...ref, ageMs: row.ageMs };
}
