import { sweepStuckAssigned } from '../src/platform/sweep';
import {
  type AssignedItemRef,
  MAX_ORPHANS_LISTED,
  MAX_ORPHANS_RECLAIMED_PER_PASS,
  type PassRulesInput,
  type PlatformCheckStatus,
  type StuckAssignedReport,
} from '../src/shared/types';
import type { MirrorOrphan } from '../src/store/assigned-mirror';
import { type ActivityDeps, orphanReclamation, STATE_KEYS } from './deps';
import { passRules } from './pass-rules';

const toAssignedRef = ({ quarantined: _, ...ref }: MirrorOrphan): AssignedItemRef => ref;

export function reportStuckAssignedActivity(deps: ActivityDeps) {
  const { store, settings, platform, metrics, log } = deps;
  /**
   * Counts assigned rows older than the stuck grace, per type (every known type, 0 when
   * none), and publishes them as the shared snapshot every replica's gauge reads.
   *
   * With a platform database, advances the classification sweep by one pass's budget (see
   * src/platform/sweep.ts) and reports what the reaper's own table knows: classes per type,
   * and orphans as stuck. While the platform check fails, nothing is an orphan and the stuck
   * gauge has no series; the activity still returns (a slow or failing platform never fails
   * the pass). Returns the orphans to reclaim only when reclamation is enabled. Long (about
   * 70 lines) because the fail-closed paths (no platform, check failed, check passed) each
   * publish a complete snapshot; a partial one would leave a gauge stale.
   */
  return async function reportStuckAssigned(input: PassRulesInput = {}): Promise<StuckAssignedReport> {
    const rules = passRules(settings, input.rules);
    if (platform === undefined) {
      const stuck = await store.countStuckAssigned(rules.stuckAssignedGraceMs);
      await store.writeState(STATE_KEYS.stuckAssigned, { stuck });
      return { stuck, platformCheck: { status: 'not_configured' } };
    }

    const reclamation = orphanReclamation(deps, rules.orphanGraceMs);
    const result = await sweepStuckAssigned(
      { pool: store.pool, platform, metrics, log },
      {
        graceMs: rules.stuckAssignedGraceMs,
        ...(settings.platformSweepBudgetMs === undefined ? {} : { budgetMs: settings.platformSweepBudgetMs }),
        ...(settings.platformReverifyMs === undefined ? {} : { reverifyMs: settings.platformReverifyMs }),
        ...(settings.platformSweepSliceRows === undefined
          ? {}
          : { sliceRows: settings.platformSweepSliceRows }),
      },
      {
        listOrphans: MAX_ORPHANS_LISTED,
        // Oldest first; a failed check names no orphans, so there is nothing to reclaim.
        ...(reclamation
          ? {
              reclaim: {
                minAgeMs: reclamation.graceMs,
                limit: Math.min(rules.batchLimit, MAX_ORPHANS_RECLAIMED_PER_PASS),
              },
            }
          : {}),
      },
    );
    const platformCheck: PlatformCheckStatus = result.failure
      ? { status: 'failed', reason: result.failure.reason, message: result.failure.message }
      : { status: 'ok' };
    const reclaimable = reclamation ? (result.reclaimable ?? []).map(toAssignedRef) : undefined;
    const orphans = {
      total: result.orphans,
      items: result.orphanItems.map(toAssignedRef),
      reclaim: reclamation !== undefined,
    };

    await store.writeState(STATE_KEYS.stuckAssigned, {
      stuck: result.stuck,
      classes: result.classes,
      platformCheck,
      sweep: result.progress,
    });
    log.debug({ event: 'pool_reaper.assigned_sweep', ...result.progress }, 'stuck assigned classification');
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
      stuck: result.stuck,
      classes: result.classes,
      platformCheck,
      orphans,
      ...(reclaimable !== undefined ? { reclaimable } : {}),
    };
  };
}
