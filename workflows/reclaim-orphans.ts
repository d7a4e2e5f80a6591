import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { REAPED_POOL_TOKENS_KEY } from '../src/shared/search-attributes';
import type {
  AssignedExpectation,
  AssignedItemRef,
  ItemError,
  OrphanReclaimSummary,
  OutcomeCount,
  PassSummary,
  PoolItemRef,
  ReapOutcome,
  ReapPassOptions,
  StuckAssignedReport,
} from '../src/shared/types';
import { forEachConcurrently, NON_RETRYABLE_TYPES, REFUSAL_TYPES } from './reap-batch';

type Activities = ReturnType<typeof createActivities>;

const MAX_ERRORS_IN_SUMMARY = 20;

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

/** The same retried deprovision as a failed item's (see reap-batch.ts), with the orphan's expectation. */
function deprovisionActivity(item: PoolItemRef, options: ReapPassOptions) {
  const retry = options.deprovisionRetry ?? {};
  const timeouts = options.activityTimeouts ?? {};
  return proxyActivities<Activities>({
    startToCloseTimeout: timeouts.deprovisionStartToCloseMs ?? '5 minutes',
    heartbeatTimeout: timeouts.deprovisionHeartbeatMs ?? '30 seconds',
    retry: {
      initialInterval: retry.initialIntervalMs ?? 1000,
      backoffCoefficient: 2,
      maximumInterval: retry.maximumIntervalMs ?? 30_000,
      maximumAttempts: retry.maximumAttempts ?? 5,
      nonRetryableErrorTypes: NON_RETRYABLE_TYPES,
    },
    summary: `deprovision orphan ${item.resourceType} ${item.poolToken}`,
  }).deprovision;
}

function deleteItemActivity(item: PoolItemRef, options: ReapPassOptions) {
  return proxyActivities<Activities>({
    startToCloseTimeout: options.activityTimeouts?.deleteStartToCloseMs ?? '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
    summary: `delete orphan row ${item.resourceType} ${item.poolToken}`,
  }).deleteItem;
}

function failureOf(err: unknown): { type: string; message: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: 'Error', message: String(cause) };
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
  const counts = new Map<string, number>();
  const errors: ItemError[] = [];
  const reclaimedTokens: string[] = [];
  const tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
  };
  let done = 0;

  const record = (item: PoolItemRef, outcome: ReapOutcome, failure?: { type: string; message: string }) => {
    tally[outcome] += 1;
    const key = `${item.resourceType}\u0000${outcome}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (failure && errors.length < MAX_ERRORS_IN_SUMMARY) {
      errors.push({
        id: item.id,
        poolToken: item.poolToken,
        resourceType: item.resourceType,
        outcome,
        errorType: failure.type,
        message: failure.message,
      });
    }
    done += 1;
    setCurrentDetails(
      `**Reclaiming orphans** ${done}/${items.length}: reclaimed ${tally.reaped}, kept ${tally.skipped}, ` +
        `refused ${tally.refused}, deprovision errors ${tally.deprovision_err}, delete errors ${tally.delete_err}`,
    );
  };

  setCurrentDetails(`**Reclaiming orphans** 0/${items.length}`);
  await forEachConcurrently(items, options.concurrency, async (orphan) => {
    const item = refOf(orphan);
    const expect: AssignedExpectation = { status: 'assigned', assignedAt: orphan.assignedAt };
    try {
      const verdict = await recheckOrphanActivity(item)({ item, assignedAt: orphan.assignedAt });
      if (!verdict.orphan) {
        log.info('orphan kept after recheck', { poolToken: item.poolToken, reason: verdict.reason });
        record(item, 'skipped');
        return;
      }
    } catch (err) {
      // Could not re-check: leave it for the next pass.
      record(item, 'skipped', failureOf(err));
      return;
    }
    try {
      const result = await deprovisionActivity(item, options)({ item, expect });
      if (result.outcome === 'skipped') {
        log.info('orphan kept by deprovision', { poolToken: item.poolToken, reason: result.reason });
        record(item, 'skipped');
        return;
      }
    } catch (err) {
      const failure = failureOf(err);
      record(item, REFUSAL_TYPES.includes(failure.type) ? 'refused' : 'deprovision_err', failure);
      log.warn('orphan deprovision failed; row kept', { poolToken: item.poolToken, errorType: failure.type });
      return;
    }
    try {
      const { deleted } = await deleteItemActivity(item, options)({ item, expect });
      if (deleted) reclaimedTokens.push(item.poolToken);
      record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      record(item, 'delete_err', failureOf(err));
    }
  });

  // At most MAX_ORPHANS_RECLAIMED_PER_PASS guard-valid tokens: they fit one attribute value.
  if (reclaimedTokens.length > 0 && options.recordReapedTokens !== false) {
    upsertSearchAttributes([{ key: REAPED_POOL_TOKENS_KEY, value: reclaimedTokens }]);
  }
  const outcomes: OutcomeCount[] = [...counts].map(([key, count]) => {
    const [resourceType = '', outcome] = key.split('\u0000');
    return { resourceType, outcome: outcome as ReapOutcome, count };
  });
  return {
    attempted: items.length,
    reclaimed: tally.reaped,
    skipped: tally.skipped,
    refused: tally.refused,
    deprovisionErrors: tally.deprovision_err,
    deleteErrors: tally.delete_err,
    outcomes,
    errors,
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
