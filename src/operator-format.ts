import type { TickerStatus } from './shared/messages';
import type { PassSummary } from './shared/types';

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

function formatStuck(stuck: Readonly<Record<string, number>>): string {
  const nonZero = Object.entries(stuck).filter(([, n]) => n > 0);
  return nonZero.length ? nonZero.map(([t, n]) => `${t}=${n}`).join(' ') : 'none';
}

/** Human-readable pass summary for the CLI; `--json` prints the object itself. */
export function formatSummary(s: PassSummary): string {
  if (s.aborted) {
    return [
      `pass ${s.passId}`,
      `  could not list (${s.aborted.errorType}): ${s.aborted.message}`,
      '  nothing was touched; the next pass tries again',
      `  took ${formatDuration(s.durationMs)} (${s.startedAt} → ${s.finishedAt})`,
    ].join('\n');
  }
  if (s.dryRun) {
    return [
      `pass ${s.passId} (DRY RUN: REAPER_DRY_RUN=true, nothing dropped, no row deleted)`,
      `  listed ${s.listed}${s.batchFull ? ` (batch full at ${s.batchLimit})` : ''}: would reap ${s.dryRun.reap}, ` +
        `refuse ${s.dryRun.refuse}, skip ${s.dryRun.skip}${s.dryRun.failed ? `, planning failed ${s.dryRun.failed}` : ''}`,
      `  took ${formatDuration(s.durationMs)} (${s.startedAt} → ${s.finishedAt})`,
      '  each item’s verdict and objects: its planItem activity in the pass history, or `pool-reaper plan`',
    ].join('\n');
  }
  const lines = [
    `pass ${s.passId}${s.outcome ? ` (${s.outcome})` : ''}`,
    `  listed ${s.listed}${s.batchFull ? ` (batch full at ${s.batchLimit}: more are waiting)` : ''}`,
    `  reaped ${s.reaped}, refused ${s.refused}, deprovision errors ${s.deprovisionErrors}, ` +
      `delete errors ${s.deleteErrors}, skipped ${s.skipped}${s.deferred ? `, deferred ${s.deferred}` : ''}`,
    `  stuck assigned: ${
      s.platformCheck?.status === 'failed'
        ? `unknown (platform check failed: ${s.platformCheck.reason}; nothing treated as orphan)`
        : formatStuck(s.stuckAssigned)
    }`,
    `  took ${formatDuration(s.durationMs)} (${s.startedAt} → ${s.finishedAt})`,
  ];
  // A sharded tick (REAPER_PASS_SHARDS): the counts above are the sum of its shard passes.
  for (const shard of s.shards ?? []) {
    lines.push(
      `  shard ${shard.passId}: ${shard.failure ? `${shard.failure.replace('_', ' ')} (recorded as a failed pass)` : `reaped ${shard.reaped}/${shard.listed}${shard.batchFull ? ' (batch full)' : ''}`}`,
    );
  }
  for (const c of s.clusterFailures ?? [])
    lines.push(`  cluster ${c.resourceType}/${c.cluster} failed (${c.errorType}): ${c.message}`);
  for (const c of s.clustersDown ?? [])
    lines.push(
      `  cluster ${c.resourceType}/${c.cluster} down since ${c.downSince} (${c.lastErrorType}): ` +
        `${c.waiting} item(s) wait, next probe after ${c.retryAt}`,
    );
  if (s.stuckReportError)
    lines.push(
      `  stuck-assigned report failed (${s.stuckReportError.errorType}): ${s.stuckReportError.message}`,
    );
  for (const e of s.errors)
    lines.push(
      `  ! ${e.resourceType} ${e.poolToken || '(empty token)'}: ${e.outcome} ${e.errorType}: ${e.message}`,
    );
  return lines.join('\n');
}

export function formatStatus(st: TickerStatus): string {
  const lines = [
    st.paused ? `paused: ${st.pauseReason ?? ''}` : 'running',
    `passes run: ${st.passesRun}${st.passesFailed ? ` (${st.passesFailed} failed)` : ''}`,
    `tick: every ${formatDuration(st.settings.tickMs)}, concurrency ${st.settings.pass.concurrency}` +
      (st.settings.pass.dryRun ? ' (DRY RUN: passes plan and touch nothing)' : ''),
    st.currentPassId ? `current pass: ${st.currentPassId}` : `next tick: ${st.nextTickAt ?? '(paused)'}`,
  ];
  if (st.pendingForce) lines.push('a forced pass is pending');
  if (st.consecutiveFailures > 0 && st.lastFailure) {
    const f = st.lastFailure;
    lines.push(
      `last ${st.consecutiveFailures} pass(es) failed: ${f.passId} ${f.reason} at ${f.at}: ${f.message}`,
    );
  }
  lines.push(st.lastSummary ? `last ${formatSummary(st.lastSummary)}` : 'no pass has completed yet');
  return lines.join('\n');
}
