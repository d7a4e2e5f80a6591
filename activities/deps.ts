import { Context } from '@temporalio/activity';
import type { Logger } from '../src/logger';
import type { ReaperMetrics } from '../src/metrics';
import type { PlatformLookup } from '../src/platform/platform-store';
import type { PoolItemRef, TeardownResult } from '../src/shared/types';
import type { Backoff, PoolStore } from '../src/store/pool-store';
import type { BackendPlan, GuardDecision } from '../src/teardown';

/** The slice of the teardown registry the activities use; tests may pass a fake. */
export interface Teardown {
  /** Pure checks (guard, type, cluster) that throw before any connection opens. */
  preflight(item: PoolItemRef, options?: { log?: Logger }): void;
  teardown(
    item: PoolItemRef,
    options?: { onProgress?: (step: string) => void; log?: Logger },
  ): Promise<TeardownResult>;
  /** The guard's decision as a value, no audit line (dry-run passes; the registry has it). */
  decide?(item: PoolItemRef): GuardDecision;
  /** Read-only plan of a teardown (dry-run passes; the registry has it). */
  plan?(item: PoolItemRef): Promise<BackendPlan>;
}

/**
 * The activity's logger: every line (the audit events included) carries the workflow and
 * activity it belongs to, so a `provisioner.drop` line leads straight to its history.
 */
export function activityLogger(log: Logger): Logger {
  const info = Context.current().info;
  return log.child({
    workflowId: info.workflowExecution?.workflowId,
    runId: info.workflowExecution?.runId,
    workflowType: info.workflowType,
    activityType: info.activityType,
    activityId: info.activityId,
    attempt: info.attempt,
    taskQueue: info.taskQueue,
  });
}

export interface ActivitySettings {
  readonly failedGraceMs: number;
  readonly stuckAssignedGraceMs: number;
  readonly batchLimit: number;
  readonly quarantineAfter: number;
  /** Backoff of an item after a retryable failure of its own. Default 30 s doubling, at most 1 h. */
  readonly itemBackoff?: Backoff;
  /** Cool-down of a cluster after a cluster-scoped failure. Default 15 s doubling, at most 5 min. */
  readonly clusterBackoff?: Backoff;
  /** REAPER_RECLAIM_ORPHANS: tear down orphaned assigned items (needs `platform`). Default false. */
  readonly reclaimOrphans?: boolean;
  /** REAPER_ORPHAN_GRACE: an orphan is reclaimed only once assigned this long. Default 24h. */
  readonly orphanGraceMs?: number;
  /**
   * Time one pass may spend advancing the classification of stuck assigned items against the
   * platform database (src/platform/sweep.ts). Default 2 s.
   */
  readonly platformSweepBudgetMs?: number;
  /** Fixed rows per slice of that classification (tests and benchmarks); adapted to the budget when unset. */
  readonly platformSweepSliceRows?: number;
  /** How long a bound verdict stands before a complete platform scan must confirm it again. Default 6 h. */
  readonly platformReverifyMs?: number;
  /** TEMPORAL_UI_URL: the pass-completed log line links the pass there. */
  readonly temporalUiUrl?: string;
}

export const DEFAULT_ORPHAN_GRACE_MS = 24 * 3_600_000;
export const DEFAULT_ITEM_BACKOFF: Backoff = { baseMs: 30_000, maxMs: 3_600_000 };
export const DEFAULT_CLUSTER_BACKOFF: Backoff = { baseMs: 15_000, maxMs: 300_000 };

export interface ActivityDeps {
  readonly store: PoolStore;
  readonly teardown: Teardown;
  readonly settings: ActivitySettings;
  readonly metrics: ReaperMetrics;
  readonly log: Logger;
  /** The platform database (PLATFORM_DATABASE_URL), read only; absent when not configured. */
  readonly platform?: PlatformLookup;
}

/**
 * Orphan reclamation runs only with the opt-in AND a platform database to ask. `graceMs`: the
 * pass's orphan grace when its input carries one (PassRules), else this worker's.
 */
export function orphanReclamation(
  deps: ActivityDeps,
  graceMs?: number,
): { platform: PlatformLookup; graceMs: number } | undefined {
  if (deps.settings.reclaimOrphans !== true || deps.platform === undefined) return undefined;
  return {
    platform: deps.platform,
    graceMs: graceMs ?? deps.settings.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS,
  };
}

export { STATE_KEYS } from '../src/store/state-keys';
