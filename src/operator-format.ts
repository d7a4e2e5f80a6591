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
  const lines = [
    `pass ${s.passId}`,
    `  listed ${s.listed}${s.batchFull ? ` (batch full at ${s.batchLimit}: more are waiting)` : ''}`,
    `  reaped ${s.reaped}, refused ${s.refused}, deprovision errors ${s.deprovisionErrors}, ` +
      `delete errors ${s.deleteErrors}, skipped ${s.skipped}`,
    `  stuck assigned: ${
      s.platformCheck?.status === 'failed'
        ? `unknown (platform check failed: ${s.platformCheck.reason}; nothing treated as orphan)`
        : formatStuck(s.stuckAssigned)
    }`,
    `  took ${formatDuration(s.durationMs)} (${s.startedAt} → ${s.finishedAt})`,
  ];
  for (const e of s.errors)
    lines.push(
      `  ! ${e.resourceType} ${e.poolToken || '(empty token)'}: ${e.outcome} ${e.errorType}: ${e.message}`,
    );
  return lines.join('\n');
}

export function formatStatus(st: TickerStatus): string {
  const lines = [
    st.paused ? `paused: ${st.pauseReason ?? ''}` : 'running',
    `passes run: ${st.passesRun}`,
    `tick: every ${formatDuration(st.settings.tickMs)}, concurrency ${st.settings.pass.concurrency}`,
    st.currentPassId ? `current pass: ${st.currentPassId}` : `next tick: ${st.nextTickAt ?? '(paused)'}`,
  ];
  if (st.pendingForce) lines.push('a forced pass is pending');
  lines.push(st.lastSummary ? `last ${formatSummary(st.lastSummary)}` : 'no pass has completed yet');
  return lines.join('\n');
}
