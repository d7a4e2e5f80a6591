import type { Logger } from '../src/logger';
import type { ReaperMetrics } from '../src/metrics';
import type { PoolItemRef, TeardownResult } from '../src/shared/types';
import type { PoolStore } from '../src/store/pool-store';

/** The slice of the teardown registry the activities use; tests may pass a fake. */
export interface Teardown {
  /** Pure checks (guard, type, cluster) that throw before any connection opens. */
  preflight(item: PoolItemRef): void;
  teardown(item: PoolItemRef, options?: { onProgress?: (step: string) => void }): Promise<TeardownResult>;
}

export interface ActivitySettings {
  readonly failedGraceMs: number;
  readonly stuckAssignedGraceMs: number;
  readonly batchLimit: number;
  readonly quarantineAfter: number;
  /** How often a running deprovision heartbeats while it waits on Postgres. */
  readonly heartbeatIntervalMs?: number;
}

export interface ActivityDeps {
  readonly store: PoolStore;
  readonly teardown: Teardown;
  readonly settings: ActivitySettings;
  readonly metrics: ReaperMetrics;
  readonly log: Logger;
}

/** Keys of the reaper's shared state rows (pool_reaper_state). */
export const STATE_KEYS = { stuckAssigned: 'stuck_assigned', lastPass: 'last_pass' } as const;
