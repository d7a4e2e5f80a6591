import {
  ASSIGNED_CLASSES,
  type AssignedClass,
  type PlatformCheckFailureReason,
  RESOURCE_TYPES,
} from '../shared/types';

/**
 * Pure classification of stuck assigned pool items against what the platform database
 * says, and the plausibility rule that makes it fail closed. No I/O here.
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

/** No binding: orphan. Any live (or unrecognised) binding: bound_live. Only terminal ones: bound_terminal. */
export function classOf(statuses: readonly string[] | undefined): Exclude<AssignedClass, 'unknown'> {
  if (statuses === undefined || statuses.length === 0) return 'orphan';
  const terminal = statuses.every((s) => TERMINAL_STATUSES.includes(s.trim().toLowerCase()));
  return terminal ? 'bound_terminal' : 'bound_live';
}

export type ClassCounts = Record<string, Record<AssignedClass, number>>;

/** Every known type and every class present, so a series that went to zero is exported as 0. */
export function emptyClassCounts(): ClassCounts {
  const counts: ClassCounts = {};
  for (const type of RESOURCE_TYPES) counts[type] = zeroClasses();
  return counts;
}

function zeroClasses(): Record<AssignedClass, number> {
  return Object.fromEntries(ASSIGNED_CLASSES.map((c) => [c, 0])) as Record<AssignedClass, number>;
}

export interface ClassifiableItem {
  readonly resourceType: string;
  readonly poolToken: string;
}

export interface Classification<T extends ClassifiableItem> {
  /** Per type and class (every known type, every class). */
  readonly classes: ClassCounts;
  /** The stuck gauge's value: orphans per type (every known type). */
  readonly stuck: Record<string, number>;
  /** The orphans, in input order. */
  readonly orphans: T[];
  /** Set when the check failed closed: then nothing is an orphan and every item is `unknown`. */
  readonly failure?: PlausibilityFailure;
}

function stuckFrom(classes: ClassCounts, cls: AssignedClass | 'all'): Record<string, number> {
  return Object.fromEntries(
    Object.entries(classes).map(([type, c]) => [
      type,
      cls === 'all' ? Object.values(c).reduce((a, b) => a + b, 0) : c[cls],
    ]),
  );
}

/**
 * Classifies items against an inventory (or a failure reading it). On failure, or when the
 * inventory is implausible, nothing is an orphan: every item is `unknown`, and the stuck
 * count falls back to every stuck assigned item, as when no platform database is configured.
 */
export function classifyItems<T extends ClassifiableItem>(
  items: readonly T[],
  inventory: PlatformInventory | PlausibilityFailure,
): Classification<T> {
  const classes = emptyClassCounts();
  const failure = 'reason' in inventory ? inventory : checkPlausible(inventory, items.length);
  const bindings = 'reason' in inventory || failure !== undefined ? undefined : inventory.bindings;
  const orphans: T[] = [];
  for (const item of items) {
    const cls: AssignedClass = bindings === undefined ? 'unknown' : classOf(bindings.get(item.poolToken));
    classes[item.resourceType] ??= zeroClasses();
    classes[item.resourceType]![cls] += 1;
    if (cls === 'orphan') orphans.push(item);
  }
  if (failure !== undefined) return { classes, stuck: stuckFrom(classes, 'all'), orphans: [], failure };
  return { classes, stuck: stuckFrom(classes, 'orphan'), orphans };
}
