import { condition, proxyLocalActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { PoolItemRef, ReapPassOptions } from '../src/shared/types';

type Activities = ReturnType<typeof createActivities>;

/**
 * Rows per delete statement. A batch is what one workflow task freed: at most the pass's
 * lanes in steady state; the cap keeps one marker's result small whatever a pass is given.
 */
export const MAX_DELETE_BATCH = 256;

/**
 * Passes started before batched deletes replay with one deleteItem marker per item; every
 * new pass records this marker and deletes the rows freed in one workflow task together.
 */
export const BATCHED_DELETES_PATCH = 'pass-batched-deletes-v1';

/**
 * Deletes freed items' rows in batches: one local activity (one marker in history, one
 * statement) for all the items whose teardowns completed in the same workflow task, instead
 * of one each. An item is only ever handed in after its `deprovision` completed and freed it,
 * so each row's delete still follows its own teardown in history; the marker's result names
 * every row. At most one batch runs at a time: items freed meanwhile wait for the next one.
 */
export class DeleteBatches {
  private readonly pending: {
    readonly item: PoolItemRef;
    readonly resolve: (deleted: boolean) => void;
    readonly reject: (err: unknown) => void;
  }[] = [];
  private flushing = false;

  constructor(private readonly options: ReapPassOptions) {}

  /** Resolves with whether the row went (or an earlier attempt's tombstone says it did). */
  delete(item: PoolItemRef): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      // Let every completion of this activation reach `delete` first: the SDK evaluates
      // conditions only once the activation's jobs and their microtasks have run, so this
      // resolves on the first evaluation after the eager one. Deterministic, no command.
      let evaluated = false;
      await condition(() => {
        const ready = evaluated;
        evaluated = true;
        return ready;
      });
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_DELETE_BATCH);
        try {
          const { items } = await deleteItemsStep(
            batch.length,
            this.options,
          )({
            items: batch.map((b) => b.item),
          });
          batch.forEach((b, n) => {
            b.resolve(items[n]?.deleted === true);
          });
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

/** The batched conditional row delete, as a local activity (see deleteItemStep). */
function deleteItemsStep(count: number, options: ReapPassOptions) {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: options.activityTimeouts?.deleteStartToCloseMs ?? '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
    summary: `delete ${count} freed row(s)`,
  }).deleteItems;
}
