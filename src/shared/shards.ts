/**
 * Shard passes (REAPER_PASS_SHARDS): with N > 1 the ticker starts N reap passes per tick, each
 * listing only the items whose (type, cluster) maps to its shard (src/store/shard-rule.ts).
 * Pure: imported into the workflow sandbox (the hash itself is not: it needs Node's md5).
 */
import type { PassFailure, PassSummary } from './types';

/** Most shards a ticker starts per tick (REAPER_PASS_SHARDS bound). */
export const MAX_PASS_SHARDS = 64;

/** Which shard a pass is: `index` in 0..count-1. Shard 0 also runs the stuck-assigned report. */
export interface PassShard {
  readonly index: number;
  readonly count: number;
}

export const isShardCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_PASS_SHARDS;

export function isPassShard(v: unknown): v is PassShard {
  if (typeof v !== 'object' || v === null) return false;
  const { index, count } = v as Partial<Record<keyof PassShard, unknown>>;
  return (
    isShardCount(count) && typeof index === 'number' && Number.isInteger(index) && index >= 0 && index < count
  );
}

/** A shard pass's workflow id: the tick's pass id, then `-shard-<index>of<count>`. */
export function shardWorkflowId(passId: string, shard: PassShard): string {
  return `${passId}-shard-${shard.index}of${shard.count}`;
}

/** The shard a pass workflow id names, if any (for the `passes` CLI). */
export function shardOfWorkflowId(workflowId: string): PassShard | undefined {
  const m = /-shard-(\d+)of(\d+)$/.exec(workflowId);
  if (!m) return undefined;
  const shard = { index: Number(m[1]), count: Number(m[2]) };
  return isPassShard(shard) ? shard : undefined;
}

/** Whether this pass runs the once-per-tick work (stuck-assigned report, orphan reclamation). */
export const runsTickWideWork = (shard: PassShard | undefined): boolean =>
  shard === undefined || shard.index === 0;

/** One shard pass of a tick, as the tick's combined summary lists it. */
export interface ShardPassResult {
  readonly passId: string;
  readonly listed: number;
  readonly reaped: number;
  readonly batchFull: boolean;
  /** Set when the shard ended without its work (failed, terminated, timed out, could not list). */
  readonly failure?: PassFailure['reason'];
}

/**
 * The tick's summary from its shard passes' summaries (those that ended with one): counts are
 * sums, `batchFull` says some shard's batch was full and made progress (so the ticker catches
 * up at once), `shards` names each shard pass. Each shard pass keeps its own summary too.
 */
export function combineShardSummaries(
  passId: string,
  shards: readonly { passId: string; summary?: PassSummary; failure?: PassFailure }[],
): PassSummary | undefined {
  const done = shards.flatMap((s) => (s.summary ? [s.summary] : []));
  if (done.length === 0) return undefined;
  const sum = (f: (s: PassSummary) => number | undefined) => done.reduce((n, s) => n + (f(s) ?? 0), 0);
  const startedAt = done.map((s) => s.startedAt).sort()[0]!;
  const finishedAt = done.map((s) => s.finishedAt).sort()[done.length - 1]!;
  // The tick-wide report is shard 0's (no other shard runs it); absent if shard 0 ended without a summary.
  const first = shards[0]?.summary;
  const clustersDown = done.flatMap((s) => s.clustersDown ?? []);
  const clusterFailures = done.flatMap((s) => s.clusterFailures ?? []);
  const dry = done.filter((s) => s.dryRun);
  return {
    passId,
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    listed: sum((s) => s.listed),
    reaped: sum((s) => s.reaped),
    deprovisionErrors: sum((s) => s.deprovisionErrors),
    deleteErrors: sum((s) => s.deleteErrors),
    refused: sum((s) => s.refused),
    skipped: sum((s) => s.skipped),
    deferred: sum((s) => s.deferred),
    batchLimit: sum((s) => s.batchLimit),
    batchFull: done.some((s) => s.batchFull && s.reaped > 0),
    stuckAssigned: first?.stuckAssigned ?? {},
    outcomes: done.flatMap((s) => s.outcomes),
    errors: done.flatMap((s) => s.errors).slice(0, 20),
    ...(clustersDown.length > 0 ? { clustersDown } : {}),
    ...(clusterFailures.length > 0 ? { clusterFailures } : {}),
    ...(first?.stuckReportError ? { stuckReportError: first.stuckReportError } : {}),
    ...(first?.platformCheck ? { platformCheck: first.platformCheck } : {}),
    ...(first?.assignedClasses ? { assignedClasses: first.assignedClasses } : {}),
    ...(first?.orphans ? { orphans: first.orphans } : {}),
    ...(first?.orphanReclaim ? { orphanReclaim: first.orphanReclaim } : {}),
    ...(dry.length > 0
      ? {
          dryRun: {
            reap: dry.reduce((n, s) => n + s.dryRun!.reap, 0),
            refuse: dry.reduce((n, s) => n + s.dryRun!.refuse, 0),
            skip: dry.reduce((n, s) => n + s.dryRun!.skip, 0),
            failed: dry.reduce((n, s) => n + s.dryRun!.failed, 0),
          },
        }
      : {}),
    shards: shards.map((s) => ({
      passId: s.passId,
      listed: s.summary?.listed ?? 0,
      reaped: s.summary?.reaped ?? 0,
      batchFull: s.summary?.batchFull ?? false,
      ...(s.failure ? { failure: s.failure.reason } : {}),
    })),
  };
}
