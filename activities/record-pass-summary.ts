import { Context } from '@temporalio/activity';
import type { PassSummary } from '../src/shared/types';
import { STATE_KEYS } from '../src/store/state-keys';
import { workflowUrl } from '../src/ui-links';
import type { ActivityDeps } from './deps';

/** Tombstones answer retried deletes (seconds to minutes later); a week leaves room for audits. */
const TOMBSTONE_RETENTION_MS = 7 * 24 * 3_600_000;

export function recordPassSummaryActivity({ store, metrics, log, settings }: ActivityDeps) {
  /**
   * Counts the pass's outcomes and duration once per pass id (a retried attempt finds its
   * record and counts nothing), and stamps the shared last-pass time. Pruning old records is
   * housekeeping: its failure never fails the recording.
   */
  return async function recordPassSummary(summary: PassSummary): Promise<void> {
    await store.writeState(STATE_KEYS.lastPass, {
      passId: summary.passId,
      finishedAt: summary.finishedAt,
      summary,
    });
    // Claimed last, so that a failure above is retried and still counted exactly once.
    const first = await store.claimPassRecord(summary.passId);
    if (first) metrics.recordPass(summary);
    await Promise.all([
      store.pruneReaped(TOMBSTONE_RETENTION_MS),
      store.prunePassRecords(TOMBSTONE_RETENTION_MS),
    ]).catch((err: Error) =>
      log.warn({ err: err.message }, 'pruning old tombstones failed; next pass retries'),
    );
    if (!first) return;
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
        deferred: summary.deferred ?? 0,
        durationMs: summary.durationMs,
        ...(summary.outcome ? { outcome: summary.outcome } : {}),
        ...(summary.dryRun ? { dryRun: true, planned: summary.dryRun } : {}),
        ...(settings.temporalUiUrl
          ? {
              webUi: workflowUrl(
                settings.temporalUiUrl,
                Context.current().info.workflowNamespace ?? 'default',
                summary.passId,
              ),
            }
          : {}),
        ...(summary.clustersDown?.length
          ? { clustersDown: summary.clustersDown.map((c) => `${c.resourceType}/${c.cluster}`) }
          : {}),
        ...(summary.platformCheck ? { platformCheck: summary.platformCheck.status } : {}),
        ...(summary.orphans ? { orphans: summary.orphans.total } : {}),
        ...(summary.orphanReclaim ? { orphansReclaimed: summary.orphanReclaim.reclaimed } : {}),
      },
      summary.dryRun ? 'reap pass completed (dry run: nothing touched)' : 'reap pass completed',
    );
  };
}
