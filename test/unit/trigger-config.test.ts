import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { catchupWindowMs, REAP_NOW_OVERLAP, scheduleOptionsFrom } from '../../src/trigger/schedule';

describe('REAPER_TRIGGER and the Schedule it asks for', () => {
  it('defaults to the ticker and accepts only ticker or schedule', () => {
    expect(loadConfig({}).trigger).toBe('ticker');
    expect(loadConfig({ REAPER_TRIGGER: 'schedule' }).trigger).toBe('schedule');
    expect(() => loadConfig({ REAPER_TRIGGER: 'cron' })).toThrow(
      new ConfigError('REAPER_TRIGGER', 'ticker or schedule, got "cron"'),
    );
  });

  it('builds a Schedule that never overlaps passes and never pauses on a failure', () => {
    const config = loadConfig({
      REAPER_TRIGGER: 'schedule',
      REAPER_WORKFLOW_ID: 'reaper-x',
      TEMPORAL_TASK_QUEUE: 'q-x',
      REAPER_TICK: '2m',
      REAPER_CONCURRENCY: '6',
      REAPER_PASS_TIMEOUT: '20m',
    });
    const s = scheduleOptionsFrom(config, false);
    expect(s.scheduleId).toBe('reaper-x');
    expect(s.spec.intervals).toEqual([{ every: 120_000 }]);
    expect(s.policies).toEqual({ overlap: 'SKIP', catchupWindow: 60_000, pauseOnFailure: false });
    expect(s.action).toMatchObject({
      taskQueue: 'q-x',
      workflowId: 'reaper-x-pass',
      workflowRunTimeout: 20 * 60_000,
      args: [{ concurrency: 6, clusterConcurrency: 4, recordReapedTokens: false, scheduled: true }],
    });
    expect((s.action.workflowType as { name: string }).name).toBe('reapPass');
    // reap-now must queue behind a running pass, never run beside it (trigger()'s default).
    expect(REAP_NOW_OVERLAP).toBe('BUFFER_ONE');
  });

  it('starts scheduled passes with the same pass options as the ticker (dry run, outcome attributes)', () => {
    const config = loadConfig({ REAPER_TRIGGER: 'schedule', REAPER_DRY_RUN: 'true' });
    const [args] = scheduleOptionsFrom(config, true).action.args ?? [];
    expect(args).toMatchObject({ dryRun: true, recordPassOutcome: true, scheduled: true });
    const [plain] = scheduleOptionsFrom(loadConfig({ REAPER_TRIGGER: 'schedule' }), false).action.args ?? [];
    expect(plain).not.toHaveProperty('dryRun');
    expect(plain).toMatchObject({ recordPassOutcome: false, recordReapedTokens: false });
  });

  it('keeps the catch-up window short and above the server floor', () => {
    expect(catchupWindowMs(1_000)).toBe(10_000);
    expect(catchupWindowMs(30_000)).toBe(30_000);
    expect(catchupWindowMs(3_600_000)).toBe(60_000);
  });

  it('refuses a tick the Schedule would round', () => {
    const config = loadConfig({ REAPER_TRIGGER: 'schedule', REAPER_TICK: '1500ms' });
    expect(() => scheduleOptionsFrom(config)).toThrow(ConfigError);
  });
});
