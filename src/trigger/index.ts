import type { Client } from '@temporalio/client';
import type { ReaperConfig } from '../config';
import { formatDuration, formatStatus, formatSummary } from '../operator-format';
import { ScheduleTrigger } from './schedule';
import { TickerTrigger } from './ticker';
import type { ReaperStatus, ReaperTrigger } from './types';

export type { ReaperStatus, ReaperTrigger } from './types';

/** The operator's handle on whatever starts passes in this config's mode (REAPER_TRIGGER). */
export function openTrigger(client: Client, config: ReaperConfig): ReaperTrigger {
  return config.trigger === 'schedule'
    ? new ScheduleTrigger(client, config.tickerWorkflowId)
    : new TickerTrigger(client, config.tickerWorkflowId);
}

/** `status` as text: the ticker's lines unchanged; a Schedule's note, next runs and last passes. */
export function formatReaperStatus(st: ReaperStatus): string {
  if (st.mode === 'ticker') return formatStatus(st);
  const lines = [
    st.paused ? `paused: ${st.pauseReason ?? ''}` : 'running',
    `trigger: Schedule, every ${formatDuration(st.settings.tickMs)}, concurrency ${st.settings.pass.concurrency}`,
    ...(st.note && !st.paused ? [`note: ${st.note}`] : []),
    `passes started: ${st.passesRun}${st.skippedOverlap ? ` (${st.skippedOverlap} tick(s) skipped: a pass was running)` : ''}`,
    st.currentPassId
      ? `current pass: ${st.currentPassId}`
      : `next runs: ${st.nextRunTimes.length ? st.nextRunTimes.slice(0, 3).join(', ') : '(paused)'}`,
  ];
  if (st.pendingForce) lines.push('a forced pass is pending');
  if (st.consecutiveFailures > 0 && st.lastFailure) {
    const f = st.lastFailure;
    lines.push(
      `last ${st.consecutiveFailures} pass(es) failed: ${f.passId} ${f.reason} at ${f.at}: ${f.message}`,
    );
  }
  lines.push(st.lastSummary ? `last ${formatSummary(st.lastSummary)}` : 'no pass has completed yet');
  for (const p of st.recentPasses ?? []) {
    const s = p.summary;
    lines.push(
      `  ${p.passId}  ${p.status}${s ? `  listed ${s.listed}, reaped ${s.reaped}, errors ${s.deprovisionErrors + s.deleteErrors}` : ''}`,
    );
  }
  return lines.join('\n');
}
