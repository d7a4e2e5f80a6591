/**
 * Plain data exchanged between workflows, activities, teardown backends and clients.
 * Imported into the workflow sandbox: types and pure data only, no Node APIs.
 */

import type { PassShard, ShardPassResult } from './shards';

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

/**
 * What a pass did with an item. `deferred`: not tried this pass because its cluster failed
 * earlier in the same pass (no activity ran for it; the cluster is counted and alerted on).
 */
export type ReapOutcome =
  | 'reaped'
  | 'deprovision_err'
  | 'delete_err'
  | 'refused'
  | 'skipped'
  | 'deferred'
  /** A dry-run pass planned the item and touched nothing (REAPER_DRY_RUN). */
  | 'planned';

/**
 * The rules one pass applies, decided once (from the config of the worker that sent the
 * ticker's settings or created the Schedule) and recorded in the pass's input, so every
 * replica serving the pass applies the same ones and history shows them.
 */
export interface PassRules {
  /** REAPER_FAILED_GRACE: a failed item is stale (listed, torn down) once failed this long. */
  readonly failedGraceMs: number;
  /** REAPER_BATCH_LIMIT: at most this many items listed per pass. */
  readonly batchLimit: number;
  /** REAPER_STUCK_ASSIGNED_GRACE: an assigned item is stuck once assigned this long. */
  readonly stuckAssignedGraceMs: number;
  /** REAPER_ORPHAN_GRACE: an orphan is reclaimed only once assigned this long. */
  readonly orphanGraceMs: number;
}

/** What the pass's bookkeeping activities take: the pass's rules (absent on older passes). */
export interface PassRulesInput {
  readonly rules?: PassRules;
  /** A shard pass lists only its shard's clusters (absent: every cluster, as before shards). */
  readonly shard?: PassShard;
}

/** How a pass runs its items; chosen by the worker's config and carried by the ticker. */
export interface ReapPassOptions {
  readonly concurrency: number;
  /**
   * At most this many teardowns at once on one cluster (REAPER_CLUSTER_CONCURRENCY), so a
   * batch that sits on one cluster cannot hammer it with the whole pass's lanes. Unset on
   * passes started by older tickers: then only `concurrency` bounds them.
   */
  readonly clusterConcurrency?: number;
  /**
   * At most this many Redis teardowns at once on one Redis cluster
   * (REAPER_REDIS_CLUSTER_CONCURRENCY). They share one keyspace walk per cluster in the worker
   * (src/teardown/redis-walker.ts), so a wave of N items costs two walks whatever N, and a
   * waiting item holds a lane but no connection. Unset on passes started by older tickers:
   * then `clusterConcurrency` bounds Redis clusters too.
   */
  readonly redisClusterConcurrency?: number;
  /**
   * How long the pass's bookkeeping (listing, stuck report, summary) keeps retrying a
   * provisioner database that does not answer before the pass ends without it. Default 2 min.
   */
  readonly bookkeepingBudgetMs?: number;
  /**
   * Set by the Schedule trigger (src/trigger/schedule.ts): no ticker follows the pass, so the
   * pass itself continues as new after a full batch that made progress (backlog catch-up) and
   * counts its own failed listing as a pass failure. Unset on passes a ticker starts.
   */
  readonly scheduled?: boolean;
  /** Upsert the ReapedPoolTokens search attribute (false when the namespace lacks it). */
  readonly recordReapedTokens?: boolean;
  /** Upsert ReapOutcome and ReapedCount when the pass ends: only when true (the worker checked the namespace has them). */
  readonly recordPassOutcome?: boolean;
  /**
   * REAPER_DRY_RUN: plan each listed item (verdict and objects, in an activity per item) and
   * touch nothing: no teardown, no row delete, no orphan reclamation.
   */
  readonly dryRun?: boolean;
  /**
   * The pass's graces and batch limit. Unset on passes started by older tickers and
   * Schedules: then each activity applies the config of the replica that runs it.
   */
  readonly rules?: PassRules;
  /**
   * Set by a ticker with REAPER_PASS_SHARDS > 1: this pass lists only the items whose
   * (type, cluster) maps to this shard, and only shard 0 runs the stuck-assigned report.
   */
  readonly shard?: PassShard;
  /** Bounded so a pass always ends; the next pass retries whatever is left. */
  readonly deprovisionRetry?: {
    readonly maximumAttempts?: number;
    readonly initialIntervalMs?: number;
    readonly maximumIntervalMs?: number;
  };
  /**
   * Activity timeouts of each item's deprovision and delete. Unset in production (deprovision:
   * heartbeat 30 s, start-to-close 5 min; delete: start-to-close 30 s); tests lower them so the
   * activities of a killed worker are retried in seconds.
   */
  readonly activityTimeouts?: {
    readonly deprovisionHeartbeatMs?: number;
    readonly deprovisionStartToCloseMs?: number;
    readonly deleteStartToCloseMs?: number;
  };
}

/**
 * What an orphan's deprovision and delete require of its row: still `assigned`, with the
 * same `assigned_at` as when it was classified. Absent for failed items.
 */
