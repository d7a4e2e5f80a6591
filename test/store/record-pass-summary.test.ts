import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type Teardown } from '../../activities';
import { createMetrics, type ReaperMetrics } from '../../src/metrics';
import type { PassSummary } from '../../src/shared/types';
import { PoolStore } from '../../src/store/pool-store';
import { uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { CapturedLog, TEST_SETTINGS } from '../helpers/reaper';

/** recordPassSummary never tears anything down: a teardown that would is a bug in this test. */
const NO_TEARDOWN: Teardown = {
  preflight: () => {
    throw new Error('recordPassSummary must not tear anything down');
  },
  teardown: () => Promise.reject(new Error('recordPassSummary must not tear anything down')),
};

function summaryFor(passId: string): PassSummary {
  const now = Date.now();
  return {
    passId,
    startedAt: new Date(now - 2_000).toISOString(),
    finishedAt: new Date(now).toISOString(),
    durationMs: 2_000,
    listed: 4,
    reaped: 3,
    deprovisionErrors: 1,
    deleteErrors: 0,
    refused: 0,
    skipped: 0,
    batchLimit: 50,
    batchFull: false,
    stuckAssigned: {},
    outcomes: [
      { resourceType: 'postgres', outcome: 'reaped', count: 2 },
      { resourceType: 'redis', outcome: 'reaped', count: 1 },
      { resourceType: 'redis', outcome: 'deprovision_err', count: 1 },
    ],
    errors: [],
  };
}

/**
 * Issue 13, item 6: Temporal retries an activity whose completion was lost (a worker that
 * died, a timeout after the work was done). A retried recordPassSummary must not count the
 * pass twice: instant_pool_reap_total feeds PoolReapErrors. The real activity, on the real
 * PoolStore and a real provisioner database.
 */
describe('recordPassSummary counts each pass once', () => {
  let db: TestDatabase;
  let store: PoolStore;
  let metrics: ReaperMetrics;
  let log: CapturedLog;
  let recordPassSummary: (summary: PassSummary) => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase('record_pass');
    store = new PoolStore(db.pool);
    metrics = createMetrics(undefined, { defaultMetrics: false });
    log = new CapturedLog();
    ({ recordPassSummary } = createActivities({
      store,
      teardown: NO_TEARDOWN,
      settings: TEST_SETTINGS,
      metrics,
      log: log.logger,
    }));
  });
  afterAll(async () => {
    await db?.drop();
  });

  const reapTotal = async (type: string, outcome: string) =>
    (await metrics.reapTotal.get()).values.find(
      (v) => v.labels.resource_type === type && v.labels.outcome === outcome && v.labels.status === 'failed',
    )?.value ?? 0;
  /** `_count` of the pass-duration histogram, read as Prometheus scrapes it. */
  const passesObserved = async () => {
    const text = await metrics.registry.getSingleMetricAsString('instant_pool_reap_pass_duration_seconds');
    const count = text.match(/^instant_pool_reap_pass_duration_seconds_count (\d+)$/m)?.[1];
    return Number(count ?? Number.NaN);
  };
  const completedLines = (passId: string) =>
    log.events('pool_reaper.pass.completed').filter((l) => l['passId'] === passId).length;

  it('counts a retried recording once, and a different pass again', async () => {
    const first = summaryFor(`pass-${uniqueSuffix()}-1`);

    await recordPassSummary(first);
    // The retry Temporal makes when the first completion was lost: the same summary again.
    await recordPassSummary(first);

    expect(await reapTotal('postgres', 'reaped')).toBe(2);
    expect(await reapTotal('redis', 'reaped')).toBe(1);
    expect(await reapTotal('redis', 'deprovision_err')).toBe(1);
    expect(await passesObserved()).toBe(1);
    expect(completedLines(first.passId)).toBe(1);
    // The retry still stamps the last pass (ReaperStalled reads it).
    const last = await store.readState<{ passId: string }>('last_pass');
    expect(last?.value.passId).toBe(first.passId);

    const second = summaryFor(`pass-${uniqueSuffix()}-2`);
    await recordPassSummary(second);

    expect(await reapTotal('postgres', 'reaped')).toBe(4);
    expect(await reapTotal('redis', 'reaped')).toBe(2);
    expect(await reapTotal('redis', 'deprovision_err')).toBe(2);
    expect(await passesObserved()).toBe(2);
    expect(completedLines(second.passId)).toBe(1);
  });

  it('counts once when two attempts of the same pass record at the same time', async () => {
    const before = await reapTotal('postgres', 'reaped');
    const summary = summaryFor(`pass-${uniqueSuffix()}-3`);
    await Promise.all([recordPassSummary(summary), recordPassSummary(summary), recordPassSummary(summary)]);
    expect(await reapTotal('postgres', 'reaped')).toBe(before + 2);
    expect(completedLines(summary.passId)).toBe(1);
  });
});
