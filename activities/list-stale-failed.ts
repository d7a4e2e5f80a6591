import type { ListStaleFailedResult } from '../src/shared/types';
import type { ActivityDeps } from './deps';

export function listStaleFailedActivity({ store, settings }: ActivityDeps) {
  /** Stale failed items, oldest first, at most one batch; small records, never connection URLs. */
  return async function listStaleFailed(): Promise<ListStaleFailedResult> {
    const items = await store.listStaleFailed(settings.failedGraceMs, settings.batchLimit);
    return { items, batchLimit: settings.batchLimit };
  };
}
