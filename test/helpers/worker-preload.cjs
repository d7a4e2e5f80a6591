// Test-only preload for `node dist/src/cli.js worker` (NODE_OPTIONS=--require <this file>).
// The worker builds the ticker's pass options from REAPER_CONCURRENCY alone; reliability tests
// also need shorter activity timeouts and faster retries (ReapPassOptions.activityTimeouts,
// deprovisionRetry), which no variable sets. This merges RELIABILITY_PASS_OPTIONS (JSON) into
// the settings the worker sends with its signal-with-start, so every pass the ticker starts
// carries them from the first one on. Nothing else in the process is changed.
const path = require('node:path');

const overrides = process.env.RELIABILITY_PASS_OPTIONS;
if (overrides) {
  const extra = JSON.parse(overrides);
  const client = require(path.resolve(__dirname, '..', '..', 'dist', 'src', 'client.js'));
  const original = client.tickerSettingsFrom;
  client.tickerSettingsFrom = (config, recordReapedTokens) => {
    const settings = original(config, recordReapedTokens);
    return { ...settings, pass: { ...settings.pass, ...extra } };
  };
}

// REAPER_TEST_SCHEDULE_WATCH_MS (tests of REAPER_TRIGGER=schedule): how often each replica
// looks for failed scheduled passes (10 s in production) and how long a scrape reuses the
// Schedule's pause (5 s). Same looks, same cache, only more often: a test that waits for a
// replica to look twice more waits seconds, not twenty.
const watchMs = Number(process.env.REAPER_TEST_SCHEDULE_WATCH_MS ?? '');
if (watchMs > 0) {
  const watch = require(path.resolve(__dirname, '..', '..', 'dist', 'src', 'trigger', 'schedule-watch.js'));
  const startFailureWatch = watch.startFailureWatch;
  const schedulePauseReader = watch.schedulePauseReader;
  watch.startFailureWatch = (deps, intervalMs) => startFailureWatch(deps, intervalMs ?? watchMs);
  watch.schedulePauseReader = (client, scheduleId, cacheMs) =>
    schedulePauseReader(client, scheduleId, cacheMs ?? Math.min(watchMs, watch.PAUSED_CACHE_MS));
}
