import type { DeleteItemInput, DeleteItemResult } from '../src/shared/types';
import type { ActivityDeps } from './deps';

export function deleteItemActivity({ store }: ActivityDeps) {
  /** Deletes the row only if it is still the same `failed` item; reports whether it did. */
  return async function deleteItem({ item }: DeleteItemInput): Promise<DeleteItemResult> {
    return { deleted: await store.deleteFailedItem(item) };
  };
}