export interface AssignedExpectation {
  readonly status: 'assigned';
  /** `assigned_at` as listed: ISO 8601, UTC, microseconds (what Postgres compares exactly). */
  readonly assignedAt: string;
}

export interface DeprovisionInput {
  readonly item: PoolItemRef;
  /** The item's cluster was marked down when listed: success (or any non-cluster answer) clears it. */
  readonly probe?: boolean;
  /** Set only for an orphaned assigned item (opt-in reclamation); failed items omit it. */
  readonly expect?: AssignedExpectation;
  /**
   * The pass's grace for this item (PassRules: the failed grace, or the orphan grace with
   * `expect`), re-checked under the row lock. Absent on older passes: the worker's own config.
   */
  readonly graceMs?: number;
}

export type DeprovisionResult =
  | { readonly outcome: 'freed'; readonly teardown: TeardownResult }
  /** The row changed or vanished since it was listed: nothing was touched. */
  | { readonly outcome: 'skipped'; readonly reason: string };

export interface DeleteItemInput {
  readonly item: PoolItemRef;
  /** Set only for an orphan: the row goes only if still assigned with this assigned_at. */
  readonly expect?: AssignedExpectation;
}

export interface DeleteItemResult {
  readonly deleted: boolean;
  /** Echoed so the local-activity marker in history names the row it deleted. */
  readonly itemId: string;
  readonly poolToken: string;
}

/** A batch of freed stale failed items whose rows may go (the pass's batched delete). */
export interface DeleteItemsInput {
  readonly items: readonly PoolItemRef[];
}

export interface DeleteItemsResult {
  /** One per input item, in order: the marker in history names every row it deleted. */
  readonly items: readonly DeleteItemResult[];
}

/** A listed item; `probe` when its cluster is marked down and this item tests whether it is back. */
export interface ListedItem extends PoolItemRef {
  readonly probe?: boolean;
}

/** A (type, cluster) that refused the reaper recently: its items wait until retryAt, then one probes it. */
export interface ClusterDown {
  readonly resourceType: string;
  readonly cluster: string;
  /** Passes in a row in which it failed. */
  readonly failures: number;
  readonly lastErrorType: string;
  readonly lastError: string;
  readonly downSince: string;
  readonly retryAt: string;
  /** Stale failed items waiting on it. */
  readonly waiting: number;
}

export interface ListStaleFailedResult {
  readonly items: readonly ListedItem[];
  readonly batchLimit: number;
  /** Clusters the listing left out (all but a probe item); absent on passes of older workers. */
  readonly clustersDown?: readonly ClusterDown[];
}

/**
 * How the platform database classifies an assigned item older than the stuck grace:
 * bound to a live resource, bound to a resource in a terminal status, or bound to none.
 * `unknown` only when the platform check failed (nothing is classified then).
 */
export const ASSIGNED_CLASSES = ['bound_live', 'bound_terminal', 'orphan', 'unknown'] as const;
export type AssignedClass = (typeof ASSIGNED_CLASSES)[number];

/**
 * Why a platform check failed closed; the `reason` label of
 * instant_pool_platform_check_failures_total (every one exported from 0, so the first failure
 * is an increase the alert sees).
 */
export const PLATFORM_CHECK_FAILURE_REASONS = [
  'connection',
  'timeout',
  'query',
  'empty_inventory',
  'no_bindings',
] as const;
export type PlatformCheckFailureReason = (typeof PLATFORM_CHECK_FAILURE_REASONS)[number];

export type PlatformCheckStatus =
  | { readonly status: 'not_configured' }
  | { readonly status: 'ok' }
  | { readonly status: 'failed'; readonly reason: PlatformCheckFailureReason; readonly message: string };

/** An assigned item as the orphan audit lists it. */
export interface AssignedItemRef extends PoolItemRef {
  /** `assigned_at`: ISO 8601, UTC, microseconds. */
  readonly assignedAt: string;
  /** Age since assigned_at when it was listed. */
  readonly ageMs: number;
}

/** Most orphans a report or summary lists by name; counts are always complete. */
export const MAX_ORPHANS_LISTED = 20;

/**
 * Most orphans one pass reclaims: their tokens must fit one ReapedPoolTokens value (2 KiB);
 * a token that passes the drop guard is at most 63 ASCII bytes, 66 JSON-encoded with a comma.
 */
export const MAX_ORPHANS_RECLAIMED_PER_PASS = 25;

export interface OrphanAudit {
  /** Orphans found this pass (all of them). */
  readonly total: number;
  /** The oldest ones, at most MAX_ORPHANS_LISTED. */
  readonly items: readonly AssignedItemRef[];
  /** REAPER_RECLAIM_ORPHANS on the worker that classified them. */
  readonly reclaim: boolean;
}

