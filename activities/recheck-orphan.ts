import { recheckToken } from '../src/platform/check';
import type { RecheckOrphanInput, RecheckOrphanResult } from '../src/shared/types';
import { type ActivityDeps, orphanReclamation } from './deps';

export function recheckOrphanActivity(deps: ActivityDeps) {
  const { store, metrics, log } = deps;
  /**
   * Just before an orphan's teardown: is its row still assigned with the same assigned_at,
   * past the orphan grace, and does the platform database still show no binding? Any doubt
   * (including a failed platform check, or reclamation not enabled on this worker) answers
   * "not an orphan". Read-only: deprovision checks all of it again under the row lock.
   */
  return async function recheckOrphan({
    item,
    assignedAt,
    graceMs,
  }: RecheckOrphanInput): Promise<RecheckOrphanResult> {
    const reclamation = orphanReclamation(deps, graceMs);
    if (reclamation === undefined) {
      return { orphan: false, reason: 'orphan reclamation is not enabled on this worker' };
    }
    const mismatch = await store.assignedRowMismatch(item, assignedAt, reclamation.graceMs);
    if (mismatch !== undefined) return { orphan: false, reason: mismatch };
    const verdict = await recheckToken(
      { platform: reclamation.platform, metrics, log },
      item.poolToken,
      'recheck',
    );
    return verdict.orphan ? { orphan: true } : { orphan: false, reason: verdict.reason };
  };
}
