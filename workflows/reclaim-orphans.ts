import { log, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { createActivities } from '../activities';
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
} from './item-steps';

type Activities = ReturnType<typeof createActivities>;

export interface ReclaimOrphansInput {
  /** Orphans past the orphan grace, as reportStuckAssigned listed them (it caps how many). */
  readonly items: readonly AssignedItemRef[];
  readonly options: ReapPassOptions;
}

function recheckOrphanActivity(item: PoolItemRef) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
    summary: `recheck orphan ${item.resourceType} ${item.poolToken}`,
  }).recheckOrphan;
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
  const outcomes = new OutcomeTally(
    items.length,
    (t, done, total) =>
      `**Reclaiming orphans** ${done}/${total}: reclaimed ${t.reaped}, kept ${t.skipped}, ` +
      `refused ${t.refused}, deprovision errors ${t.deprovision_err}, delete errors ${t.delete_err}`,
  );
  await forEachConcurrently(items, options.concurrency, async (orphan) => {
    const item = refOf(orphan);
    const expect: AssignedExpectation = { status: 'assigned', assignedAt: orphan.assignedAt };
    try {
      const verdict = await recheckOrphanActivity(item)({ item, assignedAt: orphan.assignedAt });
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

function formatAge(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48
    ? `${Math.floor(hours / 24)}d`
    : hours >= 1
      ? `${Math.floor(hours)}h`
      : `${Math.floor(ms / 60_000)}m`;
}

/** Extra UI lines for a pass: platform check, orphans (token, type, age), reclaim results. */
export function describeOrphans(summary: PassSummary): string {
  const lines: string[] = [];
  const check = summary.platformCheck;
  if (check?.status === 'failed') {
    lines.push(`**Platform check failed** (${check.reason}): ${check.message}; nothing treated as orphan`);
  }
  const orphans = summary.orphans;
  if (orphans && orphans.total > 0) {
    const listed = orphans.items.map((o) => `${o.resourceType} ${o.poolToken} (${formatAge(o.ageMs)})`);
    const more = orphans.total > listed.length ? `, and ${orphans.total - listed.length} more` : '';
    lines.push(
      `**Orphans** ${orphans.total}${orphans.reclaim ? '' : ' (audit only, nothing dropped)'}: ${listed.join(', ')}${more}`,
    );
  }
  const r = summary.orphanReclaim;
  if (r) {
    lines.push(
      `**Orphans reclaimed** ${r.reclaimed}/${r.attempted}: kept ${r.skipped}, refused ${r.refused}, ` +
        `deprovision errors ${r.deprovisionErrors}, delete errors ${r.deleteErrors}`,
    );
  }
  return lines.map((l) => `\n\n${l}`).join('');
}
