import { executeChild, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type {
  ItemError,
  OutcomeCount,
  PassSummary,
  PoolItemRef,
  ReapOutcome,
  ReapPassOptions,
} from '../src/shared/types';
import { forEachConcurrently } from './item-steps';
import { type BatchResult, reapBatch } from './reap-batch';
import { describeOrphans, orphanSummaryFields, reclaimOrphans } from './reclaim-orphans';

type Activities = ReturnType<typeof createActivities>;

/**
 * Temporal caps one search attribute value at 2 KiB (the default `limit.searchAttributesSizeOfValueLimit`);
 * a batch's reaped tokens, JSON-encoded, must fit with room to spare.
 */
const TOKEN_LIST_BUDGET_BYTES = 1800;
const MAX_ERRORS_IN_SUMMARY = 20;

const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
});

/** UTF-8 length without relying on TextEncoder inside the workflow sandbox. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}

/** Splits items into the fewest near-equal batches whose token lists fit one search attribute. */
export function planBatches(items: readonly PoolItemRef[]): PoolItemRef[][] {
  if (items.length === 0) return [];
  const widest = Math.max(...items.map((i) => utf8Length(JSON.stringify(i.poolToken)) + 1));
  const perBatch = Math.max(1, Math.floor(TOKEN_LIST_BUDGET_BYTES / widest));
  const count = Math.ceil(items.length / perBatch);
  // Round-robin keeps batch sizes within one of each other, so no batch runs long alone.
  return Array.from({ length: count }, (_, b) => items.filter((_, i) => i % count === b));
}

function merge(results: readonly BatchResult[]) {
  const tally: Record<ReapOutcome, number> = {
    reaped: 0,
    deprovision_err: 0,
    delete_err: 0,
    refused: 0,
    skipped: 0,
  };
  const counts = new Map<string, OutcomeCount>();
  const errors: ItemError[] = [];
  for (const r of results) {
    for (const [k, v] of Object.entries(r.tally)) tally[k as ReapOutcome] += v;
    for (const o of r.outcomes) {
      const key = `${o.resourceType}\u0000${o.outcome}`;
      counts.set(key, { ...o, count: (counts.get(key)?.count ?? 0) + o.count });
    }
    errors.push(...r.errors.slice(0, MAX_ERRORS_IN_SUMMARY - errors.length));
  }
  return { tally, outcomes: [...counts.values()], errors };
}

/**
 * One reap pass: list stale failed items, then reap them in batches (child workflows) at a
 * total concurrency of `options.concurrency`, then report stuck assigned items. One item's
 * failure never fails the pass; the next pass retries it.
 */
export async function reapPass(options: ReapPassOptions = { concurrency: 8 }): Promise<PassSummary> {
  const startedAt = Date.now(); // workflow time: deterministic
  const passId = workflowInfo().workflowId;
  const { items, batchLimit } = await bookkeeping.listStaleFailed();
  const batches = planBatches(items);
  // Share the concurrency between batches so the pass as a whole uses exactly that many lanes.
  const parallel = Math.max(1, Math.min(batches.length, options.concurrency));
  const lanesFor = (index: number) =>
    Math.max(
      1,
      Math.floor(options.concurrency / parallel) +
        (index % parallel < options.concurrency % parallel ? 1 : 0),
    );
  const results: BatchResult[] = [];
  setCurrentDetails(`**Listed** ${items.length} stale failed item(s) in ${batches.length} batch(es)`);

  await forEachConcurrently(
    batches.map((batch, index) => ({ batch, index })),
    parallel,
    async ({ batch, index }) => {
      const result = await executeChild(reapBatch, {
        workflowId: `${passId}-batch-${index + 1}`,
        args: [{ items: batch, options: { ...options, concurrency: lanesFor(index) } }],
        staticSummary: `batch ${index + 1}/${batches.length} of ${passId}: ${batch.length} item(s)`,
      });
      results.push(result);
      const soFar = merge(results).tally;
      setCurrentDetails(
        `**Reaping** ${results.length}/${batches.length} batch(es) done: reaped ${soFar.reaped}, ` +
          `refused ${soFar.refused}, errors ${soFar.deprovision_err + soFar.delete_err}`,
      );
    },
  );

  const { tally, outcomes, errors } = merge(results);
  const report = await bookkeeping.reportStuckAssigned();
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
    outcomes,
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
