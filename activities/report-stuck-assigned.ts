import type { StuckAssignedReport } from '../src/shared/types';
import { type ActivityDeps, STATE_KEYS } from './deps';

export function reportStuckAssignedActivity({ store, settings }: ActivityDeps) {
  /**
   * Counts assigned rows older than the stuck grace, per type (every known type, 0 when
   * none), and publishes them as the shared snapshot every replica's gauge reads.
   */
  return async function reportStuckAssigned(): Promise<StuckAssignedReport> {
    const stuck = await store.countStuckAssigned(settings.stuckAssignedGraceMs);
    await store.writeState(STATE_KEYS.stuckAssigned, { stuck });
    return { stuck };
  };
}
