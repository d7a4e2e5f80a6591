import type { PoolStore } from '../store/pool-store';
import type { BackendPlan, GuardDecision, PlannedObject } from '../teardown';
import type { ItemStanding, PlanStore } from './plan-store';

/**
 * What the next passes would do with each stale failed item, computed read-only: the same
 * listing (PoolStore.listStaleFailed, so the same grace, quarantine, backoff and cluster
 * circuit), the same drop guard (TeardownRegistry.decide) and a read-only look at every object
 * a teardown would touch. Nothing here writes: no DDL, no DEL/UNLINK/ACL DELUSER, no row
 * change, no `provisioner.drop` line. Shared by `pool-reaper plan`, `explain` and dry-run passes.
 */

export type Verdict = 'reap' | 'refuse' | 'skip';

/** One item of `pool-reaper plan --json` (the shape is documented in docs/plan-and-dry-run.md). */
export interface PlannedItem {
  readonly id: string;
  readonly poolToken: string;
  readonly resourceType: string;
  readonly cluster: string;
  readonly verdict: Verdict;
  /** A sentence saying why, for `refuse` and `skip`. */
  readonly reason?: string;
  /** For a guard refusal: the check that refused (`site`) and its rule (`reason`). */
  readonly guard?: { readonly site: string; readonly reason: string };
  /** Every object a teardown would touch; empty when nothing would be touched. */
  readonly objects: readonly PlannedObject[];
  /** In the batch the next pass lists (false: a later pass, or not listed at all). */
  readonly nextPass: boolean;
  /** Since when the row counts as failed (ISO). */
  readonly failedAt: string;
  readonly ageSeconds: number;
}

export interface Plan {
  readonly generatedAt: string;
  readonly failedGraceMs: number;
  readonly batchLimit: number;
  /** Stale failed items in all; `items` holds at most the limit of them. */
  readonly staleFailed: number;
  readonly truncated: boolean;
  readonly totals: Readonly<Record<Verdict, number>>;
  readonly items: readonly PlannedItem[];
}

/** The slice of the teardown registry planning uses (read-only by contract). */
export interface TeardownPlanner {
  decide(item: ItemStanding): GuardDecision;
  plan(item: ItemStanding): Promise<BackendPlan>;
}

export interface PlannerDeps {
  readonly store: Pick<PoolStore, 'listStaleFailed'>;
  readonly plans: PlanStore;
  readonly teardown: TeardownPlanner;
  readonly failedGraceMs: number;
  readonly batchLimit: number;
}

const human = (ms: number): string => {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.round(m / 60);
  return h < 48 ? `${h}h` : `${Math.round(h / 24)}d`;
};

/**
 * Why a pass would not take this item before any teardown check, or undefined when it would
 * reach the teardown. `locked`: another transaction holds the row now.
 */
export function standingReason(
  s: ItemStanding,
  context: { readonly failedGraceMs: number; readonly listed: boolean; readonly locked: boolean },
  now: Date = new Date(),
): { verdict: Verdict; reason: string } | undefined {
  if (s.status !== 'failed') {
    return {
      verdict: 'skip',
      reason: `status is ${s.status}: passes only take failed items (a ${s.status} row is never reaped)`,
    };
  }
  if (!s.stale) {
    return {
      verdict: 'skip',
      reason: `inside the failed grace: failed ${human(s.ageMs)} ago, grace ${human(context.failedGraceMs)}; eligible in ${human(context.failedGraceMs - s.ageMs)}`,
    };
  }
  if (s.quarantinedAt) {
    return {
      verdict: 'skip',
      reason:
        `quarantined since ${s.quarantinedAt.toISOString()} after ${s.failures} needs-an-operator failure(s)` +
        `${s.lastErrorType ? ` (last: ${s.lastErrorType}: ${s.lastError ?? ''})` : ''}; ` +
        `\`pool-reaper quarantine release ${s.id}\` lets passes try it again`,
    };
  }
  if (s.nextAttemptAt && s.nextAttemptAt > now) {
    return {
      verdict: 'skip',
      reason:
        `backing off after a retryable failure (${s.deferrals} deferral(s), last ${s.lastErrorType ?? 'unknown'}): ` +
        `not listed before ${s.nextAttemptAt.toISOString()}`,
    };
  }
  if (s.clusterDown && !context.listed) {
    return {
      verdict: 'skip',
      reason:
        `cluster ${s.resourceType}/${s.cluster} is marked down (${s.clusterDown.lastErrorType}): its items wait; ` +
        `one probe item is tried after ${s.clusterDown.retryAt.toISOString()}`,
    };
  }
  if (s.tokenShared) {
    return {
      verdict: 'refuse',
      reason: `shared token: a ready or assigned row also carries pool token ${s.poolToken}; tearing it down would take the live item's infra (a pass refuses it and quarantines it)`,
    };
  }
  if (context.locked) {
    return {
      verdict: 'skip',
      reason:
        'row locked by another transaction (a teardown in progress?): a pass skips it and tries again later',
    };
  }
  return undefined;
}

