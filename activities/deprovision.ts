import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../src/logger';
import { recheckToken } from '../src/platform/check';
import { clusterOf } from '../src/shared/clusters';
import { treatmentOf } from '../src/shared/failure-types';
import { scrubSecrets } from '../src/shared/secrets';
import { HEARTBEATS_PER_TIMEOUT, MIN_HEARTBEAT_INTERVAL_MS } from '../src/shared/settings-rules';
import type {
  AssignedExpectation,
  DeprovisionInput,
  DeprovisionResult,
  PoolItemRef,
  TeardownResult,
} from '../src/shared/types';
import { type LockedRun, SharedPoolTokenError } from '../src/store/pool-store';
import {
  type ActivityDeps,
  activityLogger,
  DEFAULT_CLUSTER_BACKOFF,
  DEFAULT_ITEM_BACKOFF,
  orphanReclamation,
} from './deps';

interface ThrownError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly partial?: unknown;
}

/**
 * Heartbeats at a third of the activity's own heartbeat timeout (set by the pass, read from
 * the activity info), so interval and timeout can never disagree: two heartbeats may be lost
 * before Temporal gives the attempt up.
 */
const heartbeatIntervalOf = (timeoutMs: number | undefined) =>
  timeoutMs ? Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.floor(timeoutMs / HEARTBEATS_PER_TIMEOUT)) : 5_000;

/**
 * The Temporal failure for a thrown error: its type is the error's class name, and whether
 * Temporal may retry it comes from the one taxonomy (src/shared/failure-types.ts).
 */
function toFailure(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as ThrownError;
  const type = typeof e.name === 'string' && err instanceof Error ? e.name : 'Error';
  const treatment = treatmentOf(type);
  return ApplicationFailure.create({
    message: scrubSecrets(typeof e.message === 'string' ? e.message : String(err)),
    type,
    nonRetryable: !treatment.retry,
    details: [{ scope: treatment.scope, quarantine: treatment.quarantine, partial: e.partial ?? null }],
    cause: err instanceof Error ? err : undefined,
  });
}

