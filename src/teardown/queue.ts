import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';

/**
 * Queue (shared NATS) teardown: the shared server keeps no per-item state, so there is
 * nothing to drop and nothing to connect to. Succeeds at once with confirmedFreed.
 */
export function teardownQueueItem(item: PoolItemRef): TeardownResult {
  return {
    resourceType: item.resourceType,
    poolToken: item.poolToken,
    cluster: clusterOf(item.providerResourceId),
    dropped: [],
    alreadyGone: [],
    remaining: [],
    kept: [],
    confirmedFreed: true,
  };
}
