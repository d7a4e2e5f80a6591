import type { PassSummary } from '../src/shared/types';
import { type ActivityDeps, STATE_KEYS } from './deps';

/** Tombstones answer retried deletes (seconds to minutes later); a week leaves room for audits. */
const TOMBSTONE_RETENTION_MS = 7 * 24 * 3_600_000;

export function recordPassSummaryActivity({ store, metrics, log }: ActivityDeps) {
  /** Counts the pass's outcomes and duration, and stamps the shared last-pass time. */
  return async function recordPassSummary(summary: PassSummary): Promise<void> {
    await store.writeState(STATE_KEYS.lastPass, {
      passId: summary.passId,
      finishedAt: summary.finishedAt,
      summary,
    });
    metrics.recordPass(summary);
    await store.pruneReaped(TOMBSTONE_RETENTION_MS);
    log.info(
      {
        event: 'pool_reaper.pass.completed',
        passId: summary.passId,
        listed: summary.listed,
        reaped: summary.reaped,
        refused: summary.refused,
        deprovisionErrors: summary.deprovisionErrors,
        deleteErrors: summary.deleteErrors,
        skipped: summary.skipped,
        durationMs: summary.durationMs,
        ...(summary.platformCheck ? { platformCheck: summary.platformCheck.status } : {}),
        ...(summary.orphans ? { orphans: summary.orphans.total } : {}),
        ...(summary.orphanReclaim ? { orphansReclaimed: summary.orphanReclaim.reclaimed } : {}),
      },
      'reap pass completed',
    );
  };
}
