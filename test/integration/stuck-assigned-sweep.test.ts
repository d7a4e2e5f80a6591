import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ActivitySettings, createActivities, type PlatformLookup } from '../../activities';
import { STATE_KEYS } from '../../activities/deps';
import { createMetrics } from '../../src/metrics';
import { PlatformStore } from '../../src/platform/platform-store';
import type { SweepProgress } from '../../src/platform/sweep';
import type { StuckAssignedReport } from '../../src/shared/types';
import { PoolStore } from '../../src/store/pool-store';
import { createTestPlatform, type TestPlatform } from '../helpers/platform';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { CapturedLog, TEST_SETTINGS } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';

/**
 * Issue 13, items 9 and 10, against a real provisioner database and a real platform database:
 * stuck assigned items are classified by a sweep that reads a bounded slice per pass and
 * keeps what it learnt in the reaper's own table, so a bound item is asked about (and written)
 * once per re-verification interval, not once per pass; a binding that disappears is noticed
 * when its re-verification falls due; a slow platform fails closed and the report returns.
 *
 * Budget 0 and 3 rows per slice make every pass do exactly one slice, so the number of
 * passes a sweep takes is known in advance (no timing in these tests).
 */

const HOUR = 3_600_000;
const SLICE = 3;

describe('stuck assigned classification: a sweep in slices, kept in the reaper table', () => {
  let db: TestDatabase;
  let store: PoolStore;
  let platform: TestPlatform;
  let lookup: PlatformStore;
  const log = new CapturedLog();
  const metrics = createMetrics(undefined, { defaultMetrics: false });
  /** What this file's reports asked the platform, by method. */
  const calls = { inventory: [] as string[][], hasResources: 0, readResources: 0 };
  const settings: ActivitySettings = {
    ...TEST_SETTINGS,
    platformSweepBudgetMs: 0,
    platformSweepSliceRows: SLICE,
  };

  beforeAll(async () => {
    db = await createTestDatabase('sweep');
    store = new PoolStore(db.pool);
    platform = await createTestPlatform('sweep');
    lookup = PlatformStore.connect(platform.url, { max: 2 });
  });
  afterEach(async () => {
    // The per-type, per-class counts the trigger keeps match the table they count.
    const { rows } = await db.pool.query<{
      resource_type: string;
      class: string;
      kept: string;
      counted: string;
    }>(
      `SELECT coalesce(c.resource_type, m.resource_type) AS resource_type, coalesce(c.class, m.class) AS class,
              coalesce(c.n, 0) AS kept, coalesce(m.n, 0) AS counted
         FROM pool_reaper_assigned_counts c
         FULL JOIN (SELECT resource_type, class, count(*) AS n FROM pool_reaper_assigned GROUP BY 1, 2) m
           ON m.resource_type = c.resource_type AND m.class = c.class`,
    );
    expect(rows.filter((r) => r.kept !== r.counted)).toEqual([]);
    await db.pool.query('DELETE FROM pool_items');
    await platform.clear();
  });
  afterAll(async () => {
    await lookup?.close();
    await platform?.drop();
    await db?.drop();
  });

  const counting: () => PlatformLookup = () => ({
    async inventory(tokens) {
      calls.inventory.push([...tokens]);
      return lookup.inventory(tokens);
    },
    async hasResources(timeoutMs) {
      calls.hasResources++;
      return lookup.hasResources(timeoutMs);
    },
    async readResources(after, limit, timeoutMs) {
      calls.readResources++;
      return lookup.readResources(after, limit, timeoutMs);
    },
  });
  const report = (overrides: Partial<ActivitySettings> = {}): Promise<StuckAssignedReport> =>
    createActivities({
      store,
      teardown: { preflight: () => undefined, teardown: () => Promise.reject(new Error('not here')) },
      settings: { ...settings, ...overrides },
      metrics,
      log: log.logger,
      platform: counting(),
    }).reportStuckAssigned();
  const progress = async () =>
    (await store.readState<{ sweep: SweepProgress }>(STATE_KEYS.stuckAssigned))!.value.sweep;
  /** Reports until a sweep completes; returns every report, the completing one last. */
  const untilSweepCompletes = async (overrides: Partial<ActivitySettings> = {}) => {
    const before = (await progress().catch(() => undefined))?.completedSweep ?? null;
    const reports: StuckAssignedReport[] = [];
    for (let i = 0; i < 50; i++) {
      reports.push(await report(overrides));
      if ((await progress()).completedSweep !== before) return reports;
    }
    throw new Error('no sweep completed in 50 passes');
  };
  const assigned = (resourceType: string, ageMs = 2 * HOUR) =>
    insertRow(db.pool, { resourceType, status: 'assigned', ageMs });
  const mirrorRow = async (itemId: string) =>
    (
      await db.pool.query<{ class: string; verified_at: Date | null }>(
        'SELECT class, verified_at FROM pool_reaper_assigned WHERE item_id = $1',
        [itemId],
      )
    ).rows[0];

  it('takes one slice per pass, never counts an unclassified item as an orphan, and ends with the verdicts', async () => {
    const live = [await assigned('postgres'), await assigned('postgres'), await assigned('redis')];
    const paused = await assigned('redis');
    const terminal = await assigned('postgres');
    const orphans = [await assigned('postgres'), await assigned('redis')];
    await assigned('postgres', 5 * 60_000); // young: not stuck
    await insertRow(db.pool, { resourceType: 'redis', status: 'failed', ageMs: HOUR });
    for (const item of live) await platform.bind(item.poolToken);
    await platform.bind(paused.poolToken, 'paused');
    await platform.bind(terminal.poolToken, 'deleted');
    await platform.addBackgroundBinding();
    await platform.addResource({ providerResourceId: 'local:0' });
    await platform.addResource({ providerResourceId: null });
    // pool_items: 9 rows, slices of 3 -> 4 sync passes (3, 3, 3, 0); resources: 8 rows ->
    // 3 scan passes (3, 3, 2). The sweep completes on the 7th pass.
    const reports = await untilSweepCompletes();

    expect(reports).toHaveLength(7);
    for (const r of reports.slice(0, -1)) {
      expect(r.platformCheck).toEqual({ status: 'ok' });
      expect(r.orphans?.total).toBe(0);
      expect(Object.values(r.stuck).every((n) => n === 0)).toBe(true);
    }
    // Mid-sweep, items are unknown until their binding is read: never orphans.
    expect(reports[3]?.classes?.['postgres']?.unknown).toBe(4);
    const last = reports.at(-1)!;
    expect(last.classes?.['postgres']).toEqual({ bound_live: 2, bound_terminal: 1, orphan: 1, unknown: 0 });
    expect(last.classes?.['redis']).toEqual({ bound_live: 2, bound_terminal: 0, orphan: 1, unknown: 0 });
    expect(last.stuck).toEqual({ postgres: 1, redis: 1, mongodb: 0, queue: 0 });
    expect(last.orphans?.items.map((o) => o.id).sort()).toEqual(orphans.map((o) => o.id).sort());
    // The platform was read by slices, never asked about tokens.
    expect(calls.inventory).toEqual([]);
  });

  it('does not ask about, nor write, a bound item again until its re-verification is due; orphans are re-checked every sweep', async () => {
    const bound = await assigned('postgres');
    const orphan = await assigned('redis');
    await platform.bind(bound.poolToken);
    await platform.addBackgroundBinding();
    await untilSweepCompletes();
    const boundBefore = await mirrorRow(bound.id);
    const orphanBefore = await mirrorRow(orphan.id);
    expect(boundBefore?.class).toBe('bound_live');
    expect(orphanBefore?.class).toBe('orphan');
    const inventoryCalls = calls.inventory.length;

    const next = await untilSweepCompletes();

    expect(next.at(-1)?.orphans?.total).toBe(1);
    expect((await mirrorRow(bound.id))?.verified_at).toEqual(boundBefore?.verified_at);
    expect((await mirrorRow(orphan.id))?.verified_at?.getTime()).toBeGreaterThan(
      orphanBefore!.verified_at!.getTime(),
    );
    expect(calls.inventory.length).toBe(inventoryCalls);
  });

  it('notices a binding that disappeared once its re-verification falls due, and a late binding at once', async () => {
    const bound = await assigned('postgres');
    const late = await assigned('redis');
    const binding = await platform.bind(bound.poolToken);
    await platform.addBackgroundBinding();
    await untilSweepCompletes();
    expect((await mirrorRow(late.id))?.class).toBe('orphan');

    // The platform loses the binding; the item was confirmed recently, so it stays bound ...
    await platform.db.pool.query('DELETE FROM resources WHERE id = $1', [binding]);
    await platform.bind(late.poolToken);
    let last = (await untilSweepCompletes()).at(-1)!;
    expect(last.classes?.['postgres']?.bound_live).toBe(1);
    // ... while the orphan that got bound is bound at the next sweep.
    expect(last.classes?.['redis']).toMatchObject({ bound_live: 1, orphan: 0 });

    // Its re-verification falls due (6 h by default): the next complete sweep finds no binding.
    await db.pool.query(
      `UPDATE pool_reaper_assigned SET verify_after = now() - interval '1 second' WHERE item_id = $1`,
      [bound.id],
    );
    last = (await untilSweepCompletes()).at(-1)!;
    expect(last.classes?.['postgres']).toMatchObject({ bound_live: 0, orphan: 1 });
    expect(last.orphans?.items.map((o) => o.id)).toEqual([bound.id]);
  });

  it('stops counting an orphan as soon as its row is no longer that stuck assigned item', async () => {
    const orphan = await assigned('postgres');
    await platform.addBackgroundBinding();
    expect((await untilSweepCompletes()).at(-1)?.stuck['postgres']).toBe(1);
    await db.pool.query(`UPDATE pool_items SET status = 'failed', assigned_at = now() WHERE id = $1`, [
      orphan.id,
    ]);
    // One pass: the sync has not reached it yet, but the count already checks the row.
    const next = await report();
    expect(next.stuck['postgres']).toBe(0);
    expect(next.orphans?.items).toEqual([]);
  });

  it('a platform too slow to answer fails closed: the report returns, nothing is an orphan, the stuck gauge has no series', async () => {
    const orphan = await assigned('postgres');
    await platform.addBackgroundBinding();
    await untilSweepCompletes();
    const failuresBefore = (await metrics.platformCheckFailures.get()).values.find(
      (v) => v.labels.reason === 'timeout',
    )?.value;
    // Another session holds `resources` locked: every read waits until its timeout.
    const locker = new pg.Client({ connectionString: platform.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE resources IN ACCESS EXCLUSIVE MODE');
      const slow = await report({ platformSweepBudgetMs: 200 });
      expect(slow.platformCheck).toMatchObject({ status: 'failed', reason: 'timeout' });
      expect(slow.stuck).toEqual({});
      expect(slow.orphans).toMatchObject({ total: 0, items: [] });
      // The earlier orphan verdict is not repeated while the platform cannot confirm it.
      expect(slow.classes?.['postgres']).toMatchObject({ orphan: 0, unknown: 1 });
      expect(
        (await metrics.platformCheckFailures.get()).values.find((v) => v.labels.reason === 'timeout')?.value,
      ).toBe((failuresBefore ?? 0) + 1);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    const back = await untilSweepCompletes();
    expect(back.at(-1)?.orphans?.items.map((o) => o.id)).toEqual([orphan.id]);
  });
});
