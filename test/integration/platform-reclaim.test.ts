import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { DEFAULT_CLUSTER } from '../../src/config';
import { type SeededItem, seedItems } from '../../src/dev/seed';
import { PlatformStore } from '../../src/platform/platform-store';
import type { DeprovisionInput, PoolItemRef } from '../../src/shared/types';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown';
import { AUDIT_EVENTS } from '../../src/teardown/audit';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { createTestPlatform, type TestPlatform } from '../helpers/platform';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

const HOUR = 3_600_000;

describe('opt-in orphan reclamation (REAPER_RECLAIM_ORPHANS=true, default 24h orphan grace)', () => {
  let h: ReaperHarness;
  let platform: TestPlatform;
  let background: string;
  let registry: TeardownRegistry;
  /** Runs after each platform inventory read returns, before its caller sees the answer. */
  let afterInventory: ((tokens: readonly string[]) => Promise<void>) | undefined;
  /** Runs after each slice of the classification sweep is read, before the sweep sees it. */
  let afterSweepRead: (() => Promise<void>) | undefined;
  const redis = testRedis();
  /** Items seeded by the current test: freed after it with plain SQL and Redis, never by the code under test. */
  const seeded: string[] = [];
  const targets = seedTargets();

  beforeAll(async () => {
    platform = await createTestPlatform('reclaim');
    background = await platform.addBackgroundBinding();
    h = await createReaperHarness('platform_reclaim', {
      platformDatabaseUrl: platform.url,
      settings: { reclaimOrphans: true },
      platform: (real) => ({
        async inventory(tokens) {
          const inventory = await real.inventory(tokens);
          await afterInventory?.(tokens);
          return inventory;
        },
        hasResources: (timeoutMs) => real.hasResources(timeoutMs),
        async readResources(after, limit, timeoutMs) {
          const slice = await real.readResources(after, limit, timeoutMs);
          await afterSweepRead?.();
          return slice;
        },
      }),
    });
    registry = createTeardownRegistry({
      postgresClusters: new Map([[DEFAULT_CLUSTER, TEST_POSTGRES_URL]]),
      redisClusters: new Map([[DEFAULT_CLUSTER, TEST_REDIS_URL]]),
      concurrency: 2,
      log: h.log.logger,
    });
  });
  afterEach(async () => {
    afterInventory = undefined;
    afterSweepRead = undefined;
    for (const token of seeded.splice(0)) await cleanupToken(targets, token);
    await h.db.pool.query('DELETE FROM pool_items');
    await h.db.pool.query('DELETE FROM pool_reaper_item_failures');
    await platform.clear([background]);
  });
  afterAll(async () => {
    await registry?.close();
    await h?.close();
    await platform?.drop();
    await targets.close();
    redis.disconnect();
  });

  const seed = (resourceType: 'postgres' | 'redis', ageMs: number) =>
    seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType,
      status: 'assigned',
      ageMs,
    }).then(([item]) => {
      seeded.push(item!.poolToken);
      return item!;
    });
  const rowStatus = async (id: string) =>
    (await h.db.pool.query<{ status: string }>('SELECT status FROM pool_items WHERE id = $1', [id])).rows[0]
      ?.status;
  const pgInfraExists = async (item: SeededItem) =>
    (await databaseExists(`db_${item.poolToken}`)) && (await roleExists(`usr_${item.poolToken}`));
  const dropEvents = (token: string) => h.log.events(AUDIT_EVENTS.drop).filter((e) => e['token'] === token);
  const reapCounter = async (resourceType: string, status: string, outcome: string) =>
    (await h.metrics.reapTotal.get()).values.find(
      (v) =>
        v.labels.resource_type === resourceType && v.labels.status === status && v.labels.outcome === outcome,
    )?.value ?? 0;
  /** Calls `fn` once, after the n-th inventory read that asks about `token`. */
  const onInventoryRead = (token: string, n: number, fn: () => Promise<void>) => {
    let reads = 0;
    afterInventory = async (tokens) => {
      if (!tokens.includes(token)) return;
      reads += 1;
      if (reads === n) await fn();
    };
    return () => reads;
  };

  it('reclaims orphans past the orphan grace: infra gone, rows gone, counted, each step audited in order', async () => {
    const pgOrphan = await seed('postgres', 48 * HOUR);
    const redisOrphan = await seed('redis', 48 * HOUR);
    const bound = await seed('postgres', 48 * HOUR);
    const terminal = await seed('redis', 48 * HOUR);
    const young = await seed('postgres', 2 * HOUR);
    await platform.bind(bound.poolToken, 'active');
    await platform.bind(terminal.poolToken, 'deleted');
    const before = await reapCounter('postgres', 'assigned', 'reaped');

    const { summary, handle } = await h.runPass();

    expect(summary.orphans).toMatchObject({ total: 3, reclaim: true });
    expect(summary.orphanReclaim).toMatchObject({
      attempted: 2,
      reclaimed: 2,
      skipped: 0,
      refused: 0,
      deprovisionErrors: 0,
      deleteErrors: 0,
    });
    expect(await databaseExists(`db_${pgOrphan.poolToken}`)).toBe(false);
    expect(await roleExists(`usr_${pgOrphan.poolToken}`)).toBe(false);
    expect(await keysMatching(redis, `${redisOrphan.poolToken}:*`)).toEqual([]);
    expect(await aclUserExists(redis, `usr_${redisOrphan.poolToken}`)).toBe(false);
    expect(await rowStatus(pgOrphan.id)).toBeUndefined();
    expect(await rowStatus(redisOrphan.id)).toBeUndefined();
    expect(await reapCounter('postgres', 'assigned', 'reaped')).toBe(before + 1);
    expect(await reapCounter('redis', 'assigned', 'reaped')).toBeGreaterThanOrEqual(1);

    // Bound (live or terminal) and young orphans: untouched.
    expect(await pgInfraExists(bound)).toBe(true);
    expect(await pgInfraExists(young)).toBe(true);
    expect((await keysMatching(redis, `${terminal.poolToken}:*`)).length).toBeGreaterThan(0);
    for (const item of [bound, terminal, young]) expect(await rowStatus(item.id)).toBe('assigned');

    // recheckOrphan, then deprovision, then deleteItem, each its own activity.
    const order = await historyOrder(handle);
    for (const item of [pgOrphan, redisOrphan]) {
      const recheck = order.find((e) => e.activity === 'recheckOrphan' && e.itemId === item.id);
      const deprovision = order.find((e) => e.activity === 'deprovision' && e.itemId === item.id);
      const del = order.find((e) => e.activity === 'deleteItem' && e.itemId === item.id);
      expect(recheck?.completedEventId).toBeDefined();
      expect(deprovision?.scheduledEventId).toBeGreaterThan(recheck!.completedEventId!);
      expect(del?.scheduledEventId).toBeGreaterThan(deprovision!.completedEventId!);
    }
    const touched = new Set(order.map((e) => e.itemId));
    for (const item of [bound, terminal, young]) expect(touched.has(item.id)).toBe(false);
    expect(h.log.events('pool_reaper.orphan.teardown').map((e) => e['poolToken'])).toEqual(
      expect.arrayContaining([pgOrphan.poolToken, redisOrphan.poolToken]),
    );
    expect(dropEvents(pgOrphan.poolToken).length).toBeGreaterThan(0);
  });

  it('race: a binding written right after classification is caught by recheckOrphan', async () => {
    // Let any sweep an earlier test left half done finish, so this pass runs one whole sweep.
    await h.runPass();
    const orphan = await seed('postgres', 48 * HOUR);
    // Classification reads `resources` in slices; the binding lands right after the last one.
    afterSweepRead = async () => {
      afterSweepRead = undefined;
      await platform.bind(orphan.poolToken);
    };

    const { summary, handle } = await h.runPass();

    expect(summary.orphans?.items.map((o) => o.poolToken)).toEqual([orphan.poolToken]);
    expect(summary.orphanReclaim).toMatchObject({ attempted: 1, reclaimed: 0, skipped: 1 });
    const activities = (await historyOrder(handle)).map((e) => e.activity);
    expect(activities).toContain('recheckOrphan');
    expect(activities).not.toContain('deprovision');
    expect(activities).not.toContain('deleteItem');
    expect(await pgInfraExists(orphan)).toBe(true);
    expect(await rowStatus(orphan.id)).toBe('assigned');
    expect(dropEvents(orphan.poolToken)).toEqual([]);

    // The next pass sees it bound (the next sweep starts with it).
    afterInventory = undefined;
    const next = await h.runPass();
    expect(next.summary.assignedClasses?.['postgres']?.bound_live).toBe(1);
    expect(next.summary.orphanReclaim).toBeUndefined();
  });

  it('race: a binding written after recheckOrphan is caught by the re-check under the row lock', async () => {
    const orphan = await seed('postgres', 48 * HOUR);
    // Classification reads `resources` by slices, not by token. Read 1: recheckOrphan;
    // read 2: deprovision, under the row lock.
    const reads = onInventoryRead(orphan.poolToken, 1, async () => {
      await platform.bind(orphan.poolToken);
    });

    const { summary, handle } = await h.runPass();

    expect(reads()).toBe(2);
    expect(summary.orphanReclaim).toMatchObject({ attempted: 1, reclaimed: 0, skipped: 1 });
    const order = await historyOrder(handle);
    expect(
      order.find((e) => e.activity === 'deprovision' && e.itemId === orphan.id)?.completedEventId,
    ).toBeDefined();
    expect(order.some((e) => e.activity === 'deleteItem')).toBe(false);
    expect(await pgInfraExists(orphan)).toBe(true);
    expect(await rowStatus(orphan.id)).toBe('assigned');
    expect(dropEvents(orphan.poolToken)).toEqual([]);
    expect(h.log.events('pool_reaper.orphan.teardown').some((e) => e['poolToken'] === orphan.poolToken)).toBe(
      false,
    );
  });

  it('the platform emptied between recheck and teardown: the locked re-check fails closed', async () => {
    const orphan = await seed('postgres', 48 * HOUR);
    onInventoryRead(orphan.poolToken, 1, async () => {
      await platform.clear();
    });
    const failuresBefore =
      (await h.metrics.platformCheckFailures.get()).values.find((v) => v.labels.reason === 'empty_inventory')
        ?.value ?? 0;
    try {
      const { summary } = await h.runPass();
      expect(summary.orphanReclaim).toMatchObject({ attempted: 1, reclaimed: 0, skipped: 1 });
      expect(await pgInfraExists(orphan)).toBe(true);
      expect(await rowStatus(orphan.id)).toBe('assigned');
      const failures = await h.metrics.platformCheckFailures.get();
      expect(failures.values.find((v) => v.labels.reason === 'empty_inventory')?.value).toBe(
        failuresBefore + 1,
      );
      expect(h.log.events('pool_reaper.platform_check.failed').at(-1)).toMatchObject({
        site: 'teardown',
        reason: 'empty_inventory',
      });
    } finally {
      background = await platform.addBackgroundBinding();
    }
  });

  it('a Discard between recheck and teardown: the locked row check keeps the item', async () => {
    const orphan = await seed('postgres', 48 * HOUR);
    onInventoryRead(orphan.poolToken, 1, async () => {
      await h.db.pool.query(`UPDATE pool_items SET status = 'failed', assigned_at = now() WHERE id = $1`, [
        orphan.id,
      ]);
    });

    const { summary } = await h.runPass();

    expect(summary.orphanReclaim).toMatchObject({ attempted: 1, reclaimed: 0, skipped: 1 });
    expect(await pgInfraExists(orphan)).toBe(true);
    expect(await rowStatus(orphan.id)).toBe('failed');
  });

  it('an empty inventory with reclamation on: nothing is an orphan, nothing is dropped', async () => {
    const orphan = await seed('postgres', 48 * HOUR);
    await platform.clear();
    try {
      const { summary, handle } = await h.runPass();
      expect(summary.platformCheck).toMatchObject({ status: 'failed', reason: 'empty_inventory' });
      expect(summary.orphans?.total).toBe(0);
      expect(summary.orphanReclaim).toBeUndefined();
      expect((await historyOrder(handle)).map((e) => e.activity)).not.toContain('recheckOrphan');
      expect(await pgInfraExists(orphan)).toBe(true);
    } finally {
      background = await platform.addBackgroundBinding();
    }
  });

  describe('activities called directly', () => {
    let lookup: PlatformStore;
    beforeAll(() => {
      lookup = PlatformStore.connect(platform.url, { max: 2 });
    });
    afterAll(async () => {
      await lookup?.close();
    });
    const activities = (reclaimOrphans: boolean) =>
      createActivities({
        store: h.store,
        teardown: registry,
        settings: { ...h.settings, reclaimOrphans },
        metrics: h.metrics,
        log: h.log.logger,
        platform: lookup,
      });
    const refOf = ({ id, resourceType, poolToken, providerResourceId }: SeededItem): PoolItemRef => ({
      id,
      resourceType,
      poolToken,
      providerResourceId,
    });
    /** assigned_at as the orphan audit lists it (ISO 8601, UTC, microseconds). */
    const listedAssignedAt = async (id: string) => {
      const { rows } = await h.db.pool.query<{ at: string }>(
        `SELECT to_char(assigned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
           FROM pool_items WHERE id = $1`,
        [id],
      );
      return rows[0]!.at;
    };

    it('the conditional delete refuses a row whose assigned_at changed, even by a microsecond', async () => {
      const row = await insertRow(h.db.pool, { resourceType: 'queue', status: 'assigned', ageMs: 48 * HOUR });
      const listed = await listedAssignedAt(row.id);
      expect(listed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      await h.db.pool.query(
        `UPDATE pool_items SET assigned_at = assigned_at + interval '1 microsecond' WHERE id = $1`,
        [row.id],
      );
      const { deleteItem } = activities(true);
      expect(await deleteItem({ item: row, expect: { status: 'assigned', assignedAt: listed } })).toEqual({
        deleted: false,
        itemId: row.id,
        poolToken: row.poolToken,
      });
      expect(await rowStatus(row.id)).toBe('assigned');

      const current = await listedAssignedAt(row.id);
      expect(current).not.toBe(listed);
      // Without the opt-in, not even a matching orphan row is deleted.
      expect(
        await activities(false).deleteItem({
          item: row,
          expect: { status: 'assigned', assignedAt: current },
        }),
      ).toEqual({ deleted: false, itemId: row.id, poolToken: row.poolToken });
      expect(await rowStatus(row.id)).toBe('assigned');
      // The failed-item delete never takes an assigned row.
      expect(await deleteItem({ item: row })).toEqual({
        deleted: false,
        itemId: row.id,
        poolToken: row.poolToken,
      });
      expect(await deleteItem({ item: row, expect: { status: 'assigned', assignedAt: current } })).toEqual({
        deleted: true,
        itemId: row.id,
        poolToken: row.poolToken,
      });
      expect(await rowStatus(row.id)).toBeUndefined();
    });

    it('deprovision leaves an orphan alone unless opted in, still assigned with the same assigned_at', async () => {
      const orphan = await seed('postgres', 48 * HOUR);
      const item = refOf(orphan);
      const assignedAt = await listedAssignedAt(orphan.id);
      const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('WARN') });
      const orphanInput = (at: string): DeprovisionInput => ({
        item,
        expect: { status: 'assigned', assignedAt: at },
      });

      // Not opted in on this worker.
      expect(await env.run(activities(false).deprovision, orphanInput(assignedAt))).toEqual({
        outcome: 'skipped',
        reason: 'orphan reclamation is not enabled on this worker',
      });
      expect(await activities(false).recheckOrphan({ item, assignedAt })).toEqual({
        orphan: false,
        reason: 'orphan reclamation is not enabled on this worker',
      });
      // The failed path stays as strict as before: an assigned row is never a failed item.
      expect(await env.run(activities(true).deprovision, { item })).toEqual({
        outcome: 'skipped',
        reason: 'row status is now assigned',
      });
      // assigned_at moved on (a new claim of the same row would do that).
      await h.db.pool.query(
        `UPDATE pool_items SET assigned_at = assigned_at + interval '1 second' WHERE id = $1`,
        [orphan.id],
      );
      expect(await activities(true).recheckOrphan({ item, assignedAt })).toEqual({
        orphan: false,
        reason: 'row assigned_at changed since listing',
      });
      expect(await env.run(activities(true).deprovision, orphanInput(assignedAt))).toEqual({
        outcome: 'skipped',
        reason: 'row assigned_at changed since listing',
      });
      // Within the orphan grace.
      await h.db.pool.query(`UPDATE pool_items SET assigned_at = now() - interval '2 hours' WHERE id = $1`, [
        orphan.id,
      ]);
      const fresh = await listedAssignedAt(orphan.id);
      expect(await env.run(activities(true).deprovision, orphanInput(fresh))).toEqual({
        outcome: 'skipped',
        reason: 'row is not past the orphan grace',
      });
      expect(await pgInfraExists(orphan)).toBe(true);
      expect(dropEvents(orphan.poolToken)).toEqual([]);
    });

    it('reportStuckAssigned names only unquarantined orphans past the orphan grace', async () => {
      const old = await insertRow(h.db.pool, { resourceType: 'queue', status: 'assigned', ageMs: 48 * HOUR });
      const young = await insertRow(h.db.pool, {
        resourceType: 'queue',
        status: 'assigned',
        ageMs: 2 * HOUR,
      });
      const quarantined = await insertRow(h.db.pool, {
        resourceType: 'queue',
        status: 'assigned',
        ageMs: 72 * HOUR,
      });
      for (let i = 0; i < h.settings.quarantineAfter; i++) {
        await h.store.recordFailure(quarantined, 'DropRefusedError', 'refused', h.settings.quarantineAfter);
      }
      const on = await activities(true).reportStuckAssigned();
      expect(on.orphans?.total).toBe(3);
      // All three are orphans; the young one (inside the orphan grace) and the quarantined one are not reclaimable.
      expect(on.orphans?.items.map((o) => o.id).sort()).toEqual([old.id, young.id, quarantined.id].sort());
      expect(on.reclaimable?.map((o) => o.id)).toEqual([old.id]);
      const off = await activities(false).reportStuckAssigned();
      expect(off.orphans?.total).toBe(3);
      expect(off.reclaimable).toBeUndefined();
    });
  });
});
