import { executeChild, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { PassSummary, PoolItemRef, ReapPassOptions } from '../src/shared/types';
import {
  deleteItemStep,
  deprovisionRecorded,
  failureOf,
  forEachConcurrently,
  OutcomeTally,
} from './item-steps';
import { recordReapedTokens } from './reaped-tokens';
import { describeOrphans, orphanSummaryFields, reclaimOrphans } from './reclaim-orphans';

type Activities = ReturnType<typeof createActivities>;

const bookkeeping = proxyActivities<Activities>({
  // Short: these are a few queries, and a worker that dies mid-call should cost seconds.
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/**
 * One reap pass: list stale failed items; for each, at most `options.concurrency` at once,
 * free its infra and, only when that succeeded, delete its row; record the reaped tokens for
 * visibility; then report stuck assigned items. One item's failure never fails the pass; the
 * next pass retries it.
 */
export async function reapPass(options: ReapPassOptions = { concurrency: 8 }): Promise<PassSummary> {
  const startedAt = Date.now(); // workflow time: deterministic
  const passId = workflowInfo().workflowId;
  const { items, batchLimit } = await bookkeeping.listStaleFailed();
  // The stuck-assigned report does not depend on this pass's items: run it alongside them.
  // Settled into a value so a failure is rethrown where it is awaited, not reported as unhandled.
  const reportDone = bookkeeping.reportStuckAssigned().then(
    (report) => ({ report }),
    (error: unknown) => ({ error }),
  );
  const reapedTokens: string[] = [];
  const outcomes = new OutcomeTally(
    items.length,
    (t, done, total) =>
      `**Reaping** ${done}/${total} (batch limit ${batchLimit}): reaped ${t.reaped}, refused ${t.refused}, ` +
      `deprovision errors ${t.deprovision_err}, delete errors ${t.delete_err}, skipped ${t.skipped}`,
  );

  // Only after its infra is confirmed freed may an item's row go. The delete does not hold
  // up the lane: the lane moves on to its next teardown while the row is deleted.
  const deleteRow = async (item: PoolItemRef) => {
    try {
      const { deleted } = await deleteItemStep(item, options)({ item });
      if (deleted) reapedTokens.push(item.poolToken);
      outcomes.record(item, deleted ? 'reaped' : 'skipped');
    } catch (err) {
      outcomes.record(item, 'delete_err', failureOf(err));
    }
  };
  const deletes: Promise<void>[] = [];

  // All items share one pool of `concurrency` lanes: a lane that finishes takes the next item,
  // so a slow drop never leaves other lanes idle.
  await forEachConcurrently(items, options.concurrency, async (item) => {
    if (await deprovisionRecorded(item, { item }, options, outcomes)) deletes.push(deleteRow(item));
  });
  await Promise.all(deletes);
  if (options.recordReapedTokens !== false) await recordReapedTokens(passId, reapedTokens);
  const { tally, errors } = outcomes;

  const reported = await reportDone;
  if ('error' in reported) throw reported.error;
  const { report } = reported;
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
  const summary: PassSummary = {
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
    batchLimit,
    batchFull: items.length >= batchLimit,
    stuckAssigned: report.stuck,
    outcomes: outcomes.outcomes(),
    errors,
    ...orphanSummaryFields(report, reclaim),
  };
  await bookkeeping.recordPassSummary(summary);
  setCurrentDetails(
    `**Done** listed ${summary.listed}, reaped ${summary.reaped}, refused ${summary.refused}, ` +
      `deprovision errors ${summary.deprovisionErrors}, delete errors ${summary.deleteErrors}, ` +
      `skipped ${summary.skipped}, in ${summary.durationMs} ms` +
      describeOrphans(summary),
  );
  return summary;
}
