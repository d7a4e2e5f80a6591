import type pg from 'pg';
import type { Logger } from '../logger';
import type { ReaperMetrics } from '../metrics';
import { AssignedMirror, type MirrorOrphan, type SweepState } from '../store/assigned-mirror';
import { reportFailure } from './check';
import { type AssignedTally, isLiveStatus, type PlausibilityFailure, tallyAssigned } from './classify';
import { type PlatformLookup, platformErrorMessage, platformErrorReason } from './platform-store';

/**
 * One pass's share of classifying stuck assigned items against the platform database.
 *
 * Every pass used to read every old assigned row and ask the platform about all of them, in
 * chunks that each read the whole `resources` table: a cost that grows with every customer,
 * since bound items stay assigned for good. Now the work is a sweep (see AssignedMirror)
 * advanced by at most `budgetMs` of slices per pass, so a pass costs about the same with a
 * hundred or a million bound items; what is known is kept in the reaper's own table, and a
 * bound item is written again only when its re-verification falls due.
 *
 * Fail closed: if the platform cannot be read (or looks implausible) in this pass, no item
 * is reported as an orphan, the stuck gauge has no series, and the caller gets a `failure`
 * instead of an exception, so the pass goes on.
 */

export interface SweepSettings {
  /** An assigned item older than this is stuck (REAPER_STUCK_ASSIGNED_GRACE). */
  readonly graceMs: number;
  /** Time this pass may spend advancing the sweep (default 2 s); 0 does exactly one slice. */
  readonly budgetMs?: number;
  /** Fixed rows per slice instead of sizes adapted to the budget (tests, benchmarks). */
  readonly sliceRows?: number;
  /** How long a bound verdict stands before the next complete scan must confirm it (default 6 h). */
  readonly reverifyMs?: number;
}

export const DEFAULT_SWEEP_BUDGET_MS = 2_000;
export const DEFAULT_REVERIFY_MS = 6 * 3_600_000;

/** Slice sizes adapt between these so that a slice takes about a quarter of the budget. */
const MIN_SLICE_ROWS = 500;
const MAX_SLICE_ROWS = 200_000;
/** The platform always gets at least this long to answer, even late in the budget. */
const MIN_PLATFORM_MS = 1_000;

export interface SweepProgress {
  readonly sweep: number;
  readonly phase: SweepState['phase'];
  /** The last sweep that completed, and when: the age of the orphan verdicts. */
  readonly completedSweep: number | null;
  readonly completedAt: string | null;
  /** Slices done in this pass. */
  readonly syncSlices: number;
  readonly scanSlices: number;
  /** This pass did not hold the sweep lock (another attempt was running): it only read. */
  readonly follower: boolean;
}

export interface SweepPassResult extends AssignedTally {
  readonly failure?: PlausibilityFailure;
  /** The oldest orphans (none when the check failed). */
  readonly orphanItems: readonly MirrorOrphan[];
  /** Orphans reclamation may take now (only when asked for and the check did not fail). */
  readonly reclaimable?: readonly MirrorOrphan[];
  readonly progress: SweepProgress;
}

export interface SweepDeps {
  /** The provisioner database (pool_items and the reaper's own tables). */
  readonly pool: pg.Pool;
  readonly platform: PlatformLookup;
  readonly metrics: ReaperMetrics;
  readonly log: Logger;
}

export interface SweepOptions {
  /** How many orphans to name. */
  readonly listOrphans: number;
  /** Set when reclamation is on: which orphans it may take. */
  readonly reclaim?: { readonly minAgeMs: number; readonly limit: number };
}

function adapt(rows: number, tookMs: number, budgetMs: number): number {
  const target = budgetMs / 4;
  if (tookMs < target / 2) return Math.min(MAX_SLICE_ROWS, rows * 2);
  if (tookMs > target) return Math.max(MIN_SLICE_ROWS, Math.floor(rows / 2));
  return rows;
}

const asFailure = (err: unknown): PlausibilityFailure => ({
  reason: platformErrorReason(err),
  message: platformErrorMessage(err),
});

/**
 * The end of a complete scan. The items that needed a verdict and were not found bound are
 * orphans, unless what the scan saw is implausible: no `resources` row at all, or no
 * binding in any of them (a wrong or restored database, a changed binding format). Then
 * nothing is marked and the check fails closed. Either way the next sweep starts.
 */
async function finishSweep(
  mirror: AssignedMirror,
  state: SweepState,
): Promise<{ failure?: PlausibilityFailure; next: SweepState }> {
  const now = await mirror.now();
  const unfound = await mirror.countUnfound(state.sweep, state.scanStartedAt ?? state.startedAt);
  let failure: PlausibilityFailure | undefined;
  if (unfound > 0 && state.resourcesSeen === 0) {
    failure = {
      reason: 'empty_inventory',
      message: `the platform resources table had no rows while ${unfound} assigned item(s) needed classifying`,
    };
  } else if (unfound > 0 && state.bindingsSeen === 0) {
    failure = {
      reason: 'no_bindings',
      message: `none of ${state.resourcesSeen} platform resource(s) carries a pooltok: segment while ${unfound} assigned item(s) needed classifying`,
    };
  } else {
    await mirror.markOrphans(state.sweep, state.scanStartedAt ?? state.startedAt);
  }
  return {
    ...(failure ? { failure } : {}),
    next: {
      ...state,
      sweep: state.sweep + 1,
      phase: 'sync',
      cursor: null,
      startedAt: now,
      scanStartedAt: null,
      resourcesSeen: 0,
      bindingsSeen: 0,
      completedSweep: failure ? state.completedSweep : state.sweep,
      completedAt: failure ? state.completedAt : now,
    },
  };
}