function guardSentence(d: Extract<GuardDecision, { allowed: false }>): string {
  switch (d.site) {
    case 'cluster':
      return `unknown cluster: ${d.message}`;
    case 'resource_type':
      return `unsupported type: ${d.message}`;
    default:
      return `drop guard refused (site ${d.site}, reason ${d.reason}): ${d.message}`;
  }
}

/** The verdict for one item whose standing is known. */
export async function planItem(
  deps: Pick<PlannerDeps, 'teardown' | 'failedGraceMs'>,
  s: ItemStanding,
  context: { readonly listed: boolean; readonly locked: boolean },
): Promise<PlannedItem> {
  const base = {
    id: s.id,
    poolToken: s.poolToken,
    resourceType: s.resourceType,
    cluster: s.cluster,
    nextPass: context.listed,
    failedAt: s.failedSince.toISOString(),
    ageSeconds: Math.round(s.ageMs / 1000),
  };
  const early = standingReason(s, { ...context, failedGraceMs: deps.failedGraceMs });
  if (early) {
    // The guard's own answer is still worth showing for an item skipped for another reason.
    const decision = deps.teardown.decide(s);
    return {
      ...base,
      ...early,
      ...(decision.allowed ? {} : { guard: { site: decision.site, reason: decision.reason } }),
      objects: [],
    };
  }
  const plan = await deps.teardown.plan(s);
  if (!plan.decision.allowed) {
    return {
      ...base,
      verdict: plan.verdict,
      reason: guardSentence(plan.decision),
      guard: { site: plan.decision.site, reason: plan.decision.reason },
      objects: [],
    };
  }
  if (plan.inspectError !== undefined) {
    return {
      ...base,
      verdict: 'skip',
      reason: `cluster ${s.resourceType}/${plan.cluster} did not answer a read-only look (${plan.inspectError}): a pass would fail transiently and retry`,
      objects: [],
    };
  }
  return { ...base, verdict: 'reap', objects: plan.objects };
}

/** The plan over every stale failed item, oldest first, at most `limit` items. */
export async function computePlan(deps: PlannerDeps, limit: number): Promise<Plan> {
  const [standings, total, listed] = await Promise.all([
    deps.plans.staleFailed(deps.failedGraceMs, limit),
    deps.plans.countStaleFailed(deps.failedGraceMs),
    // The next pass's own listing, unchanged: which of these it would take.
    deps.store.listStaleFailed(deps.failedGraceMs, deps.batchLimit),
  ]);
  const listedIds = new Set(listed.map((i) => i.id));
  const locked = await deps.plans.lockedIds(standings.map((s) => s.id));
  const items: PlannedItem[] = [];
  // One at a time: a plan is an operator's read, it must not load the customer clusters.
  for (const s of standings) {
    items.push(await planItem(deps, s, { listed: listedIds.has(s.id), locked: locked.has(s.id) }));
  }
  const totals: Record<Verdict, number> = { reap: 0, refuse: 0, skip: 0 };
  for (const item of items) totals[item.verdict] += 1;
  return {
    generatedAt: new Date().toISOString(),
    failedGraceMs: deps.failedGraceMs,
    batchLimit: deps.batchLimit,
    staleFailed: total,
    truncated: total > items.length,
    totals,
    items,
  };
}
