import { describe, expect, it } from 'vitest';
import { tickerSettingsFrom } from '../../src/client';
import { ConfigError, loadConfig } from '../../src/config';
import { isTickerSettings, type TickerSettings, tickerSettingsProblem } from '../../src/shared/messages';
import {
  DEPROVISION_RETRY_DEFAULTS,
  MAX_TICKER_DURATION_MS,
  MIN_DEPROVISION_HEARTBEAT_TIMEOUT_MS,
} from '../../src/shared/settings-rules';

/**
 * The `configure` payload's validator (src/shared/messages.ts): every field it carries,
 * including the test-only deprovisionRetry and activityTimeouts sub-objects, is held to the
 * rules of src/shared/settings-rules.ts, and a refusal is one line naming the field.
 */
describe('configure payload validation', () => {
  const base: TickerSettings = {
    ...tickerSettingsFrom(loadConfig({})),
    pass: {
      ...tickerSettingsFrom(loadConfig({})).pass,
      deprovisionRetry: { maximumAttempts: 3, initialIntervalMs: 100, maximumIntervalMs: 200 },
      activityTimeouts: {
        deprovisionHeartbeatMs: 3000,
        deprovisionStartToCloseMs: 60_000,
        deleteStartToCloseMs: 5000,
      },
    },
  };
  const withPass = (pass: Record<string, unknown>) => ({ ...base, pass: { ...base.pass, ...pass } });
  const retry = (r: Record<string, unknown>) => withPass({ deprovisionRetry: r });
  const timeouts = (t: Record<string, unknown>) => withPass({ activityTimeouts: t });

  it('accepts what a worker sends, with or without the sub-objects, and each field alone', () => {
    expect(tickerSettingsProblem(base)).toBeUndefined();
    const { deprovisionRetry: _r, activityTimeouts: _t, ...plain } = base.pass;
    expect(tickerSettingsProblem({ ...base, pass: plain })).toBeUndefined();
    expect(tickerSettingsProblem(retry({}))).toBeUndefined();
    expect(tickerSettingsProblem(timeouts({}))).toBeUndefined();
    expect(tickerSettingsProblem(retry({ maximumAttempts: 1 }))).toBeUndefined();
    expect(tickerSettingsProblem(timeouts({ deleteStartToCloseMs: 1 }))).toBeUndefined();
    // The heartbeat floor itself is fine; so is the 365-day bound.
    expect(
      tickerSettingsProblem(timeouts({ deprovisionHeartbeatMs: MIN_DEPROVISION_HEARTBEAT_TIMEOUT_MS })),
    ).toBeUndefined();
    expect(
      tickerSettingsProblem(timeouts({ deprovisionStartToCloseMs: MAX_TICKER_DURATION_MS })),
    ).toBeUndefined();
    expect(isTickerSettings(base)).toBe(true);
  });

  it('refuses a bad deprovisionRetry field with one line naming it', () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { maximumAttempts: 0 },
        'pass.deprovisionRetry.maximumAttempts: expected an integer of at least 1, got 0',
      ],
      [
        { maximumAttempts: -2 },
        'pass.deprovisionRetry.maximumAttempts: expected an integer of at least 1, got -2',
      ],
      [
        { maximumAttempts: 2.5 },
        'pass.deprovisionRetry.maximumAttempts: expected an integer of at least 1, got 2.5',
      ],
      [
        { maximumAttempts: '3' },
        'pass.deprovisionRetry.maximumAttempts: expected an integer of at least 1, got "3"',
      ],
      [
        { initialIntervalMs: 0 },
        'pass.deprovisionRetry.initialIntervalMs: expected a number of milliseconds above 0 and at most 365 days (31536000000), got 0',
      ],
      [
        { maximumIntervalMs: -1 },
        'pass.deprovisionRetry.maximumIntervalMs: expected a number of milliseconds above 0 and at most 365 days (31536000000), got -1',
      ],
      [
        { maximumIntervalMs: null },
        'pass.deprovisionRetry.maximumIntervalMs: expected a number of milliseconds above 0 and at most 365 days (31536000000), got null',
      ],
      [
        { maxAttempts: 3 },
        'pass.deprovisionRetry.maxAttempts: unknown field (known: maximumAttempts, initialIntervalMs, maximumIntervalMs)',
      ],
      [
        { initialIntervalMs: 500, maximumIntervalMs: 200 },
        'pass.deprovisionRetry.maximumIntervalMs: expected at least initialIntervalMs (500), got 200',
      ],
      // Against the default it would be paired with, as the pass fills it in.
      [
        { initialIntervalMs: 60_000 },
        `pass.deprovisionRetry.maximumIntervalMs: expected at least initialIntervalMs (60000), got ${DEPROVISION_RETRY_DEFAULTS.maximumIntervalMs} (the default)`,
      ],
      [
        { maximumIntervalMs: 500 },
        `pass.deprovisionRetry.maximumIntervalMs: expected at least initialIntervalMs (${DEPROVISION_RETRY_DEFAULTS.initialIntervalMs}, the default), got 500`,
      ],
    ];
    for (const [value, reason] of cases) {
      expect(tickerSettingsProblem(retry(value)), JSON.stringify(value)).toBe(reason);
      expect(isTickerSettings(retry(value))).toBe(false);
    }
    for (const value of [null, 3, 'fast', [1, 2]]) {
      expect(tickerSettingsProblem(withPass({ deprovisionRetry: value }))).toMatch(
        /^pass\.deprovisionRetry: expected an object, got /,
      );
    }
  });

  it('refuses a bad activityTimeouts field with one line naming it, including a heartbeat timeout under 3 × the heartbeat interval floor', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ deprovisionHeartbeatMs: 0 }, /^pass\.activityTimeouts\.deprovisionHeartbeatMs: expected .*, got 0$/],
      [
        { deprovisionHeartbeatMs: 599 },
        /^pass\.activityTimeouts\.deprovisionHeartbeatMs: expected a number of milliseconds from 600 \(3 × the 200 ms heartbeat interval floor\) to 365 days, got 599$/,
      ],
      [
        { deprovisionHeartbeatMs: '10s' },
        /^pass\.activityTimeouts\.deprovisionHeartbeatMs: expected .*, got "10s"$/,
      ],
      [
        { deprovisionStartToCloseMs: -5 },
        /^pass\.activityTimeouts\.deprovisionStartToCloseMs: expected .*, got -5$/,
      ],
      [{ deleteStartToCloseMs: 0 }, /^pass\.activityTimeouts\.deleteStartToCloseMs: expected .*, got 0$/],
      [
        { deleteStartToCloseMs: MAX_TICKER_DURATION_MS + 1 },
        /^pass\.activityTimeouts\.deleteStartToCloseMs: expected .*at most 365 days.*, got 31536000001$/,
      ],
      [
        { heartbeatMs: 3000 },
        /^pass\.activityTimeouts\.heartbeatMs: unknown field \(known: deprovisionHeartbeatMs, deprovisionStartToCloseMs, deleteStartToCloseMs\)$/,
      ],
    ];
    for (const [value, reason] of cases) {
      const problem = tickerSettingsProblem(timeouts(value));
      expect(problem, JSON.stringify(value)).toMatch(reason);
      expect(problem).not.toContain('\n');
    }
  });

  it('names the field for the older checks too (tick, lanes, rules)', () => {
    expect(tickerSettingsProblem(null)).toBe('settings: expected an object, got null');
    expect(tickerSettingsProblem({ ...base, tickMs: '30s' })).toMatch(/^tickMs: expected .*, got "30s"$/);
    expect(tickerSettingsProblem({ tickMs: 1000 })).toBe('pass: expected an object, got nothing');
    expect(tickerSettingsProblem(withPass({ concurrency: 0 }))).toBe(
      'pass.concurrency: expected an integer from 1 to 64, got 0',
    );
    expect(tickerSettingsProblem(withPass({ rules: { ...base.pass.rules, batchLimit: 0 } }))).toBe(
      'pass.rules.batchLimit: expected an integer from 1 to 500, got 0',
    );
  });

  it('holds REAPER_TICK and REAPER_PASS_TIMEOUT to the same rule as configure: what the env accepts, configure accepts', () => {
    for (const tick of ['500ms', '30s', '365d']) {
      const settings = tickerSettingsFrom(loadConfig({ REAPER_TICK: tick, REAPER_PASS_TIMEOUT: tick }));
      expect(tickerSettingsProblem(settings), tick).toBeUndefined();
    }
    expect(() => loadConfig({ REAPER_TICK: '366d' })).toThrow(ConfigError);
    expect(tickerSettingsProblem({ ...base, tickMs: 366 * 24 * 3_600_000 })).toMatch(/^tickMs: /);
  });

  it('holds lanes and the batch limit to the env config’s ranges, worded alike', () => {
    const widest = tickerSettingsFrom(
      loadConfig({ REAPER_CONCURRENCY: '64', REAPER_CLUSTER_CONCURRENCY: '64', REAPER_BATCH_LIMIT: '500' }),
    );
    expect(tickerSettingsProblem(widest)).toBeUndefined();
    for (const [variable, raw] of [
      ['REAPER_CONCURRENCY', '65'],
      ['REAPER_CLUSTER_CONCURRENCY', '65'],
      ['REAPER_BATCH_LIMIT', '501'],
    ] as const) {
      expect(() => loadConfig({ [variable]: raw }), variable).toThrow(ConfigError);
    }
    expect(() => loadConfig({ REAPER_CONCURRENCY: '65' })).toThrow(
      'REAPER_CONCURRENCY: expected an integer from 1 to 64, got "65"',
    );
    expect(tickerSettingsProblem(withPass({ concurrency: 65 }))).toBe(
      'pass.concurrency: expected an integer from 1 to 64, got 65',
    );
    expect(tickerSettingsProblem(withPass({ clusterConcurrency: 65 }))).toBe(
      'pass.clusterConcurrency: expected an integer from 1 to 64, got 65',
    );
    expect(tickerSettingsProblem(withPass({ rules: { ...base.pass.rules, batchLimit: 501 } }))).toBe(
      'pass.rules.batchLimit: expected an integer from 1 to 500, got 501',
    );
  });
});
