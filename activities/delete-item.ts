import type { DeleteItemInput, DeleteItemResult } from '../src/shared/types';
import { type ActivityDeps, orphanReclamation } from './deps';

export function deleteItemActivity(deps: ActivityDeps) {
  const { store, log } = deps;
  /**
   * Deletes the row only if it is still the same `failed` item; reports whether it did.
   * With `expect` (an orphan), only if it is still `assigned` with the same assigned_at,
   * and only on a worker with orphan reclamation enabled.
   */
  return async function deleteItem({ item, expect }: DeleteItemInput): Promise<DeleteItemResult> {
    const echo = { itemId: item.id, poolToken: item.poolToken };
    if (expect === undefined) return { deleted: await store.deleteFailedItem(item), ...echo };
    if (orphanReclamation(deps) === undefined || expect.status !== 'assigned')
      return { deleted: false, ...echo };
    const deleted = await store.deleteAssignedItem(item, expect.assignedAt);
    if (!deleted) {
      log.warn(
        { event: 'pool_reaper.orphan.delete_refused', itemId: item.id, poolToken: item.poolToken },
        'orphan row changed since its teardown (or is gone); row left alone',
      );
    }
    return { deleted, ...echo };
  };
}
