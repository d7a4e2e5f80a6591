import type { PassSummary, ReapOutcome } from '../src/shared/types';

/**
 * What a pass shows in the Web UI (its current details): progress while it runs, then its
 * summary. Markdown, as the UI renders it. Text only: changing it never changes history's
 * shape, only the details a query returns.
 */

/** Progress of the orphan reclaim, redrawn after every item. */
export function reclaimProgress(
  t: Readonly<Record<ReapOutcome, number>>,
  done: number,
  total: number,
): string {
  return (
    `**Reclaiming orphans** ${done}/${total}: reclaimed ${t.reaped}, kept ${t.skipped}, ` +
    `refused ${t.refused}, deprovision errors ${t.deprovision_err}, delete errors ${t.delete_err}`
  );
}

/** The pass's final current details in the Web UI. */
export function describePass(s: PassSummary): string {
  if (s.aborted) {
    return `**Could not list** (${s.aborted.errorType}): ${s.aborted.message}; nothing touched, the next pass tries again`;
  }
  const lines = [
    `**Done** listed ${s.listed}, reaped ${s.reaped}, refused ${s.refused}, ` +
      `deprovision errors ${s.deprovisionErrors}, delete errors ${s.deleteErrors}, ` +
      `skipped ${s.skipped}${s.deferred ? `, deferred ${s.deferred}` : ''}, in ${s.durationMs} ms`,
  ];
  for (const c of s.clusterFailures ?? []) {
    lines.push(`**Cluster failed** ${c.resourceType}/${c.cluster} (${c.errorType}): ${c.message}`);
  }
  for (const c of s.clustersDown ?? []) {
    lines.push(
      `**Cluster down** ${c.resourceType}/${c.cluster} since ${c.downSince} (${c.lastErrorType}): ` +
        `${c.waiting} item(s) wait, next probe after ${c.retryAt}`,
    );
  }
  if (s.stuckReportError) {
    lines.push(
      `**Stuck-assigned report failed** (${s.stuckReportError.errorType}): ${s.stuckReportError.message}`,
    );
  }
  return lines.join('\n\n') + describeOrphans(s);
}

function formatAge(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48
    ? `${Math.floor(hours / 24)}d`
    : hours >= 1
      ? `${Math.floor(hours)}h`
      : `${Math.floor(ms / 60_000)}m`;
}

/** Extra UI lines for a pass: platform check, orphans (token, type, age), reclaim results. */
export function describeOrphans(summary: PassSummary): string {
  const lines: string[] = [];
  const check = summary.platformCheck;
  if (check?.status === 'failed') {
    lines.push(`**Platform check failed** (${check.reason}): ${check.message}; nothing treated as orphan`);
  }
  const orphans = summary.orphans;
  if (orphans && orphans.total > 0) {
    const listed = orphans.items.map((o) => `${o.resourceType} ${o.poolToken} (${formatAge(o.ageMs)})`);
    const more = orphans.total > listed.length ? `, and ${orphans.total - listed.length} more` : '';
    lines.push(
      `**Orphans** ${orphans.total}${orphans.reclaim ? '' : ' (audit only, nothing dropped)'}: ${listed.join(', ')}${more}`,
    );
  }
  const r = summary.orphanReclaim;
  if (r) {
    lines.push(
      `**Orphans reclaimed** ${r.reclaimed}/${r.attempted}: kept ${r.skipped}, refused ${r.refused}, ` +
        `deprovision errors ${r.deprovisionErrors}, delete errors ${r.deleteErrors}`,
    );
  }
  return lines.map((l) => `\n\n${l}`).join('');
}
