import { log, upsertSearchAttributes } from '@temporalio/workflow';
import { REAPED_POOL_TOKENS_KEY } from '../src/shared/search-attributes';
import type {
  AssignedExpectation,
  AssignedItemRef,
  OrphanReclaimSummary,
  PassSummary,
  PoolItemRef,
  ReapPassOptions,
  StuckAssignedReport,
} from '../src/shared/types';
import {
  deleteItemStep,
  deprovisionRecorded,
  failureOf,
  forEachConcurrently,
  OutcomeTally,
  recheckOrphanStep,
} from './item-steps';
import { reclaimProgress } from './pass-text';

export interface ReclaimOrphansInput {
  /** Orphans past the orphan grace, as reportStuckAssigned listed them (it caps how many). */
  readonly items: readonly AssignedItemRef[];
  readonly options: ReapPassOptions;
}

/** Only the reference travels to the activities: what teardown and the audit log need. */
const refOf = ({ id, resourceType, poolToken, providerResourceId }: AssignedItemRef): PoolItemRef => ({
  id,
  resourceType,
  poolToken,
  providerResourceId,
});

/**
 * Reclaims orphaned assigned items (REAPER_RECLAIM_ORPHANS=true only), each in three
 * audited steps: recheckOrphan (row and platform asked again), deprovision (row locked,
 * still assigned with the same assigned_at, platform asked once more, then teardown), and
 * deleteItem (only if still assigned with the same assigned_at). Any doubt leaves the item
 * alone; one item's failure never fails the others.
 */
export async function reclaimOrphans({ items, options }: ReclaimOrphansInput): Promise<OrphanReclaimSummary> {
  const reclaimedTokens: string[] = [];
  const outcomes = new OutcomeTally(items.length, reclaimProgress);
  await forEachConcurrently(items, options.concurrency, async (orphan) => {
    const item = refOf(orphan);
    const expect: AssignedExpectation = { status: 'assigned', assignedAt: orphan.assignedAt };
    try {
      const verdict = await recheckOrphanStep(item)({
        item,
        assignedAt: orphan.assignedAt,
        ...(options.rules ? { graceMs: options.rules.orphanGraceMs } : {}),
      });
      if (!verdict.orphan) {
        log.info('orphan kept after recheck', { poolToken: item.poolToken, reason: verdict.reason });
        outcomes.record(item, 'skipped');
        return;
      }
    } catch (err) {
      // Could not re-check: leave it for the next pass.
      outcomes.record(item, 'skipped', failureOf(err));
      return;
    }
    if (!(await deprovisionRecorded(item, { item, expect }, options, outcomes, 'orphan ')).freed) return;
    try {
      const { deleted } = await deleteItemStep(item, options, 'orphan ')({ item, expect });
      if (deleted) reclaimedTokens.push(item.poolToken);
      outcomes.record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      outcomes.record(item, 'delete_err', failureOf(err));
    }
  });

  // At most MAX_ORPHANS_RECLAIMED_PER_PASS guard-valid tokens: they fit one attribute value.
  if (reclaimedTokens.length > 0 && options.recordReapedTokens !== false) {
    upsertSearchAttributes([{ key: REAPED_POOL_TOKENS_KEY, value: reclaimedTokens }]);
  }
  return {
    attempted: items.length,
    reclaimed: outcomes.tally.reaped,
    skipped: outcomes.tally.skipped,
    refused: outcomes.tally.refused,
    deprovisionErrors: outcomes.tally.deprovision_err,
    deleteErrors: outcomes.tally.delete_err,
    outcomes: outcomes.outcomes(),
    errors: outcomes.errors,
  };
}

/** The pass summary's orphan fields, from the report and (when it ran) the reclaim. */
export function orphanSummaryFields(
  report: StuckAssignedReport,
  reclaim: OrphanReclaimSummary | undefined,
): Pick<PassSummary, 'platformCheck' | 'assignedClasses' | 'orphans' | 'orphanReclaim'> {
  return {
    ...(report.platformCheck ? { platformCheck: report.platformCheck } : {}),
    ...(report.classes ? { assignedClasses: report.classes } : {}),
    ...(report.orphans ? { orphans: report.orphans } : {}),
    ...(reclaim ? { orphanReclaim: reclaim } : {}),
  };
}
