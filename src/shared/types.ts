/**
 * Plain data exchanged between workflows, activities, teardown backends and clients.
 * Imported into the workflow sandbox: types and pure data only, no Node APIs.
 */

export const RESOURCE_TYPES = ['postgres', 'redis', 'mongodb', 'queue'] as const;
export type KnownResourceType = (typeof RESOURCE_TYPES)[number];

/** The small record a listing returns: never the connection_url. */
export interface PoolItemRef {
  readonly id: string;
  readonly resourceType: string;
  readonly poolToken: string;
  readonly providerResourceId: string;
}

/** What one teardown did, per infra object, and whether absence was confirmed afterwards. */
export interface TeardownResult {
  readonly resourceType: string;
  readonly poolToken: string;
  readonly cluster: string;
  /** Objects this run removed, e.g. `database db_pool-…`, `role usr_pool-…`, `keys pool-…:* (12)`. */
  readonly dropped: readonly string[];
  /** Objects that were already absent when this run looked. */
  readonly alreadyGone: readonly string[];
  /** Objects still present after this run (empty when confirmedFreed). */
  readonly remaining: readonly string[];
  /** Objects deliberately left alone, with the reason (e.g. a legacy ACL user owned by someone else). */
  readonly kept: readonly string[];
  readonly confirmedFreed: boolean;
}

export type ReapOutcome = 'reaped' | 'deprovision_err' | 'delete_err' | 'refused' | 'skipped';

/** How a pass runs its items; chosen by the worker's config and carried by the ticker. */
export interface ReapPassOptions {
  readonly concurrency: number;
  /** Upsert the ReapedPoolTokens search attribute (false when the namespace lacks it). */
  readonly recordReapedTokens?: boolean;
  /** Bounded so a pass always ends; the next pass retries whatever is left. */
  readonly deprovisionRetry?: {
    readonly maximumAttempts?: number;
    readonly initialIntervalMs?: number;
    readonly maximumIntervalMs?: number;
  };
}

export interface DeprovisionInput {
  readonly item: PoolItemRef;
}

export type DeprovisionResult =
  | { readonly outcome: 'freed'; readonly teardown: TeardownResult }
  /** The row changed or vanished since it was listed: nothing was touched. */
  | { readonly outcome: 'skipped'; readonly reason: string };

export interface DeleteItemInput {
  readonly item: PoolItemRef;
}

export interface DeleteItemResult {
  readonly deleted: boolean;
}

export interface ListStaleFailedResult {
  readonly items: readonly PoolItemRef[];
  readonly batchLimit: number;
}

export interface StuckAssignedReport {
  /** Per resource type; every known type present, 0 when none. */
  readonly stuck: Readonly<Record<string, number>>;
}

export interface ItemError {
  readonly id: string;
  readonly poolToken: string;
  readonly resourceType: string;
  readonly outcome: ReapOutcome;
  readonly errorType: string;
  readonly message: string;
}

export interface OutcomeCount {
  readonly resourceType: string;
  readonly outcome: ReapOutcome;
  readonly count: number;
}

export interface PassSummary {
  readonly passId: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly listed: number;
  readonly reaped: number;
  readonly deprovisionErrors: number;
  readonly deleteErrors: number;
  readonly refused: number;
  /** Rows that changed state between listing and teardown: left alone. */
  readonly skipped: number;
  readonly batchLimit: number;
  readonly batchFull: boolean;
  readonly stuckAssigned: Readonly<Record<string, number>>;
  readonly outcomes: readonly OutcomeCount[];
  /** The first few failures, for the UI and the CLI; counts above are complete. */
  readonly errors: readonly ItemError[];
}
