import { classifyAgainstPlatform } from '../src/platform/check';
import {
  type AssignedItemRef,
  MAX_ORPHANS_LISTED,
  MAX_ORPHANS_RECLAIMED_PER_PASS,
  type PlatformCheckStatus,
  type StuckAssignedReport,
} from '../src/shared/types';
import { type StuckAssignedRow, withKnownTypes } from '../src/store/pool-store';
import { type ActivityDeps, orphanReclamation, STATE_KEYS } from './deps';

const toAssignedRef = ({ quarantined: _, ...ref }: StuckAssignedRow): AssignedItemRef => ref;

export function reportStuckAssignedActivity(deps: ActivityDeps) {
  const { store, settings, platform, metrics, log } = deps;
  /**
   * Counts assigned rows older than the stuck grace, per type (every known type, 0 when
   * none), and publishes them as the shared snapshot every replica's gauge reads.
   *
   * With a platform database, classifies each of them (bound_live, bound_terminal, orphan)
   * and counts only orphans as stuck; a failed or implausible platform check classifies
   * nothing as orphan. Returns the orphans to reclaim only when reclamation is enabled.
   */
  return async function reportStuckAssigned(): Promise<StuckAssignedReport> {
    if (platform === undefined) {
      const stuck = await store.countStuckAssigned(settings.stuckAssignedGraceMs);
      await store.writeState(STATE_KEYS.stuckAssigned, { stuck });
      return { stuck, platformCheck: { status: 'not_configured' } };
    }

    const items = await store.listStuckAssigned(settings.stuckAssignedGraceMs);
    const result = await classifyAgainstPlatform({ platform, metrics, log }, items);
    const platformCheck: PlatformCheckStatus = result.failure
      ? { status: 'failed', reason: result.failure.reason, message: result.failure.message }
      : { status: 'ok' };
    const stuck = withKnownTypes(result.stuck);
    const reclamation = orphanReclamation(deps);
    // Oldest first (the listing's order); a failed check has no orphans, so nothing to reclaim.
    const reclaimable = reclamation
      ? result.orphans
          .filter((o) => !o.quarantined && o.ageMs >= reclamation.graceMs)
          .slice(0, Math.min(settings.batchLimit, MAX_ORPHANS_RECLAIMED_PER_PASS))
          .map(toAssignedRef)
      : undefined;
    const orphans = {
      total: result.orphans.length,
      items: result.orphans.slice(0, MAX_ORPHANS_LISTED).map(toAssignedRef),
      reclaim: reclamation !== undefined,
    };

    await store.writeState(STATE_KEYS.stuckAssigned, { stuck, classes: result.classes, platformCheck });
    if (orphans.total > 0) {
      log.info(
        {
          event: 'pool_reaper.orphans.found',
          total: orphans.total,
          reclaim: orphans.reclaim,
          reclaimable: reclaimable?.length ?? 0,
          orphans: orphans.items.map((o) => ({
            poolToken: o.poolToken,
            resourceType: o.resourceType,
            assignedAt: o.assignedAt,
          })),
        },
        orphans.reclaim ? 'orphaned assigned items found' : 'orphaned assigned items found (audit only)',
      );
    }
    return {
      stuck,
      classes: result.classes,
      platformCheck,
      orphans,
      ...(reclaimable !== undefined ? { reclaimable } : {}),
    };
  };
}
