import type { ListStaleFailedResult } from '../src/shared/types';
import type { ActivityDeps } from './deps';

export function listStaleFailedActivity({ store, settings }: ActivityDeps) {
  /**
   * One batch of stale failed items, fair across clusters; small records, never connection
   * URLs. Also names the clusters marked down, so the pass says why their items wait.
   */
  return async function listStaleFailed(): Promise<ListStaleFailedResult> {
    const [items, clustersDown] = await Promise.all([
      store.listStaleFailed(settings.failedGraceMs, settings.batchLimit),
      store.listClustersDown(settings.failedGraceMs),
    ]);
    return { items, batchLimit: settings.batchLimit, clustersDown };
  };
}