export interface StuckAssignedReport {
  /**
   * Per resource type; every known type present, 0 when none. Without a platform database:
   * every stuck assigned item. With one: only orphans, and EMPTY (no series) while the
   * platform check fails, since nobody can tell then which items are orphans.
   */
  readonly stuck: Readonly<Record<string, number>>;
  /** Per type and class; absent when no platform database is configured. */
  readonly classes?: Readonly<Record<string, Readonly<Record<AssignedClass, number>>>>;
  readonly platformCheck?: PlatformCheckStatus;
  readonly orphans?: OrphanAudit;
  /**
   * Orphans past the orphan grace to reclaim now: only when reclamation is enabled and the
   * platform check succeeded, oldest first, at most MAX_ORPHANS_RECLAIMED_PER_PASS.
   */
  readonly reclaimable?: readonly AssignedItemRef[];
}

export interface RecheckOrphanInput {
  readonly item: PoolItemRef;
  readonly assignedAt: string;
  /** The pass's orphan grace (PassRules); absent on older passes: the worker's own config. */
  readonly graceMs?: number;
}

export type RecheckOrphanResult =
  | { readonly orphan: true }
  | { readonly orphan: false; readonly reason: string };

/** What reclaiming a pass's orphans did; outcomes count under instant_pool_reap_total{status="assigned"}. */
export interface OrphanReclaimSummary {
  readonly attempted: number;
  readonly reclaimed: number;
  readonly skipped: number;
  readonly refused: number;
  readonly deprovisionErrors: number;
  readonly deleteErrors: number;
  readonly outcomes: readonly OutcomeCount[];
  readonly errors: readonly ItemError[];
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

/** Why a pass ended without doing its work; the `reason` label of the pass-failure counter. */
export const PASS_FAILURE_REASONS = [
  'failed',
  'timed_out',
  'terminated',
  'cancelled',
  'start_failed',
  'list_failed',
] as const;
export type PassFailureReason = (typeof PASS_FAILURE_REASONS)[number];

/** A pass that ended without doing its work, as the ticker records it. */
export interface PassFailure {
  readonly passId: string;
  readonly reason: PassFailureReason;
  readonly message: string;
  /** Workflow time, ISO. */
  readonly at: string;
}

/** A cluster that failed during this pass; its remaining items were deferred. */
export interface ClusterFailure {
  readonly resourceType: string;
  readonly cluster: string;
  readonly errorType: string;
  readonly message: string;
}

/** Why a pass ended without reaping: its listing never answered within the bookkeeping budget. */
export interface PassAbort {
  readonly stage: 'list';
  readonly errorType: string;
  readonly message: string;
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
  /** Items not tried because their cluster failed earlier in this pass (absent on older passes). */
  readonly deferred?: number;
  /** Clusters the listing left out because they were marked down (all but one probe item each). */
  readonly clustersDown?: readonly ClusterDown[];
  /** Clusters that failed during this pass. */
  readonly clusterFailures?: readonly ClusterFailure[];
  /** Set when the pass could not list: it ended cleanly and the next tick tries again. */
  readonly aborted?: PassAbort;
  /** Set when the stuck-assigned report failed: the gauges keep their previous values. */
  readonly stuckReportError?: { readonly errorType: string; readonly message: string };
  readonly batchLimit: number;
  readonly batchFull: boolean;
  readonly stuckAssigned: Readonly<Record<string, number>>;
  readonly outcomes: readonly OutcomeCount[];
  /** The first few failures, for the UI and the CLI; counts above are complete. */
  readonly errors: readonly ItemError[];
  /** Whether the stuck assigned items could be classified against the platform database. */
  readonly platformCheck?: PlatformCheckStatus;
  /** Stuck assigned items per type and class (when a platform database is configured). */
  readonly assignedClasses?: Readonly<Record<string, Readonly<Record<AssignedClass, number>>>>;
  /** Orphaned assigned items found this pass. */
  readonly orphans?: OrphanAudit;
  /** Present when this pass reclaimed orphans (REAPER_RECLAIM_ORPHANS=true). */
  readonly orphanReclaim?: OrphanReclaimSummary;
  /** Present on a dry-run pass: its verdicts (nothing was touched). */
  readonly dryRun?: DryRunTotals;
  /** What the pass did, as its ReapOutcome search attribute says (absent on older passes). */
  readonly outcome?: string;
  /** A sharded tick's combined summary (the ticker's, never a pass's): its shard passes. */
  readonly shards?: readonly ShardPassResult[];
}

/** Verdicts of a dry-run pass; `failed`: items whose planning itself failed. */
export interface DryRunTotals {
  readonly reap: number;
  readonly refuse: number;
  readonly skip: number;
  readonly failed: number;
}

/** One object a teardown would touch (see src/teardown/backend.ts PlannedObject). */
export interface PlannedObjectInfo {
  readonly kind: string;
  readonly name: string;
  readonly exists: boolean | null;
  readonly count?: number;
  readonly kept?: string;
}

/** What a dry-run pass's planItem activity found for one item. */
export interface PlanItemResult {
  readonly itemId: string;
  readonly poolToken: string;
  readonly verdict: 'reap' | 'refuse' | 'skip';
  readonly reason?: string;
  readonly guard?: { readonly site: string; readonly reason: string };
  readonly objects: readonly PlannedObjectInfo[];
}
