import type { ListStaleFailedResult, PassRulesInput } from '../src/shared/types';
import type { ActivityDeps } from './deps';
import { passRules } from './pass-rules';

export function listStaleFailedActivity({ store, settings }: ActivityDeps) {
  /**
   * One batch of stale failed items, fair across clusters; small records, never connection
   * URLs. Also names the clusters marked down, so the pass says why their items wait.
   * A shard pass (input.shard) gets only its shard's items and clusters.
   */
  return async function listStaleFailed(input: PassRulesInput = {}): Promise<ListStaleFailedResult> {
    const { failedGraceMs, batchLimit } = passRules(settings, input.rules);
    const [items, clustersDown] = await Promise.all([
      store.listStaleFailed(failedGraceMs, batchLimit, input.shard),
      store.listClustersDown(failedGraceMs, input.shard),
    ]);
    return { items, batchLimit, clustersDown };
  };
}
