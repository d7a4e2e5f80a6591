/**
 * The limits of the settings the ticker carries, written once: the env config (src/config.ts)
 * and the `configure` validator (src/shared/messages.ts) both hold values to these, and the
 * activities and workflows that use the values read their defaults and floors from here.
 * Workflow-safe (no Node API): bundled into the sandbox.
 */

/**
 * The longest tick, pass timeout, bookkeeping budget or activity timeout the ticker accepts
 * (365 days). A finite but larger tick breaks it: the next tick's time is past what a Date can
 * hold, every workflow task fails and the ticker stalls. REAPER_TICK and REAPER_PASS_TIMEOUT
 * have the same bound, so that no worker's own settings are refused by `configure`.
 */
export const MAX_TICKER_DURATION_MS = 365 * 24 * 3_600_000;

/**
 * The deprovision activity heartbeats every timeout / HEARTBEATS_PER_TIMEOUT, never more often
 * than every MIN_HEARTBEAT_INTERVAL_MS (activities/deprovision.ts): so that two heartbeats may
 * be lost before Temporal gives an attempt up, the heartbeat timeout is at least 3 × that floor.
 * Below it, every attempt of a slow teardown could time out between two heartbeats.
 */
export const HEARTBEATS_PER_TIMEOUT = 3;
export const MIN_HEARTBEAT_INTERVAL_MS = 200;
export const MIN_DEPROVISION_HEARTBEAT_TIMEOUT_MS = HEARTBEATS_PER_TIMEOUT * MIN_HEARTBEAT_INTERVAL_MS;

/** The deprovision retry policy when a pass does not set one (ReapPassOptions.deprovisionRetry). */
export const DEPROVISION_RETRY_DEFAULTS = {
  maximumAttempts: 5,
  initialIntervalMs: 1000,
  maximumIntervalMs: 30_000,
} as const;

/** One field's rule: what it must be (the text after "expected"), and whether a value is. */
export interface SettingRule {
  readonly expected: string;
  readonly test: (value: unknown) => boolean;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export const POSITIVE_INTEGER: SettingRule = {
  expected: 'an integer of at least 1',
  test: (v) => isNumber(v) && Number.isInteger(v) && v >= 1,
};

/** An integer from `min` to `max`, worded as the env config words its refusals. */
function integerFrom(range: { readonly min: number; readonly max: number }): SettingRule {
  return {
    expected: `an integer from ${range.min} to ${range.max}`,
    test: (v) => isNumber(v) && Number.isInteger(v) && v >= range.min && v <= range.max,
  };
}

/** Lanes of a pass, in all and per cluster (REAPER_CONCURRENCY, REAPER_CLUSTER_CONCURRENCY). */
export const CONCURRENCY_RANGE = { min: 1, max: 64 } as const;
/** Items one pass lists at most (REAPER_BATCH_LIMIT). */
export const BATCH_LIMIT_RANGE = { min: 1, max: 500 } as const;
export const CONCURRENCY: SettingRule = integerFrom(CONCURRENCY_RANGE);
export const BATCH_LIMIT: SettingRule = integerFrom(BATCH_LIMIT_RANGE);

/** A duration a timer or a Temporal timeout waits on: bounded by MAX_TICKER_DURATION_MS. */
export const TICKER_DURATION: SettingRule = {
  expected: 'a number of milliseconds above 0 and at most 365 days (31536000000)',
  test: (v) => isNumber(v) && v > 0 && v <= MAX_TICKER_DURATION_MS,
};

/**
 * A grace: not bounded by MAX_TICKER_DURATION_MS, since no timer waits on it and no worker's
 * own REAPER_*_GRACE may be refused by `configure`.
 */
export const GRACE: SettingRule = {
  expected: 'a finite number of milliseconds above 0',
  test: (v) => isNumber(v) && v > 0,
};

export const DEPROVISION_HEARTBEAT_TIMEOUT: SettingRule = {
  expected: `a number of milliseconds from ${MIN_DEPROVISION_HEARTBEAT_TIMEOUT_MS} (${HEARTBEATS_PER_TIMEOUT} × the ${MIN_HEARTBEAT_INTERVAL_MS} ms heartbeat interval floor) to 365 days`,
  test: (v) => TICKER_DURATION.test(v) && (v as number) >= MIN_DEPROVISION_HEARTBEAT_TIMEOUT_MS,
};

/** A value as a refusal shows it: short, and `nothing` for a missing one. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  text ??= String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `<path>: expected <rule>, got <value>` when `value` breaks the rule (absent is fine when optional). */
export function ruleProblem(
  path: string,
  value: unknown,
  rule: SettingRule,
  optional = false,
): string | undefined {
  if (optional && value === undefined) return undefined;
  return rule.test(value) ? undefined : `${path}: expected ${rule.expected}, got ${shown(value)}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * An object of optional fields, each with its rule: the first problem, naming the field. An
 * unknown key is refused too (a typo such as `maxAttempts` would otherwise be ignored and the
 * default silently applied).
 */
export function optionalFieldsProblem(
  path: string,
  value: unknown,
  rules: Readonly<Record<string, SettingRule>>,
): string | undefined {
  if (!isRecord(value)) return `${path}: expected an object, got ${shown(value)}`;
  const known = Object.keys(rules);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) return `${path}.${key}: unknown field (known: ${known.join(', ')})`;
  }
  for (const key of known) {
    const problem = ruleProblem(`${path}.${key}`, value[key], rules[key]!, true);
    if (problem) return problem;
  }
  return undefined;
}

/** ReapPassOptions.deprovisionRetry: each field optional, defaults in DEPROVISION_RETRY_DEFAULTS. */
export function deprovisionRetryProblem(path: string, value: unknown): string | undefined {
  const problem = optionalFieldsProblem(path, value, {
    maximumAttempts: POSITIVE_INTEGER,
    initialIntervalMs: TICKER_DURATION,
    maximumIntervalMs: TICKER_DURATION,
  });
  if (problem) return problem;
  // Temporal refuses a policy whose maximum interval is below its initial one: the pass's
  // workflow task would fail on every item. Compared with the defaults filled in, as the pass does.
  const retry = value as { initialIntervalMs?: number; maximumIntervalMs?: number };
  const initial = retry.initialIntervalMs ?? DEPROVISION_RETRY_DEFAULTS.initialIntervalMs;
  const maximum = retry.maximumIntervalMs ?? DEPROVISION_RETRY_DEFAULTS.maximumIntervalMs;
  if (maximum < initial) {
    return (
      `${path}.maximumIntervalMs: expected at least initialIntervalMs (${initial}` +
      `${retry.initialIntervalMs === undefined ? ', the default' : ''}), got ${shown(maximum)}` +
      `${retry.maximumIntervalMs === undefined ? ' (the default)' : ''}`
    );
  }
  return undefined;
}

/** ReapPassOptions.activityTimeouts: each field optional, production defaults when absent. */
export function activityTimeoutsProblem(path: string, value: unknown): string | undefined {
  return optionalFieldsProblem(path, value, {
    deprovisionHeartbeatMs: DEPROVISION_HEARTBEAT_TIMEOUT,
    deprovisionStartToCloseMs: TICKER_DURATION,
    deleteStartToCloseMs: TICKER_DURATION,
  });
}
