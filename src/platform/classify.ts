import { countsByType, keyedRecord } from '../shared/keyed';
import {
  ASSIGNED_CLASSES,
  type AssignedClass,
  type PlatformCheckFailureReason,
  RESOURCE_TYPES,
} from '../shared/types';

/**
 * Pure classification of stuck assigned pool items against what the platform database
 * says, and the rules that make it fail closed. No I/O here.
 */

/** Resource statuses the platform treats as finished; anything else counts as live. */
export const TERMINAL_STATUSES: readonly string[] = ['failed', 'expired', 'deleted', 'reaped'];
/** The live statuses domain.md lists (documentation: an unknown status is treated as live too). */
export const LIVE_STATUSES: readonly string[] = ['pending', 'active', 'paused', 'suspended'];

/** What the platform database holds for a set of pool tokens, read in one snapshot. */
export interface PlatformInventory {
  /** `resources` has at least one row. */
  readonly hasResources: boolean;
  /** At least one `resources` row carries a `pooltok:<token>` segment. */
  readonly hasBindings: boolean;
  /** Statuses of the resources rows bound to each asked token (keys as asked); absent = none. */
  readonly bindings: ReadonlyMap<string, readonly string[]>;
}

export interface PlausibilityFailure {
  readonly reason: PlatformCheckFailureReason;
  readonly message: string;
}

/**
 * An inventory that cannot be right must not turn bound items into orphans. With items to
 * classify, it is implausible when `resources` is empty (wrong or freshly restored
 * database) or when no resources row carries any `pooltok:` binding (the binding format
 * changed, or the wrong database): either way every item would look orphaned.
 * With nothing to classify nothing can become an orphan, so there is nothing to distrust.
 */
export function checkPlausible(
  inventory: Pick<PlatformInventory, 'hasResources' | 'hasBindings'>,
  itemsToClassify: number,
): PlausibilityFailure | undefined {
  if (itemsToClassify === 0) return undefined;
  if (!inventory.hasResources) {
    return {
      reason: 'empty_inventory',
      message: `the platform resources table has no rows while ${itemsToClassify} assigned item(s) need classifying`,
    };
  }
  if (!inventory.hasBindings) {
    return {
      reason: 'no_bindings',
      message: `no platform resource carries a pooltok: segment while ${itemsToClassify} assigned item(s) need classifying`,
    };
  }
  return undefined;
}

/** A resource status that keeps its pool item bound: anything not terminal (unknown ones too). */
export function isLiveStatus(status: string | null | undefined): boolean {
  return !TERMINAL_STATUSES.includes(
    String(status ?? '')
      .trim()
      .toLowerCase(),
  );
}

/** No binding: orphan. Any live (or unrecognised) binding: bound_live. Only terminal ones: bound_terminal. */
export function classOf(statuses: readonly string[] | undefined): Exclude<AssignedClass, 'unknown'> {
  if (statuses === undefined || statuses.length === 0) return 'orphan';
  return statuses.some(isLiveStatus) ? 'bound_live' : 'bound_terminal';
}

export type ClassCounts = Record<string, Record<AssignedClass, number>>;

function zeroClasses(): Record<AssignedClass, number> {
  const classes = keyedRecord<number>() as Record<AssignedClass, number>;
  for (const cls of ASSIGNED_CLASSES) classes[cls] = 0;
  return classes;
}

/** One row of a per-type, per-class count (e.g. a GROUP BY over the reaper's own table). */
export interface ClassCountRow {
  readonly resourceType: string;
  /** Anything not a known class counts as `unknown`. */
  readonly cls: string;
  readonly n: number;
}

export interface AssignedTally {
  /** Per type and class: every known type and every class present (0 when none). */
  readonly classes: ClassCounts;
  /**
   * The stuck gauge's value: orphans per type (every known type present) when the platform
   * check succeeded; EMPTY when it failed, so the gauge has no series: an item nobody could
   * classify is not reported as an orphan, nor as "0 orphans".
   */
  readonly stuck: Record<string, number>;
  /** Orphans counted (0 when the check failed). */
  readonly orphans: number;
}

/**
 * Folds per-type class counts into the report's shape. When the platform check failed, no
 * count is an orphan: earlier orphan verdicts were not confirmed now, so they count as
 * `unknown`, like every item never classified; bound items stay bound (a binding, once seen,
 * is re-verified on its own schedule). Every map is prototype-free: a type named `__proto__`
 * is an ordinary key.
 */
export function tallyAssigned(rows: Iterable<ClassCountRow>, checkFailed: boolean): AssignedTally {
  const classes = keyedRecord<Record<AssignedClass, number>>();
  for (const type of RESOURCE_TYPES) classes[type] = zeroClasses();
  let orphans = 0;
  for (const row of rows) {
    const known = (ASSIGNED_CLASSES as readonly string[]).includes(row.cls)
      ? (row.cls as AssignedClass)
      : 'unknown';
    const cls: AssignedClass = checkFailed && known === 'orphan' ? 'unknown' : known;
    const perType = classes[row.resourceType] ?? zeroClasses();
    classes[row.resourceType] = perType;
    perType[cls] += row.n;
    if (cls === 'orphan') orphans += row.n;
  }
  const stuck = checkFailed
    ? keyedRecord<number>()
    : countsByType(Object.entries(classes).map(([type, c]) => [type, c.orphan] as const));
  return { classes, stuck, orphans };
}
