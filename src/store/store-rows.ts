import { countsByType } from '../shared/keyed';
import type { PoolItemRef } from '../shared/types';

/** Small helpers the store modules share: a row to a reference, counts per known type. */

export function toRef(row: {
  id: string;
  resource_type: string;
  pool_token: string;
  provider_resource_id: string;
}): PoolItemRef {
  return {
    id: row.id,
    resourceType: row.resource_type,
    poolToken: row.pool_token,
    providerResourceId: row.provider_resource_id,
  };
}

/**
 * Per type, with every known type present so a type that went to zero is exported as 0.
 * Prototype-free: a resource_type of `__proto__` is an ordinary key.
 */
export function withKnownTypes(counts: Readonly<Record<string, number>>): Record<string, number> {
  return countsByType(Object.entries(counts));
}

/** `resource_type, n` rows of a GROUP BY as counts per type (every known type present). */
export function countsOf(rows: readonly { resource_type: string; n: string }[]): Record<string, number> {
  return countsByType(rows.map((r) => [r.resource_type, Number(r.n)] as const));
}
