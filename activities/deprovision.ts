import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DeprovisionInput, DeprovisionResult } from '../src/shared/types';
import { ItemLockedError } from '../src/store/pool-store';
import type { ActivityDeps } from './deps';

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

export function deprovisionActivity({ store, teardown, settings, log }: ActivityDeps) {
  /**
   * Frees one stale failed item's infra while holding its row lock, and confirms it gone.
   * Refusals (guard, unsupported type, unknown cluster) are non-retryable and counted
   * towards quarantine; they are raised before any connection opens.
   */
  return async function deprovision({ item }: DeprovisionInput): Promise<DeprovisionResult> {
    const ctx = Context.current();
    const heartbeat = (step: string) => ctx.heartbeat({ step });
    const timer = setInterval(() => heartbeat('waiting'), settings.heartbeatIntervalMs ?? 5000);
    try {
      teardown.preflight(item);
      const run = await store.withStaleFailedItemLocked(item, settings.failedGraceMs, () =>
        teardown.teardown(item, { onProgress: heartbeat }),
      );
      if (!run.ran) {
        ctx.log.info('row changed since listing; nothing touched', {
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
