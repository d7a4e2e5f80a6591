import { RESOURCE_TYPES } from './types';

/**
 * Records keyed by data read from a row (a resource type, a status). A plain `{}` inherits
 * Object.prototype, so a row whose resource_type is `__proto__` or `constructor` would read
 * or write the prototype instead of its own entry (`counts[type] ??= …` then `+= 1` pollutes
 * every object in the process). These records have no prototype: every key is an own key.
 * They serialise to JSON like any object. Pure: imported by workflows and activities alike.
 */

/** An empty record with no prototype. */
export function keyedRecord<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

/** Own entries of a record (any record: one parsed from JSON may carry a `__proto__` key). */
export function ownEntries<V>(record: Readonly<Record<string, V>> | undefined): [string, V][] {
  return record === undefined ? [] : (Object.entries(record) as [string, V][]);
}

/**
 * Counts per resource type with every known type present (0 when none), so a series that
 * went to zero is exported as 0 rather than disappearing; prototype-free.
 */
export function countsByType(entries: Iterable<readonly [string, number]>): Record<string, number> {
  const counts = keyedRecord<number>();
  for (const type of RESOURCE_TYPES) counts[type] = 0;
  for (const [type, n] of entries) counts[type] = (counts[type] ?? 0) + n;
  return counts;
}
