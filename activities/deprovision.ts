import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../src/logger';
import { recheckToken } from '../src/platform/check';
import type {
  AssignedExpectation,
  DeprovisionInput,
  DeprovisionResult,
  PoolItemRef,
  TeardownResult,
} from '../src/shared/types';
import { ItemLockedError, type LockedRun } from '../src/store/pool-store';
import { type ActivityDeps, activityLogger, orphanReclamation } from './deps';

interface ClassifiedError {
  readonly name: string;
  readonly message: string;
  readonly retryable?: boolean;
  readonly category?: string;
  readonly partial?: unknown;
}

/** Teardown errors carry `retryable`; anything unknown is treated as transient. */
function toFailure(err: unknown): ApplicationFailure {
  const e = err as ClassifiedError;
  const retryable = err instanceof ItemLockedError || e.retryable !== false;
  return ApplicationFailure.create({
    message: e.message ?? String(err),
    type: e.name ?? 'Error',
    nonRetryable: !retryable,
    details: [{ category: e.category ?? (retryable ? 'transient' : 'operator'), partial: e.partial ?? null }],
    cause: err instanceof Error ? err : undefined,
  });
}

export function deprovisionActivity(deps: ActivityDeps) {
  const { store, teardown, settings, metrics } = deps;

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
  ): Promise<LockedRun<TeardownResult>> {
    const reclamation = orphanReclamation(deps);
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
   * Frees one stale failed item's infra while holding its row lock, and confirms it gone.
   * With `expect`, frees an orphaned assigned item instead (see lockedOrphanTeardown).
   * Refusals (guard, unsupported type, unknown cluster) are non-retryable and counted
   * towards quarantine; they are raised before any connection opens.
   */
  return async function deprovision({ item, expect }: DeprovisionInput): Promise<DeprovisionResult> {
    const ctx = Context.current();
    const log = activityLogger(deps.log);
    const heartbeat = (step: string) => ctx.heartbeat({ step });
    const timer = setInterval(() => heartbeat('waiting'), settings.heartbeatIntervalMs ?? 5000);
    try {
      let run: LockedRun<TeardownResult>;
      if (expect === undefined) {
        teardown.preflight(item, { log });
        run = await store.withStaleFailedItemLocked(item, settings.failedGraceMs, () =>
          teardown.teardown(item, { onProgress: heartbeat, log }),
        );
      } else {
        run = await lockedOrphanTeardown(item, expect, heartbeat, log);
      }
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
      if (err instanceof ApplicationFailure) throw err;
      const failure = toFailure(err);
      if (failure.nonRetryable) {
        const record = await store
          .recordFailure(item, failure.type ?? 'Error', failure.message, settings.quarantineAfter)
          .catch((recordErr: Error) => {
            log.error({ err: recordErr.message, poolToken: item.poolToken }, 'could not record item failure');
            return undefined;
          });
        if (record?.quarantined) {
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
      }
      throw failure;
    } finally {
      clearInterval(timer);
    }
  };
}
