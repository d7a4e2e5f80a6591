import { log, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type {
  DryRunTotals,
  ItemError,
  ListStaleFailedResult,
  OutcomeCount,
  PassSummary,
  PlanItemResult,
  PoolItemRef,
  ReapPassOptions,
  StuckAssignedReport,
} from '../src/shared/types';
import { type Failure, failureOf, forEachConcurrently, laneCount } from './item-steps';

type Activities = ReturnType<typeof createActivities>;

/** One item's read-only plan; its summary names the item in the UI, as a teardown's does. */
function planItemStep(item: PoolItemRef) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3 },
    summary: `dry run: ${item.resourceType} ${item.poolToken}`,
  }).planItem;
}

export interface DryRunPassInput {
  readonly passId: string;
  readonly startedAt: number;
  readonly listing: ListStaleFailedResult;
  readonly options: ReapPassOptions;
  /** The stuck-assigned report, started by the pass alongside (read-only; never reclaims here). */
  readonly report: Promise<{ report: StuckAssignedReport } | { error: Failure }>;
}

/**
 * REAPER_DRY_RUN: the pass lists as usual, then records per item (an activity each) the
 * verdict and the objects a teardown would touch, and touches nothing: no teardown, no row
 * delete, no failure record, no orphan reclamation, no ReapedPoolTokens.
 */
export async function dryRunPass(input: DryRunPassInput): Promise<PassSummary> {
  const { passId, startedAt, listing, options } = input;
  const { items, batchLimit } = listing;
  const totals: Record<keyof DryRunTotals, number> = { reap: 0, refuse: 0, skip: 0, failed: 0 };
  const perType = new Map<string, number>();
  const errors: ItemError[] = [];
  const progress = () =>
    `**Dry run** ${totals.reap + totals.refuse + totals.skip + totals.failed}/${items.length}: would reap ${totals.reap}, ` +
    `refuse ${totals.refuse}, skip ${totals.skip}${totals.failed ? `, planning failed ${totals.failed}` : ''}; nothing touched`;
  setCurrentDetails(progress());

  await forEachConcurrently(items, laneCount(options.concurrency, 8), async (listed) => {
    const item: PoolItemRef = {
      id: listed.id,
      resourceType: listed.resourceType,
      poolToken: listed.poolToken,
      providerResourceId: listed.providerResourceId,
    };
    try {
      const result: PlanItemResult = await planItemStep(item)({
        item,
        ...(options.rules ? { graceMs: options.rules.failedGraceMs } : {}),
      });
      totals[result.verdict] += 1;
    } catch (err) {
      const failure = failureOf(err);
      totals.failed += 1;
      if (errors.length < 20) {
        errors.push({
          id: item.id,
          poolToken: item.poolToken,
          resourceType: item.resourceType,
          outcome: 'planned',
          errorType: failure.type,
          message: failure.message,
        });
      }
      log.warn('dry run: planning an item failed', { poolToken: item.poolToken, errorType: failure.type });
    }
    perType.set(item.resourceType, (perType.get(item.resourceType) ?? 0) + 1);
    setCurrentDetails(progress());
  });

  const reported = await input.report;
  const report: StuckAssignedReport =
    'report' in reported ? reported.report : { stuck: {}, platformCheck: { status: 'not_configured' } };
  const outcomes: OutcomeCount[] = [...perType].map(([resourceType, count]) => ({
    resourceType,
    outcome: 'planned',
    count,
  }));
  const finishedAt = Date.now();
  return {
    passId,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - startedAt,
    listed: items.length,
    reaped: 0,
    deprovisionErrors: 0,
    deleteErrors: 0,
    refused: 0,
    skipped: 0,
    deferred: 0,
    batchLimit,
    batchFull: items.length >= batchLimit,
    stuckAssigned: report.stuck,
    outcomes,
    errors,
    ...(listing.clustersDown?.length ? { clustersDown: listing.clustersDown } : {}),
    ...(report.platformCheck ? { platformCheck: report.platformCheck } : {}),
    ...('error' in reported
      ? { stuckReportError: { errorType: reported.error.type, message: reported.error.message } }
      : {}),
    dryRun: totals,
  };
}

/** The dry-run pass's final current details in the Web UI. */
export function describeDryRun(s: PassSummary): string {
  const t = s.dryRun;
  if (!t) return '';
  return (
    `**Dry run done** (REAPER_DRY_RUN): listed ${s.listed}; would reap ${t.reap}, refuse ${t.refuse}, ` +
    `skip ${t.skip}${t.failed ? `, planning failed ${t.failed}` : ''}. Nothing was dropped and no row deleted; ` +
    'each item’s verdict and objects are in its planItem activity.'
  );
}
