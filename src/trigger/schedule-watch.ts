import type { Client } from '@temporalio/client';
import type { Logger } from '../logger';
import type { ReaperMetrics } from '../metrics';
import type { PassFailureReason } from '../shared/types';
import type { PoolStore } from '../store/pool-store';
import { STATE_KEYS } from '../store/state-keys';
import { FAILURE_REASONS } from './schedule';

/**
 * Schedule mode's stand-in for the ticker's bookkeeping. The ticker sees each pass end and
 * counts the failed, timed-out and terminated ones; with a Schedule no workflow waits on a
 * pass, so every replica looks in visibility for closed passes that did not complete, and the
 * database decides which replica counts each run: exactly one, whatever the replica count.
 */

/** How often each replica looks: an increase shows on the counter within about this long. */
export const FAILURE_WATCH_INTERVAL_MS = 10_000;

/**
 * How far back a look reaches. Longer than any visibility lag and any restart of the
 * replicas; much shorter than the pass records' retention (a week, record-pass-summary.ts),
 * so a run is never seen again once its claim is pruned. A run that closed longer ago than
 * this while no replica ran is not counted (ReaperStalled covers that outage).
 */
export const FAILURE_LOOKBACK_MS = 3_600_000;

/** How long a scrape reuses the Schedule's pause: N replicas, each scraped every 15-30 s. */
export const PAUSED_CACHE_MS = 5_000;

/** The claim key of a run in pool_reaper_passes: never a pass id (those count summaries). */
export const failureClaimKey = (runId: string) => `failed-run:${runId}`;

/** The visibility query for the Schedule's passes that ended without completing. */
export function closedFailuresQuery(scheduleId: string, since: Date): string {
  const id = scheduleId.replaceAll("'", "\\'");
  return (
    `WorkflowType = 'reapPass' AND TemporalScheduledById = '${id}' ` +
    `AND ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled') ` +
    `AND CloseTime > '${since.toISOString()}'`
  );
}

export interface FailureWatchDeps {
  readonly client: Client;
  readonly store: PoolStore;
  readonly metrics: Pick<ReaperMetrics, 'passFailures'>;
  readonly log: Logger;
  readonly scheduleId: string;
}

/**
 * One look: claims each closed failed run of the Schedule (a run id, so each run of a pass
 * that continued as new is its own) and counts the ones this replica claimed. The claim comes
 * first: a replica that dies after it loses its own counter with it, so nothing is counted
 * twice; a claim that fails (database down) is retried by the next look. Returns the number
 * this replica counted.
 */
export async function recordScheduledFailures(deps: FailureWatchDeps, now = new Date()): Promise<number> {
  const { client, store, metrics, log, scheduleId } = deps;
  const since = new Date(now.getTime() - FAILURE_LOOKBACK_MS);
  let counted = 0;
  for await (const run of client.workflow.list({ query: closedFailuresQuery(scheduleId, since) })) {
    const reason: PassFailureReason | undefined = FAILURE_REASONS[run.status.name];
    if (!reason) continue;
    if (!(await store.claimPassRecord(failureClaimKey(run.runId)))) continue;
    counted++;
    metrics.passFailures.inc({ reason });
    const failure = {
      passId: run.workflowId,
      reason,
      message: `the pass ${reason.replace('_', ' ')}`,
      at: (run.closeTime ?? now).toISOString(),
    };
    log.error(
      { event: 'pool_reaper.pass.failed', ...failure, runId: run.runId, scheduleId },
      'scheduled reap pass failed; the Schedule goes on with the next tick',
    );
    await store
      .writeState(STATE_KEYS.lastPassFailure, failure)
      .catch((err: Error) => log.warn({ err: err.message }, 'could not record the pass failure'));
  }
  return counted;
}

/** Looks every interval until stopped; a failed look is logged and retried by the next. */
export function startFailureWatch(
  deps: FailureWatchDeps,
  intervalMs = FAILURE_WATCH_INTERVAL_MS,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const counted = await recordScheduledFailures(deps);
        deps.log.debug(
          { event: 'pool_reaper.schedule.failures_watched', counted },
          'looked for failed passes',
        );
      } catch (err) {
        deps.log.warn(
          { event: 'pool_reaper.schedule.failure_watch_failed', error: (err as Error).message },
          'could not look for failed scheduled passes; the next look retries',
        );
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}

/**
 * The Schedule's pause for the paused gauge, read at scrape time: an operator's pause from
 * the CLI, the Web UI or a raw `temporal schedule toggle` shows on the next scrape. Cached a
 * few seconds and shared by concurrent scrapes. If Temporal does not answer, the last known
 * value stands: dropping the series would let ReaperStalled page for a paused reaper.
 */
export function schedulePauseReader(
  client: Client,
  scheduleId: string,
  cacheMs = PAUSED_CACHE_MS,
): () => Promise<boolean | undefined> {
  let known: boolean | undefined;
  let readAt = 0;
  let pending: Promise<boolean | undefined> | undefined;
  return () => {
    if (Date.now() - readAt < cacheMs) return Promise.resolve(known);
    pending ??= client.schedule
      .getHandle(scheduleId)
      .describe()
      .then(
        (d) => {
          known = d.state.paused;
          readAt = Date.now();
          return known;
        },
        () => known,
      )
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}