/**
 * Advances the sweep by at most `budgetMs` of slices (the sync phase needs only the
 * provisioner database; the scan phase needs the platform), then reports what the reaper's
 * table holds: classes per type, orphans, and whether the platform check failed this pass.
 * Long (about 130 lines) because the two phases share one budget, one state row and one
 * fail-closed rule; each phase's SQL lives in src/store/assigned-mirror.ts.
 */
export async function sweepStuckAssigned(
  deps: SweepDeps,
  settings: SweepSettings,
  options: SweepOptions,
): Promise<SweepPassResult> {
  const budgetMs = settings.budgetMs ?? DEFAULT_SWEEP_BUDGET_MS;
  const reverifyMs = settings.reverifyMs ?? DEFAULT_REVERIFY_MS;
  const deadline = Date.now() + budgetMs;
  const platformMs = () => Math.max(MIN_PLATFORM_MS, deadline - Date.now());
  const { platform } = deps;

  return AssignedMirror.run(deps.pool, async (mirror) => {
    let failure: PlausibilityFailure | undefined;
    // Every pass asks the platform something, so an outage shows at once, not at the next scan.
    let hasResources = false;
    try {
      hasResources = await platform.hasResources(platformMs());
    } catch (err) {
      failure = asFailure(err);
    }

    let state: SweepState | undefined;
    let syncSlices = 0;
    let scanSlices = 0;
    if (mirror.leader) {
      const passStartedAt = await mirror.now();
      state = await mirror.readSweep();
      if (settings.sliceRows !== undefined) {
        state = { ...state, syncRows: settings.sliceRows, scanRows: settings.sliceRows };
      }
      // At least one slice per pass, however small the budget: the sweep always moves on.
      do {
        if (state.phase === 'sync') {
          // A sweep begins with its first sync slice (not when the last one ended).
          if (state.cursor === null) state = { ...state, startedAt: await mirror.now() };
          const started = Date.now();
          const slice = await mirror.syncSlice(state.cursor, state.syncRows, settings.graceMs);
          syncSlices++;
          const syncRows: number =
            settings.sliceRows ?? adapt(state.syncRows, Date.now() - started, budgetMs);
          if (slice.done) await mirror.analyze();
          state = slice.done
            ? { ...state, syncRows, phase: 'scan', cursor: null, scanStartedAt: await mirror.now() }
            : { ...state, syncRows, cursor: slice.lastId };
          continue;
        }
        // Scan: nothing more this pass once the platform failed.
        if (failure) break;
        if (!hasResources) {
          if (!(await mirror.isEmpty())) {
            failure = {
              reason: 'empty_inventory',
              message: 'the platform resources table has no rows while stuck assigned items need classifying',
            };
            break;
          }
        }
        const asked: number = state.scanRows;
        const started = Date.now();
        let slice: Awaited<ReturnType<PlatformLookup['readResources']>>;
        try {
          slice = await platform.readResources(state.cursor ?? undefined, asked, platformMs());
        } catch (err) {
          failure = asFailure(err);
          // A slice too big to read in time is split next time; the sweep resumes where it was.
          if (failure.reason === 'timeout' && settings.sliceRows === undefined) {
            state = { ...state, scanRows: Math.max(MIN_SLICE_ROWS, Math.floor(asked / 2)) };
          }
          break;
        }
        scanSlices++;
        await mirror.recordBindings(
          state.sweep,
          slice.bindings.map((b) => ({ token: b.token, live: isLiveStatus(b.status) })),
          reverifyMs,
        );
        state = {
          ...state,
          cursor: slice.lastId ?? state.cursor,
          resourcesSeen: state.resourcesSeen + slice.rows,
          bindingsSeen: state.bindingsSeen + slice.bindings.length,
          scanRows: settings.sliceRows ?? adapt(asked, Date.now() - started, budgetMs),
        };
        if (slice.rows < asked) {
          // Fewer rows than asked: all of `resources` has been read since the scan began.
          const begunEarlier = state.startedAt.getTime() < passStartedAt.getTime();
          const end = await finishSweep(mirror, state);
          failure = end.failure;
          state = end.next;
          // A sweep begun in an earlier pass knew nothing of items stuck since: when the
          // budget allows, this pass runs a whole fresh sweep too (a small deployment is then
          // classified up to the pass). A sweep begun in this pass is the last one.
          if (failure || !begunEarlier) break;
        }
      } while (Date.now() < deadline);
      await mirror.saveSweep(state);
    }

    const counts = await mirror.classCounts();
    const tally = tallyAssigned(
      counts.map((c) => ({ resourceType: c.resourceType, cls: c.cls, n: c.n })),
      failure !== undefined,
    );
    const orphanItems = failure ? [] : await mirror.orphans(options.listOrphans);
    const reclaimable =
      options.reclaim && !failure
        ? await mirror.orphans(options.reclaim.limit, {
            minAgeMs: options.reclaim.minAgeMs,
            unquarantinedOnly: true,
          })
        : undefined;
    if (failure) reportFailure(deps, 'classify', failure);
    const current = state ?? (await mirror.peekSweep());
    return {
      ...tally,
      ...(failure ? { failure } : {}),
      orphanItems,
      ...(reclaimable ? { reclaimable } : {}),
      progress: {
        sweep: current?.sweep ?? 0,
        phase: current?.phase ?? 'sync',
        completedSweep: current?.completedSweep ?? null,
        completedAt: current?.completedAt?.toISOString() ?? null,
        syncSlices,
        scanSlices,
        follower: !mirror.leader,
      },
    };
  });
}
