import type { PlannedObject } from '../teardown';
import type { Explanation } from './explain';
import type { Plan } from './planner';

/** `kind name` with its state: `database db_x (exists)`, `keys x:* (12 keys)`. */
export function formatObject(o: PlannedObject): string {
  const state =
    o.exists === null
      ? 'not checked'
      : o.kind === 'keys'
        ? `${o.count ?? 0} key(s)`
        : o.exists
          ? 'exists'
          : 'already gone';
  return `${o.kind} ${o.name} (${state}${o.kept ? `; kept: ${o.kept}` : ''})`;
}

const pad = (text: string, width: number) =>
  text.length >= width ? text : text + ' '.repeat(width - text.length);

/** The readable plan: one block per item, then the totals. */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [
    `plan at ${plan.generatedAt}: stale failed items (failed grace ${Math.round(plan.failedGraceMs / 1000)}s, batch limit ${plan.batchLimit})`,
  ];
  if (plan.items.length === 0) lines.push('  nothing to do: no stale failed item');
  for (const item of plan.items) {
    lines.push(
      `${pad(item.verdict.toUpperCase(), 7)} ${pad(item.resourceType, 8)} ${pad(item.cluster, 8)} ${item.poolToken || '(empty token)'}  ${item.id}` +
        `${item.nextPass ? '' : '  (not in the next pass’s batch)'}`,
    );
    if (item.reason) lines.push(`        ${item.reason}`);
    for (const o of item.objects) lines.push(`        - ${formatObject(o)}`);
  }
  lines.push(
    `totals: ${plan.items.length} item(s): reap ${plan.totals.reap}, refuse ${plan.totals.refuse}, skip ${plan.totals.skip}` +
      (plan.truncated ? ` (showing ${plan.items.length} of ${plan.staleFailed}; raise --limit)` : ''),
  );
  return lines.join('\n');
}

export function formatExplanation(e: Explanation): string {
  const lines: string[] = [];
  for (const r of e.rows) {
    lines.push(
      `item ${r.id}  ${r.resourceType} ${r.poolToken || '(empty token)'} on ${r.cluster}`,
      `  status ${r.status}, created ${r.createdAt}, ${r.status === 'failed' ? `failed since ${r.failedAt}` : `assigned_at ${r.assignedAt ?? 'null'}`} (${r.ageSeconds}s ago)`,
      r.verdict === 'reap'
        ? `  next passes: would REAP it${r.nextPass ? ' (in the next pass’s batch)' : ' (a later pass: beyond the next batch)'}`
        : `  next passes: would ${r.verdict.toUpperCase()} it: ${r.reason ?? ''}`,
    );
    if (r.guard) lines.push(`  drop guard: refused at ${r.guard.site} (${r.guard.reason})`);
    if (r.failures) {
      const f = r.failures;
      lines.push(
        `  reaper record: ${f.failures} needs-an-operator failure(s)${f.quarantinedAt ? `, quarantined since ${f.quarantinedAt}` : ''}` +
          `${f.deferrals ? `, ${f.deferrals} deferral(s)` : ''}${f.nextAttemptAt ? `, next attempt after ${f.nextAttemptAt}` : ''}` +
          `${f.lastErrorType ? `; last ${f.lastErrorType}: ${f.lastError ?? ''}` : ''}`,
      );
    }
    lines.push(
      r.objects.length === 0
        ? '  objects: none looked at (refused, unknown cluster or nothing per item)'
        : '  objects now:',
    );
    for (const o of r.objects) lines.push(`    - ${formatObject(o)}`);
  }
  for (const t of e.reaped) {
    lines.push(`reaped: item ${t.itemId}  ${t.resourceType} ${t.poolToken} at ${t.reapedAt} (tombstone)`);
    for (const p of t.passes)
      lines.push(`  by pass ${p.workflowId}${p.closeTime ? ` (closed ${p.closeTime})` : ''}: ${p.url}`);
    if (t.passes.length === 0) {
      lines.push(
        `  pass: ${t.passLookupError ? `not looked up (${t.passLookupError})` : 'not found through ReapedPoolTokens (older than the namespace retention, or not recorded)'}`,
      );
    }
  }
  return lines.join('\n');
}
