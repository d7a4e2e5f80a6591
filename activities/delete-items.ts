import type { DeleteItemsInput, DeleteItemsResult } from '../src/shared/types';
import { deleteFailedItems } from '../src/store/batch-delete';
import type { ActivityDeps } from './deps';

export function deleteItemsActivity(deps: ActivityDeps) {
  /**
   * Deletes the rows of a batch of freed stale failed items in one statement; each row only
   * if it is still the same `failed` item. The result names every row, so the local-activity
   * marker in history says which rows went.
   */
  return async function deleteItems({ items }: DeleteItemsInput): Promise<DeleteItemsResult> {
    const deleted = await deleteFailedItems(deps.store.pool, items);
    return {
      items: items.map((item, n) => ({
        itemId: item.id,
        poolToken: item.poolToken,
        deleted: deleted[n] === true,
      })),
    };
  };
}
