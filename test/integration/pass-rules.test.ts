import type { WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { tickerSettingsFrom } from '../../src/client';
import { DEFAULT_CLUSTER, loadConfig } from '../../src/config';
import { isTickerSettings } from '../../src/shared/messages';
import type { PassRules } from '../../src/shared/types';
import { createTeardownRegistry } from '../../src/teardown';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';
import { connectTestTemporal, createTestWorker } from '../helpers/temporal';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** The first payload of an event's input, decoded (the default JSON payload converter); none: undefined. */
function decode(payloads: { data?: Uint8Array | null }[] | null | undefined): unknown {
  const data = payloads?.[0]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
}

async function recordedInputs(handle: WorkflowHandle): Promise<{ pass: unknown; listing: unknown[] }> {
  const { events } = await handle.fetchHistory();
  const started = events?.find((e) => e.workflowExecutionStartedEventAttributes);
  const listing = (events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'listStaleFailed')
    .map((e) => decode(e.activityTaskScheduledEventAttributes?.input?.payloads));
  return { pass: decode(started?.workflowExecutionStartedEventAttributes?.input?.payloads), listing };
}

describe("a pass's rules travel in its input", () => {
  let h: ReaperHarness;
  let second: { worker: Worker; running: Promise<void>; close: () => Promise<void> };

  beforeAll(async () => {
    // Two replicas on one task queue, neither with the pass's grace: one (the harness) says
    // REAPER_FAILED_GRACE=1m, the other 5m. Whichever runs an activity, a 10-minute-old failed
    // item is stale by its own config; only the pass's 1h rule keeps it out.
    h = await createReaperHarness('pass_rules', { settings: { failedGraceMs: MINUTE } });
    const registry = createTeardownRegistry({
      postgresClusters: new Map([[DEFAULT_CLUSTER, TEST_POSTGRES_URL]]),
      redisClusters: new Map([[DEFAULT_CLUSTER, TEST_REDIS_URL]]),
      concurrency: 4,
      log: h.log.logger,
    });
    // Its own connection, as another replica has: one connection may not carry two workers
    // alike on one queue.
    const temporal = await connectTestTemporal(h.temporal.address);
    const worker = await createTestWorker(temporal, {
      taskQueue: h.taskQueue,
      activities: createActivities({
        store: h.store,
        teardown: registry,
        settings: { ...h.settings, failedGraceMs: 5 * MINUTE },
        metrics: h.metrics,
        log: h.log.logger,
      }),
    });
    const running = worker.run();
    second = {
      worker,
      running,
      close: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
        await registry.close();
        await temporal.close();
      },
    };
  });
  afterAll(async () => {
    await second?.close();
    await h?.close();
  });

  it('applies the grace in the pass input on every replica, and history shows it', async () => {
    const recent = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: 10 * MINUTE,
    });
    const old = await insertRow(h.db.pool, { resourceType: 'postgres', status: 'failed', ageMs: 2 * HOUR });
    const rules: PassRules = {
      failedGraceMs: HOUR,
      batchLimit: 20,
      stuckAssignedGraceMs: 30 * MINUTE,
      orphanGraceMs: 24 * HOUR,
    };

    const { summary, handle } = await h.runPass({ rules });

    expect(summary).toMatchObject({ listed: 1, reaped: 1, batchLimit: 20 });
    expect(await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [old.id])).toMatchObject({
      rowCount: 0,
    });
    const left = await h.db.pool.query<{ id: string }>('SELECT id FROM pool_items ORDER BY id');
    expect(left.rows.map((r) => r.id)).toEqual([recent.id]);

    const inputs = await recordedInputs(handle);
    expect(inputs.pass).toMatchObject({ rules });
    expect(inputs.listing).toEqual([{ rules }]);
    await h.db.pool.query('DELETE FROM pool_items');
  });

  it('falls back to the replica’s own config for a pass without rules (older passes)', async () => {
    // Both replicas list a 10-minute-old item by their own graces (1m and 5m).
    const recent = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: 10 * MINUTE,
    });
    const { summary, handle } = await h.runPass();
    expect(summary).toMatchObject({ listed: 1, reaped: 1, batchLimit: h.settings.batchLimit });
    expect(await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [recent.id])).toMatchObject({
      rowCount: 0,
    });
    const inputs = await recordedInputs(handle);
    expect(inputs.pass).not.toHaveProperty('rules');
    // The listing's input is as before rules existed: no argument at all.
    expect(inputs.listing).toEqual([undefined]);
    await h.db.pool.query('DELETE FROM pool_items');
  });

  it('is decided once from the config that builds the ticker settings, and checked on configure', () => {
    const config = loadConfig({
      ...process.env,
      REAPER_FAILED_GRACE: '1h',
      REAPER_BATCH_LIMIT: '20',
      REAPER_STUCK_ASSIGNED_GRACE: '30m',
      REAPER_ORPHAN_GRACE: '24h',
    });
    expect(tickerSettingsFrom(config).pass.rules).toEqual({
      failedGraceMs: HOUR,
      batchLimit: 20,
      stuckAssignedGraceMs: 30 * MINUTE,
      orphanGraceMs: 24 * HOUR,
    });
    const settings = tickerSettingsFrom(config);
    expect(isTickerSettings(settings)).toBe(true);
    // Older clients send no rules: still accepted.
    const { rules: _, ...withoutRules } = settings.pass;
    expect(isTickerSettings({ ...settings, pass: withoutRules })).toBe(true);
    for (const bad of [
      {},
      { ...settings.pass.rules, batchLimit: 0 },
      { ...settings.pass.rules, failedGraceMs: 'x' },
    ]) {
      expect(isTickerSettings({ ...settings, pass: { ...settings.pass, rules: bad } })).toBe(false);
    }
  });
});