export function deprovisionActivity(deps: ActivityDeps) {
  const { store, teardown, settings, metrics } = deps;
  const itemBackoff = settings.itemBackoff ?? DEFAULT_ITEM_BACKOFF;
  const clusterBackoff = settings.clusterBackoff ?? DEFAULT_CLUSTER_BACKOFF;

  /**
   * An orphan (opt-in only): under the row lock, the row must still be assigned with the
   * listed assigned_at, type and cluster, and past the orphan grace; then the platform is
   * asked once more, as late as possible, and only an orphan it still does not know is torn down.
   */
  async function lockedOrphanTeardown(
    item: PoolItemRef,
    expect: AssignedExpectation,
    heartbeat: (step: string) => void,
    log: Logger,
    graceMs: number | undefined,
  ): Promise<LockedRun<TeardownResult>> {
    const reclamation = orphanReclamation(deps, graceMs);
    if (reclamation === undefined) {
      return { ran: false, reason: 'orphan reclamation is not enabled on this worker' };
    }
    if (expect.status !== 'assigned' || typeof expect.assignedAt !== 'string') {
      return { ran: false, reason: 'unsupported expectation; nothing touched' };
    }
    teardown.preflight(item, { log });
    const run = await store.withItemLocked(
      item,
      { status: 'assigned', assignedAt: expect.assignedAt, graceMs: reclamation.graceMs },
      async () => {
        heartbeat('platform recheck');
        const verdict = await recheckToken(
          { platform: reclamation.platform, metrics, log },
          item.poolToken,
          'teardown',
        );
        if (!verdict.orphan) return { freed: false as const, reason: verdict.reason };
        log.info(
          {
            event: 'pool_reaper.orphan.teardown',
            itemId: item.id,
            poolToken: item.poolToken,
            resourceType: item.resourceType,
            assignedAt: expect.assignedAt,
          },
          'reclaiming an orphaned assigned item: row locked, platform re-checked',
        );
        return {
          freed: true as const,
          result: await teardown.teardown(item, { onProgress: heartbeat, log }),
        };
      },
    );
    if (!run.ran) return run;
    if (!run.value.freed) return { ran: false, reason: run.value.reason };
    return { ran: true, value: run.value.result };
  }

  /**
   * Writes down what a failure means beyond this attempt, as the taxonomy says: a failure
   * that needs an operator counts towards the item's quarantine; a cluster-scoped one marks
   * the cluster down (never the item's fault; a failed probe item also waits out a backoff,
   * see below); any other retryable one defers the item. A bookkeeping write that fails is
   * logged and never hides the teardown's own failure.
   */
  async function recordFailure(
    item: PoolItemRef,
    failure: ApplicationFailure,
    log: Logger,
    how: { readonly raced: boolean; readonly probe: boolean },
  ): Promise<void> {
    const type = failure.type ?? 'Error';
    const treatment = treatmentOf(type);
    const passId = Context.current().info.workflowExecution?.workflowId ?? 'unknown';
    const cluster = { resourceType: item.resourceType, cluster: clusterOf(item.providerResourceId) };
    const what = { passId, errorType: type, message: failure.message };
    try {
      if (treatment.scope === 'cluster') {
        metrics.clusterErrors.inc({
          resource_type: cluster.resourceType,
          cluster: cluster.cluster,
          error_type: type,
        });
        const down = await store.recordClusterFailure(cluster, what, clusterBackoff);
        // A down cluster is probed by its oldest listed item. If the failure is in fact that
        // item's own (a database another role owns: 42501 for this one item only), the same
        // item would probe, and fail, every time, and the cluster's other items would never
        // be listed again: the probe item waits out a backoff so that the next probe is another.
        if (how.probe) await store.deferItem(item, what, itemBackoff);
        log.warn(
          {
            event: 'pool_reaper.cluster.failed',
            resourceType: cluster.resourceType,
            cluster: cluster.cluster,
            errorType: type,
            error: failure.message,
            passesFailed: down.failures,
            retryAt: down.retryAt.toISOString(),
          },
          'cluster refused the reaper: its items wait and the cluster is probed again later',
        );
      } else if (treatment.quarantine) {
        // A live row given this token while the teardown ran may own infra of the same names
        // that the teardown has just dropped: an operator must look now, not after N passes.
        const record = await store.recordFailure(
          item,
          type,
          failure.message,
          how.raced ? 1 : settings.quarantineAfter,
        );
        if (record.quarantined) {
          log.warn(
            {
              event: 'pool_reaper.quarantined',
              poolToken: item.poolToken,
              itemId: item.id,
              failures: record.failures,
            },
            'item quarantined after repeated needs-an-operator failures',
          );
        }
      } else {
        await store.deferItem(item, what, itemBackoff);
      }
    } catch (recordErr) {
      log.error(
        { err: (recordErr as Error).message, poolToken: item.poolToken, errorType: type },
        'could not record the item failure; the next pass sees the item as before',
      );
    }
  }

  /** A probe item answered without a cluster-scoped failure: the cluster is back. */
  async function clearProbedCluster(item: PoolItemRef, log: Logger): Promise<void> {
    const cluster = { resourceType: item.resourceType, cluster: clusterOf(item.providerResourceId) };
    try {
      if (await store.clearClusterDown(cluster)) {
        log.info(
          {
            event: 'pool_reaper.cluster.recovered',
            resourceType: cluster.resourceType,
            cluster: cluster.cluster,
          },
          'cluster answered its probe: its items are listed again',
        );
      }
    } catch (err) {
      log.warn(
        { err: (err as Error).message, ...cluster },
        'could not clear the cluster mark; a later probe will',
      );
    }
  }

  /**
   * Frees one stale failed item's infra while holding its row lock, and confirms it gone.
   * With `expect`, frees an orphaned assigned item instead (see lockedOrphanTeardown).
   * Refusals (guard, unsupported type) are non-retryable and counted towards quarantine;
   * they are raised before any connection opens.
   */
  return async function deprovision({
    item,
    expect,
    probe,
    graceMs,
  }: DeprovisionInput): Promise<DeprovisionResult> {
    const ctx = Context.current();
    const log = activityLogger(deps.log);
    // Steps only note where the teardown is; the timer sends it. A heartbeat per step cost a
    // conversion and a server call per item (most teardowns end long before the first tick),
    // and the timer alone already keeps a live attempt from timing out.
    let step = 'started';
    const heartbeat = (next: string) => {
      step = next;
    };
    const interval = heartbeatIntervalOf(ctx.info.heartbeatTimeoutMs);
    const timer = setInterval(() => ctx.heartbeat({ step }), interval);
    try {
      let run: LockedRun<TeardownResult>;
      if (expect === undefined) {
        teardown.preflight(item, { log });
        run = await store.withStaleFailedItemLocked(item, graceMs ?? settings.failedGraceMs, () =>
          teardown.teardown(item, { onProgress: heartbeat, log }),
        );
      } else {
        run = await lockedOrphanTeardown(item, expect, heartbeat, log, graceMs);
      }
      // The cluster answered: clear its mark if it was listed as down, or if an earlier attempt
      // of this very activity (a blip since retried away) marked it.
      if (run.ran && (probe || ctx.info.attempt > 1)) await clearProbedCluster(item, log);
      if (!run.ran) {
        const what = expect === undefined ? 'row changed since listing' : 'orphan no longer reclaimable';
        ctx.log.info(`${what}; nothing touched`, {
          poolToken: item.poolToken,
          reason: run.reason,
        });
        return { outcome: 'skipped', reason: run.reason };
      }
      if (!run.value.confirmedFreed) {
        // Retryable: the next attempt repeats the idempotent teardown.
        throw ApplicationFailure.retryable(
          `teardown of ${item.poolToken} left objects behind: ${run.value.remaining.join(', ')}`,
          'TeardownNotConfirmedError',
          { remaining: run.value.remaining },
        );
      }
      return { outcome: 'freed', teardown: run.value };
    } catch (err) {
      const failure = toFailure(err);
      const raced = err instanceof SharedPoolTokenError && err.raced;
      if (raced) {
        log.error(
          {
            event: 'pool_reaper.shared_token.raced',
            itemId: item.id,
            poolToken: item.poolToken,
            resourceType: item.resourceType,
            providerResourceId: item.providerResourceId,
            error: failure.message,
          },
          'a ready or assigned row was given this pool token while its teardown ran: the failed row is ' +
            'kept and quarantined; check the live item, whose infra may have been dropped',
        );
      }
      await recordFailure(item, failure, log, { raced, probe: probe === true });
      throw failure;
    } finally {
      clearInterval(timer);
    }
  };
}
