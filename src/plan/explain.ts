import type { Client } from '@temporalio/client';
import { REAP_OUTCOME_KEY, REAPED_COUNT_KEY, REAPED_POOL_TOKENS } from '../shared/search-attributes';
import type { PoolStore } from '../store/pool-store';
import type { PlannedObject } from '../teardown';
import { workflowUrl } from '../ui-links';
import type { PlanStore } from './plan-store';
import { type PlannedItem, planItem, type TeardownPlanner } from './planner';

/** Where one row stands and why (`pool-reaper explain`). */
export interface RowExplanation extends PlannedItem {
  readonly status: string;
  readonly createdAt: string;
  readonly assignedAt: string | null;
  /** The reaper's failure record: needs-an-operator failures, deferrals, last error. */
  readonly failures?: {
    readonly failures: number;
    readonly quarantinedAt: string | null;
    readonly deferrals: number;
    readonly nextAttemptAt: string | null;
    readonly lastErrorType: string | null;
    readonly lastError: string | null;
  };
}

/** A pass that tore an item down, found through ReapedPoolTokens. */
export interface ReapingPass {
  readonly workflowId: string;
  readonly runId: string;
  readonly closeTime: string | null;
  readonly outcome: string | null;
  readonly reapedCount: number | null;
  readonly url: string;
}

export interface ReapedExplanation {
  readonly itemId: string;
  readonly poolToken: string;
  readonly resourceType: string;
  readonly reapedAt: string;
  readonly passes: readonly ReapingPass[];
  /** Why no pass could be looked up (Temporal unreachable, attribute missing), if so. */
  readonly passLookupError?: string;
}

export interface Explanation {
  readonly query: string;
  readonly rows: readonly RowExplanation[];
  readonly reaped: readonly ReapedExplanation[];
}

export interface ExplainDeps {
  readonly store: Pick<PoolStore, 'listStaleFailed'>;
  readonly plans: PlanStore;
  readonly teardown: TeardownPlanner;
  readonly failedGraceMs: number;
  readonly batchLimit: number;
  /** Absent when Temporal was not reachable: reaped items are then shown without their pass. */
  readonly temporal?: { readonly client: Client; readonly namespace: string; readonly uiUrl: string };
  readonly temporalError?: string;
}

const quoteQuery = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The pass a ReapedPoolTokens carrier belongs to: a token-list child or orphan child names it. */
export const passIdOf = (workflowId: string) =>
  workflowId.replace(/-tokens-\d+$/, '').replace(/-orphans$/, '');

async function reapingPasses(deps: ExplainDeps, token: string): Promise<ReapingPass[]> {
  const t = deps.temporal;
  if (!t) return [];
  const passes: ReapingPass[] = [];
  for await (const wf of t.client.workflow.list({ query: `${REAPED_POOL_TOKENS} = ${quoteQuery(token)}` })) {
    const workflowId = passIdOf(wf.workflowId);
    const isPass = workflowId === wf.workflowId;
    passes.push({
      workflowId,
      // A carrier child's run is not the pass's: link the pass by id (the UI opens its latest run).
      runId: isPass ? wf.runId : '',
      closeTime: wf.closeTime ? wf.closeTime.toISOString() : null,
      outcome: isPass ? (wf.typedSearchAttributes.get(REAP_OUTCOME_KEY) ?? null) : null,
      reapedCount: isPass ? (wf.typedSearchAttributes.get(REAPED_COUNT_KEY) ?? null) : null,
      url: workflowUrl(t.uiUrl, t.namespace, workflowId, isPass ? wf.runId : undefined),
    });
    if (passes.length >= 10) break;
  }
  return passes;
}

/** Everything the reaper knows about an id or token: rows, tombstones, the passes that reaped it. */
export async function explain(deps: ExplainDeps, idOrToken: string): Promise<Explanation> {
  const [standings, tombstones, listed] = await Promise.all([
    deps.plans.find(idOrToken, deps.failedGraceMs),
    deps.plans.tombstones(idOrToken),
    deps.store.listStaleFailed(deps.failedGraceMs, deps.batchLimit),
  ]);
  const listedIds = new Set(listed.map((i) => i.id));
  const locked = await deps.plans.lockedIds(standings.map((s) => s.id));
  const rows: RowExplanation[] = [];
  for (const s of standings) {
    const planned = await planItem(deps, s, { listed: listedIds.has(s.id), locked: locked.has(s.id) });
    // Whether its objects exist now, whatever the verdict (read-only, guard permitting).
    let objects: readonly PlannedObject[] = planned.objects;
    if (planned.verdict !== 'reap') {
      const look = await deps.teardown.plan(s);
      objects = look.objects;
    }
    rows.push({
      ...planned,
      objects,
      status: s.status,
      createdAt: s.createdAt.toISOString(),
      assignedAt: s.assignedAt ? s.assignedAt.toISOString() : null,
      ...(s.failures > 0 || s.deferrals > 0 || s.quarantinedAt
        ? {
            failures: {
              failures: s.failures,
              quarantinedAt: s.quarantinedAt ? s.quarantinedAt.toISOString() : null,
              deferrals: s.deferrals,
              nextAttemptAt: s.nextAttemptAt ? s.nextAttemptAt.toISOString() : null,
              lastErrorType: s.lastErrorType,
              lastError: s.lastError,
            },
          }
        : {}),
    });
  }
  const reaped: ReapedExplanation[] = [];
  for (const t of tombstones) {
    let passes: ReapingPass[] = [];
    let passLookupError = deps.temporal ? undefined : deps.temporalError;
    try {
      passes = await reapingPasses(deps, t.poolToken);
    } catch (err) {
      passLookupError = (err as Error).message.split('\n')[0];
    }
    reaped.push({
      itemId: t.itemId,
      poolToken: t.poolToken,
      resourceType: t.resourceType,
      reapedAt: t.reapedAt.toISOString(),
      passes,
      ...(passLookupError ? { passLookupError } : {}),
    });
  }
  return { query: idOrToken, rows, reaped };
}
