import {
  continueAsNew,
  executeChild,
  log,
  patched,
  proxyActivities,
  type RetryPolicy,
  setCurrentDetails,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { clusterKey, clusterOf } from '../src/shared/clusters';
import { treatmentOf } from '../src/shared/failure-types';
import { runsTickWideWork } from '../src/shared/shards';
import type {
  ClusterFailure,
  ListedItem,
  ListStaleFailedResult,
  PassRulesInput,
  PassSummary,
  PoolItemRef,
  ReapPassOptions,
  StuckAssignedReport,
} from '../src/shared/types';
import { BATCHED_DELETES_PATCH, DeleteBatches } from './delete-batches';
import { describeDryRun, dryRunPass } from './dry-run-pass';
import {
  deleteItemStep,
  deprovisionRecorded,
  type Failure,
  failureOf,
  forEachConcurrently,
  laneCount,
  OutcomeTally,
} from './item-steps';
import { DRY_RUN_PATCH, withPassOutcome } from './pass-outcome';
import { describePass } from './pass-text';
import { recordReapedTokens } from './reaped-tokens';
import { orphanSummaryFields, reclaimOrphans } from './reclaim-orphans';

type Activities = ReturnType<typeof createActivities>;

/**
 * Passes started before per-cluster lanes and in-pass deferral existed replay without them;
 * every new pass records this marker and gets both. Remove (deprecatePatch) once no pass of
 * the older shape can still be open: passes are short-lived, so one release later.
 */
export const FAIR_CLUSTERS_PATCH = 'pass-fair-clusters-v1';

/**
 * Passes a Schedule starts (`options.scheduled`) continue as new after a full batch that made
 * progress, and record a failed listing themselves. Checked only in such passes, so a ticker's
 * pass records no marker; passes of an older shape never continued and replay as they ran.
 */
export const SCHEDULED_PASS_PATCH = 'pass-scheduled-catch-up-v1';

/** How long bookkeeping keeps retrying an unanswering provisioner database (ReapPassOptions). */
export const DEFAULT_BOOKKEEPING_BUDGET_MS = 2 * 60_000;

/**
 * The pass's bookkeeping: a few queries each. They retry with capped backoff for as long as
 * the pass can usefully wait (a failover, a restart), then give up so that the pass ends and
 * the next tick tries again. No heartbeat: a dead worker costs at most startToClose.
 */
function bookkeeping(options: ReapPassOptions) {
  const budget = laneCount(options.bookkeepingBudgetMs, DEFAULT_BOOKKEEPING_BUDGET_MS);
  const retry: RetryPolicy = {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '15 seconds',
  };
  const quick = proxyActivities<Activities>({
    startToCloseTimeout: '15 seconds',
    scheduleToCloseTimeout: budget,
    retry,
  });
  return {
    listStaleFailed: quick.listStaleFailed,
    recordPassSummary: quick.recordPassSummary,
    // Classification against a large platform inventory may take seconds.
    reportStuckAssigned: proxyActivities<Activities>({
      startToCloseTimeout: '1 minute',
      scheduleToCloseTimeout: Math.max(budget, 60_000),
      retry,
    }).reportStuckAssigned,
  };
}

/**
 * The pass's rules for its bookkeeping activities; nothing for a pass without rules (an older
 * ticker's), whose activities then apply their own worker's config exactly as before.
 */
const rulesArgs = ({ rules, shard }: ReapPassOptions): [] | [PassRulesInput] =>
  rules || shard ? [{ ...(rules ? { rules } : {}), ...(shard ? { shard } : {}) }] : [];

/** What a shard pass other than shard 0 reports: nothing (shard 0 runs the report once per tick). */
const NOT_THIS_SHARD: { report: StuckAssignedReport } = { report: { stuck: {} } };

/** Only the reference travels to the activities: what teardown and the audit log need. */
const refOf = ({ id, resourceType, poolToken, providerResourceId }: PoolItemRef): PoolItemRef => ({
  id,
  resourceType,
  poolToken,
  providerResourceId,
});

const keyOf = (item: PoolItemRef) => clusterKey(item.resourceType, clusterOf(item.providerResourceId));

/**
 * Lanes per cluster: `clusterConcurrency`, and for Redis clusters `redisClusterConcurrency`
 * when the pass carries it (their teardowns share one keyspace walk, so more at once is cheaper,
 * not costlier). Passes without it (older tickers) bound Redis like any cluster.
 */
function laneLimitOf(options: ReapPassOptions): (item: PoolItemRef) => number {
  const cluster = laneCount(options.clusterConcurrency, options.concurrency);
  const redis = laneCount(options.redisClusterConcurrency, cluster);
  return (item) => (item.resourceType === 'redis' ? redis : cluster);
}

/**
 * One reap pass: list stale failed items (fairly across clusters); for each, at most
 * `options.concurrency` at once and `options.clusterConcurrency` per cluster, free its infra
 * and, only when that succeeded, delete its row; record the reaped tokens for visibility;
 * report stuck assigned items alongside. One item's failure never fails the pass; a cluster
 * that fails defers its remaining items to later passes; a listing that never answers ends
 * the pass cleanly. The next pass retries whatever is left.
 */
export async function reapPass(input: ReapPassOptions = { concurrency: 8 }): Promise<PassSummary> {
  // A pass started by hand or by an older ticker may carry anything: lanes must be a positive integer.
  const options: ReapPassOptions = { ...input, concurrency: laneCount(input.concurrency, 8) };
  const fair = patched(FAIR_CLUSTERS_PATCH);
  // Outcome search attributes and the dry-run branch (workflows/pass-outcome.ts).
  const outcomeAware = patched(DRY_RUN_PATCH);
  // One delete statement (and one marker) per workflow task's freed items, not per item.
  const batches = patched(BATCHED_DELETES_PATCH) ? new DeleteBatches(options) : undefined;
  const startedAt = Date.now(); // workflow time: deterministic
  const passId = workflowInfo().workflowId;
  const activities = bookkeeping(options);

  let listing: ListStaleFailedResult;
  try {
    listing = await activities.listStaleFailed(...rulesArgs(options));
  } catch (err) {
    const aborted = abortedPass(passId, startedAt, failureOf(err));
    const summary = outcomeAware ? withPassOutcome(aborted, options) : aborted;
    if (options.scheduled && patched(SCHEDULED_PASS_PATCH)) await recordScheduledFailure(summary);
    return summary;
  }
  const { items, batchLimit } = listing;
  // The stuck-assigned report does not depend on this pass's items: run it alongside them.
  // Settled into a value: its failure is reported in the summary, never fails the pass.
  const reportDone = runsTickWideWork(options.shard)
    ? activities.reportStuckAssigned(...rulesArgs(options)).then(
        (report): { report: StuckAssignedReport } => ({ report }),
        (error: unknown): { error: Failure } => ({ error: failureOf(error) }),
      )
    : Promise.resolve(NOT_THIS_SHARD);
  if (outcomeAware && options.dryRun === true) {
    const planned = withPassOutcome(
      await dryRunPass({ passId, startedAt, listing, options, report: reportDone }),
      options,
    );
    await activities.recordPassSummary(planned).catch((err: unknown) => {
      log.error('could not record the pass summary', { error: failureOf(err).message });
    });
    setCurrentDetails(describeDryRun(planned));
    return planned;
  }
  const reapedTokens: string[] = [];
  const outcomes = new OutcomeTally(
    items.length,
    (t, done, total) =>
      `**Reaping** ${done}/${total} (batch limit ${batchLimit}): reaped ${t.reaped}, refused ${t.refused}, ` +
      `deprovision errors ${t.deprovision_err}, delete errors ${t.delete_err}, skipped ${t.skipped}` +
      (t.deferred > 0 ? `, deferred ${t.deferred}` : ''),
  );

  // Only after its infra is confirmed freed may an item's row go. The delete does not hold
  // up the lane: the lane moves on to its next teardown while the row is deleted.
  const deleteRow = async (item: PoolItemRef) => {
    try {
      const deleted = batches
        ? await batches.delete(item)
        : (await deleteItemStep(item, options)({ item })).deleted;
      if (deleted) reapedTokens.push(item.poolToken);
      outcomes.record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      outcomes.record(item, 'delete_err', failureOf(err));
    }
  };
  const deletes: Promise<void>[] = [];

  // A cluster that failed with a cluster-scoped error this pass: its remaining items wait for
  // a later pass (the activity marked the cluster down in the reaper's table).
  const clusterFailures = new Map<string, ClusterFailure>();
  const reapOne = async (listed: ListedItem) => {
    const item = refOf(listed);
    const key = keyOf(item);
    if (fair && clusterFailures.has(key)) {
      outcomes.record(item, 'deferred');
      return;
    }
    const verdict = await deprovisionRecorded(
      item,
      listed.probe ? { item, probe: true } : { item },
      options,
      outcomes,
    );
    if (verdict.freed) {
      deletes.push(deleteRow(item));
    } else if (fair && verdict.failure && treatmentOf(verdict.failure.type).scope === 'cluster') {
      if (!clusterFailures.has(key)) {
        const cluster = clusterOf(item.providerResourceId);
        clusterFailures.set(key, { resourceType: item.resourceType, cluster, ...errorOf(verdict.failure) });
        log.warn('cluster failed: its remaining items wait for a later pass', { cluster: key });
      }
    }
  };

  // All items share one pool of `concurrency` lanes, at most `clusterConcurrency` per cluster:
  // a lane that finishes takes the next item whose cluster has room, so a slow drop never
  // leaves other lanes idle and one cluster's batch cannot take every lane.
  await forEachConcurrently(
    items,
    options.concurrency,
    reapOne,
    fair ? { limit: laneLimitOf(options), keyOf } : undefined,
  );
  await Promise.all(deletes);
  if (options.recordReapedTokens !== false) await recordReapedTokens(passId, reapedTokens);
  const { tally, errors } = outcomes;

  const reported = await reportDone;
  const report: StuckAssignedReport =
    'report' in reported ? reported.report : { stuck: {}, platformCheck: { status: 'not_configured' } };
  // Only when the worker's config enables reclamation does the report name orphans to reclaim.
  const reclaimable = report.reclaimable ?? [];
  const reclaim =
    reclaimable.length > 0
      ? await executeChild(reclaimOrphans, {
          workflowId: `${passId}-orphans`,
          args: [{ items: reclaimable, options }],
          staticSummary: `reclaim ${reclaimable.length} orphaned assigned item(s) of ${passId}`,
        })
      : undefined;
  const finishedAt = Date.now();
  const done: PassSummary = {
    passId,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - startedAt,
    listed: items.length,
    reaped: tally.reaped,
    deprovisionErrors: tally.deprovision_err,
    deleteErrors: tally.delete_err,
    refused: tally.refused,
    skipped: tally.skipped,
    deferred: tally.deferred,
    batchLimit,
    batchFull: items.length >= batchLimit,
    stuckAssigned: report.stuck,
    outcomes: outcomes.outcomes(),
    errors,
    ...(listing.clustersDown?.length ? { clustersDown: listing.clustersDown } : {}),
    ...(clusterFailures.size > 0 ? { clusterFailures: [...clusterFailures.values()] } : {}),
    ...('error' in reported ? { stuckReportError: errorOf(reported.error) } : {}),
    ...orphanSummaryFields(report, reclaim),
  };
  const summary = outcomeAware ? withPassOutcome(done, options) : done;
  await activities.recordPassSummary(summary).catch((err: unknown) => {
    // The pass did its work; only its counters are lost. The log line says so.
    log.error('could not record the pass summary', { error: failureOf(err).message });
  });
  setCurrentDetails(describePass(summary));
  if (options.scheduled && summary.batchFull && summary.reaped > 0 && patched(SCHEDULED_PASS_PATCH)) {
    // No ticker runs the next pass at once: this one does, as a new run of the same workflow
    // id, so the Schedule (overlap SKIP) sees one pass until the backlog is drained.
    log.info('full batch with progress: continuing as new to drain the backlog', { reaped: summary.reaped });
    await continueAsNew<typeof reapPass>(input);
  }
  return summary;
}

/** A scheduled pass that could not list counts as failed, as the ticker counts it. */
async function recordScheduledFailure(summary: PassSummary): Promise<void> {
  const { recordPassFailure } = proxyActivities<Activities>({
    startToCloseTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3 },
  });
  await recordPassFailure({
    passId: summary.passId,
    reason: 'list_failed',
    message: `${summary.aborted?.errorType}: ${summary.aborted?.message}`,
  }).catch((err: unknown) => log.error('could not record the pass failure', { error: String(err) }));
}

const errorOf = (f: Failure) => ({ errorType: f.type, message: f.message });

/** A pass whose listing never answered: nothing was touched; the ticker counts it and goes on. */
function abortedPass(passId: string, startedAt: number, failure: Failure): PassSummary {
  const finishedAt = Date.now();
  log.error('pass could not list stale failed items; nothing was touched', { error: failure.message });
  const summary: PassSummary = {
    passId,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - startedAt,
    listed: 0,
    reaped: 0,
    deprovisionErrors: 0,
    deleteErrors: 0,
    refused: 0,
    skipped: 0,
    deferred: 0,
    batchLimit: 0,
    batchFull: false,
    stuckAssigned: {},
    outcomes: [],
    errors: [],
    aborted: { stage: 'list', ...errorOf(failure) },
  };
  setCurrentDetails(describePass(summary));
  return summary;
}
