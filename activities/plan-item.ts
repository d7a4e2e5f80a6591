import { PlanStore } from '../src/plan/plan-store';
import { planItem } from '../src/plan/planner';
import type { PlanItemResult, PoolItemRef } from '../src/shared/types';
import { type ActivityDeps, activityLogger } from './deps';

export function planItemActivity(deps: ActivityDeps) {
  const { store, teardown, settings } = deps;
  const plans = new PlanStore(store.pool);
  /**
   * A dry-run pass's step for one listed item: the verdict and the objects a teardown would
   * touch, computed read-only by the same planner as `pool-reaper plan` (same guard, same
   * row checks). Writes nothing: no audit `provisioner.drop` line, no failure record, no row
   * change; it logs its own event, `pool_reaper.plan.item`.
   */
  /** `graceMs`: the pass's failed grace (PassRules); absent on older passes: this worker's. */
  return async function planItemStep({
    item,
    graceMs,
  }: {
    item: PoolItemRef;
    graceMs?: number;
  }): Promise<PlanItemResult> {
    const failedGraceMs = graceMs ?? settings.failedGraceMs;
    const log = activityLogger(deps.log);
    const { decide, plan } = teardown;
    if (decide === undefined || plan === undefined) {
      // A test double without a planner: a plain error, retried and then counted as planning failed.
      throw new Error('this worker’s teardown cannot plan');
    }
    const echo = { itemId: item.id, poolToken: item.poolToken };
    const standing = await plans.byId(item.id, failedGraceMs);
    let result: PlanItemResult;
    if (standing === undefined || standing.poolToken !== item.poolToken) {
      result = {
        ...echo,
        verdict: 'skip',
        reason: 'row no longer exists (or its token changed)',
        objects: [],
      };
    } else {
      const locked = await plans.lockedIds([item.id]);
      const planned = await planItem({ teardown: { decide, plan }, failedGraceMs }, standing, {
        listed: true,
        locked: locked.has(item.id),
      });
      result = {
        ...echo,
        verdict: planned.verdict,
        ...(planned.reason !== undefined ? { reason: planned.reason } : {}),
        ...(planned.guard ? { guard: planned.guard } : {}),
        objects: planned.objects,
      };
    }
    log.info(
      {
        event: 'pool_reaper.plan.item',
        dryRun: true,
        itemId: item.id,
        poolToken: item.poolToken,
        resourceType: item.resourceType,
        verdict: result.verdict,
        reason: result.reason,
        objects: result.objects.map((o) => `${o.kind} ${o.name}${o.exists ? '' : ' (absent)'}`),
      },
      `dry run: would ${result.verdict === 'reap' ? 'reap' : result.verdict} ${item.poolToken}`,
    );
    return result;
  };
}
