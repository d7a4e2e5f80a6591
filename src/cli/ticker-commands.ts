import type { Command } from 'commander';
import type { ReaperClient } from '../client';
import { formatStatus, formatSummary } from '../operator-format';
import { CliExit, config, EXIT, print, reaperClient } from './common';

/** `reap-now`, `status`, `pause`, `resume`: talking to the running ticker through Temporal. */
export function addTickerCommands(program: Command): void {
  program
    .command('reap-now')
    .description('force a pass as soon as the current one (if any) finishes')
    .option('-w, --wait', 'wait for the pass and print its summary (shows progress on a terminal)')
    .option('--json', 'machine-readable output, no progress')
    .action(async (opts: { wait?: boolean; json?: boolean }) => {
      const cfg = config();
      const reaper = await reaperClient(cfg);
      const request = { requestedBy: `cli:${process.env['USER'] ?? 'unknown'}` };
      if (!opts.wait) {
        await reaper.reapNow(request);
        print(
          !!opts.json,
          { requested: true },
          'reapNow sent: a pass starts as soon as the current one (if any) ends',
        );
        return;
      }
      const stopProgress = opts.json || !process.stderr.isTTY ? () => {} : showProgress(reaper);
      try {
        const summary = await reaper.reapNowAndWait(request);
        stopProgress();
        print(!!opts.json, summary, formatSummary(summary));
        const errors = summary.deprovisionErrors + summary.deleteErrors;
        if (summary.aborted) throw new CliExit(EXIT.passErrors, `pass ${summary.passId} could not list`);
        if (errors > 0) throw new CliExit(EXIT.passErrors, `pass ${summary.passId} had ${errors} error(s)`);
      } finally {
        stopProgress();
      }
    });

  program
    .command('status')
    .description("show the ticker's state: paused, passes run, last summary, next tick")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const reaper = await reaperClient(config());
      const status = await reaper.status();
      print(!!opts.json, status, formatStatus(status));
    });

  program
    .command('pause')
    .description('stop ticks and forced passes until resume (a running pass finishes)')
    .option('-r, --reason <reason>', 'shown in the Temporal UI and in status')
    .action(async (opts: { reason?: string }) => {
      const reaper = await reaperClient(config());
      await reaper.pause(opts.reason ? { reason: opts.reason } : {});
      process.stdout.write(`paused${opts.reason ? `: ${opts.reason}` : ''}\n`);
    });

  program
    .command('resume')
    .description('resume ticks; a reapNow sent while paused runs at once')
    .option('-r, --reason <reason>', 'shown in the Temporal UI')
    .action(async (opts: { reason?: string }) => {
      const reaper = await reaperClient(config());
      await reaper.resume(opts.reason ? { reason: opts.reason } : {});
      process.stdout.write('resumed\n');
    });
}

/** Polls the running pass's current details and redraws one status line on stderr. */
function showProgress(reaper: ReaperClient): () => void {
  let stopped = false;
  let last = '';
  const tick = async () => {
    while (!stopped) {
      try {
        const status = await reaper.status();
        const details = status.currentPassId ? await reaper.passDetails(status.currentPassId) : undefined;
        const line = status.currentPassId
          ? `${status.currentPassId}: ${(details ?? 'starting').replace(/\*\*/g, '')}`
          : status.paused
            ? 'paused'
            : 'waiting for the pass to start';
        if (line !== last) process.stderr.write(`\r\x1b[2K${line}`);
        last = line;
      } catch {
        // Progress is best effort; the update's answer is what counts.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  void tick();
  return () => {
    if (!stopped && last) process.stderr.write('\r\x1b[2K');
    stopped = true;
  };
}
