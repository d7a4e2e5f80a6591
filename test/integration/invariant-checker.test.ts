import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertPoolItemRow, type PoolItemStatus, provisionItem } from '../../src/dev/seed';
import type { DeleteItemResult, DeprovisionResult, PoolItemRef } from '../../src/shared/types';
import { uniqueSuffix } from '../helpers/env';
import {
  checkHistories,
  checkItemHistory,
  createCanaries,
  type DropEvent,
  dropEventsFrom,
  InvariantChecker,
  type OwnedCanaries,
} from '../helpers/invariants';
import { adminQuery, createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { FAILED_GRACE_MS, HOUR, MINUTE } from '../helpers/reliability-fixtures';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';
import { connectTestTemporal, createTestWorker, type TestTemporal, testTaskQueue } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

/**
 * The invariant checker is what makes every reliability scenario's "no violations" mean
 * something, so it is tested here on its own: each violation it exists to catch is built for
 * real (real rows with the row-log trigger, real databases, roles, keys and ACL users, real
 * histories recorded by the Temporal server or kept as a fixture) and must be reported; a
 * correct teardown and a correct history must not be.
 */
describe('the invariant checker reports every violation it exists to catch', () => {
  let db: TestDatabase;
  let temporal: TestTemporal;
  const targets = seedTargets();
  const tokens: string[] = [];
  const owned: OwnedCanaries[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('checker');
    temporal = await connectTestTemporal();
  });
  afterEach(async () => {
    for (const token of tokens.splice(0)) await cleanupToken(targets, token);
    for (const canaries of owned.splice(0)) await canaries.cleanup();
    await db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await targets.close();
    await temporal?.close();
    await db?.drop();
  });

  /** A real item the way the provisioner makes it: infra, then its row. */
  const item = async (resourceType: 'postgres' | 'redis', status: PoolItemStatus, ageMs: number) => {
    const provisioned = await provisionItem(targets, { resourceType });
    tokens.push(provisioned.poolToken);
    return insertPoolItemRow(db.pool, { ...provisioned, status, ageMs });
  };
  const canaries = async () => {
    const made = await createCanaries();
    owned.push(made);
    return made;
  };
  const checker = (withCanaries?: OwnedCanaries) =>
    new InvariantChecker({
      pool: db.pool,
      failedGraceMs: FAILED_GRACE_MS,
      ...(withCanaries ? { canaries: withCanaries } : {}),
    });
  /** `provisioner.drop` lines as the worker logs them, through the same parser the scenarios use. */
  const announce = (token: string, ...actions: [string, string][]): DropEvent[] =>
    dropEventsFrom(
      actions.map(([action, target]) => ({
        event: 'provisioner.drop',
        token,
        action,
        target,
        time: Date.now(),
      })),
    );
  const dropDatabase = (name: string) =>
    adminQuery(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`);

  it('accepts a correct teardown: announced, infra dropped, then the row deleted', async () => {
    const stale = await item('postgres', 'failed', HOUR);
    await item('redis', 'ready', HOUR);
    const c = checker(await canaries());
    expect(await c.snapshot()).toMatchObject({ rows: 2, staleFailed: 1 });

    const events = announce(
      stale.poolToken,
      ['drop_database', `db_${stale.poolToken}`],
      ['drop_role', `usr_${stale.poolToken}`],
    );
    await cleanupToken(targets, stale.poolToken);
    await db.pool.query('DELETE FROM pool_items WHERE id = $1', [stale.id]);

    const report = await c.check({ dropEvents: events });
    expect(report.violations).toEqual([]);
    expect(report).toMatchObject({
      rowsDeleted: 1,
      objectsDropped: 2,
      wrongfulDrops: 0,
      leaks: 0,
      rowsLost: 0,
    });
  });

  it('a dropped canary: database, key and ACL user', async () => {
    const canary = await canaries();
    const c = checker(canary);
    await c.snapshot();
    await dropDatabase(canary.databases[0]!);
    await targets.redis.del(canary.keys[0]!);
    await targets.redis.call('ACL', 'DELUSER', canary.aclUsers[0]!);

    const report = await c.check({ dropEvents: [] });
    expect(report.wrongfulDrops).toBe(3);
    expect(report.violations.sort()).toEqual(
      [
        `canary database ${canary.databases[0]} was dropped (it belongs to no pool item)`,
        `canary key ${canary.keys[0]} was dropped (it belongs to no pool item)`,
        `canary acl user ${canary.aclUsers[0]} was dropped (it belongs to no pool item)`,
      ].sort(),
    );
  });

  it('a row deleted while its database and role are alive: a leak', async () => {
    const stale = await item('postgres', 'failed', HOUR);
    const c = checker();
    await c.snapshot();
    await db.pool.query('DELETE FROM pool_items WHERE id = $1', [stale.id]);

    const report = await c.check({ dropEvents: [] });
    expect(report).toMatchObject({ leaks: 1, rowsLost: 0, rowsDeleted: 1 });
    expect(report.violations).toEqual([
      `row ${stale.id} (postgres ${stale.poolToken}) was deleted while database db_${stale.poolToken}, role usr_${stale.poolToken} still exist`,
    ]);
  });

  it('a row deleted while ready, and a row that vanished without a logged delete', async () => {
    const ready = await insertRow(db.pool, { resourceType: 'queue', status: 'ready', ageMs: HOUR });
    const unlogged = await insertRow(db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const c = checker();
    await c.snapshot();
    await db.pool.query('DELETE FROM pool_items WHERE id = $1', [ready.id]);
    // Behind the row log's back: the checker must notice the row is gone all the same.
    await db.pool.query('ALTER TABLE pool_items DISABLE TRIGGER reliability_row_log');
    try {
      await db.pool.query('DELETE FROM pool_items WHERE id = $1', [unlogged.id]);
    } finally {
      await db.pool.query('ALTER TABLE pool_items ENABLE TRIGGER reliability_row_log');
    }

    const report = await c.check({ dropEvents: [] });
    expect(report.rowsLost).toBe(2);
    expect(report.violations.sort()).toEqual(
      [
        `row ${ready.id} (queue ${ready.poolToken}) was deleted while ready (by unnamed connection)`,
        `row ${unlogged.id} (queue ${unlogged.poolToken}) vanished without a logged DELETE`,
      ].sort(),
    );
  });

  it('infra dropped that was not a stale failed item’s: announced for a ready item, unannounced for a fresh one', async () => {
    const ready = await item('postgres', 'ready', HOUR);
    const fresh = await item('redis', 'failed', 2 * MINUTE);
    const c = checker();
    await c.snapshot();
    const events = announce(ready.poolToken, ['drop_database', `db_${ready.poolToken}`]);
    await dropDatabase(`db_${ready.poolToken}`);
    await targets.redis.call('ACL', 'DELUSER', `usr_${fresh.poolToken}`);
    const nobody = `pool-${uniqueSuffix()}`;
    events.push(...announce(nobody, ['drop_database', `db_${nobody}`]));

    const report = await c.check({ dropEvents: events });
    expect(report.unannouncedDrops).toBe(1);
    expect(report.wrongfulDrops).toBe(3);
    expect(report.violations).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^drop_database db_${ready.poolToken} at .* although row ${ready.id} \\(${ready.poolToken}\\) was ready`,
          ),
        ),
        `drop_database db_${nobody} announced for token ${nobody} that no row carries`,
        `acl user usr_${fresh.poolToken} disappeared without a provisioner.drop event for its token`,
        `acl user usr_${fresh.poolToken} dropped although row ${fresh.id} was not a stale failed item`,
      ]),
    );
    expect(report.violations).toHaveLength(4);
  });

  describe('the history check', () => {
    /** Item ids whose (fake) deprovision reports `skipped` instead of `freed`. */
    const unfreed = new Set<string>();
    const fakeActivities = {
      async deprovision({ item: ref }: { item: PoolItemRef }): Promise<DeprovisionResult> {
        if (unfreed.has(ref.id)) return { outcome: 'skipped', reason: 'fake: row changed since listing' };
        return {
          outcome: 'freed',
          teardown: {
            resourceType: ref.resourceType,
            poolToken: ref.poolToken,
            cluster: 'local:0',
            dropped: [],
            alreadyGone: [],
            remaining: [],
            kept: [],
            confirmedFreed: true,
          },
        };
      },
      async deleteItem({ item: ref }: { item: PoolItemRef }): Promise<DeleteItemResult> {
        return { deleted: true, itemId: ref.id, poolToken: ref.poolToken };
      },
    };
    const ref = (label: string): PoolItemRef => ({
      id: randomUUID(),
      resourceType: 'queue',
      poolToken: `pool-${label}-${uniqueSuffix()}`,
      providerResourceId: 'local:0',
    });

    it('rejects deleteItem markers recorded before, without, or after a non-freeing deprovision (real histories)', async () => {
      const taskQueue = testTaskQueue('checker-history');
      const c = checker();
      await c.snapshot();
      const cases = {
        deleteAfterFreedDeprovision: ref('ok'),
        deleteBeforeDeprovision: ref('early'),
        deleteAfterUnfreedDeprovision: ref('unfreed'),
        deleteWithoutDeprovision: ref('alone'),
      };
      unfreed.add(cases.deleteAfterUnfreedDeprovision.id);
      const worker = await createTestWorker(temporal, {
        taskQueue,
        workflowsPath: path.resolve(__dirname, '../fixtures/workflows/history-violations.ts'),
        activities: fakeActivities,
      });
      const histories = await worker.runUntil(async () => {
        const out: Record<string, Awaited<ReturnType<typeof checkItemHistory>>> = {};
        for (const [workflow, itemRef] of Object.entries(cases)) {
          const handle = await temporal.client.workflow.start(workflow, {
            taskQueue,
            workflowId: `${taskQueue}-${workflow}`,
            args: [itemRef],
          });
          await handle.result();
          out[workflow] = checkItemHistory(handle.workflowId, await handle.fetchHistory());
        }
        return out;
      });

      // The control: the marker is parsed (one delete, one freeing deprovision) and accepted.
      expect(histories['deleteAfterFreedDeprovision']).toMatchObject({
        violations: [],
        deletes: 1,
        deprovisionsFreed: 1,
      });
      for (const workflow of [
        'deleteBeforeDeprovision',
        'deleteAfterUnfreedDeprovision',
        'deleteWithoutDeprovision',
      ]) {
        const id = cases[workflow as keyof typeof cases].id;
        expect(histories[workflow]?.deletes, workflow).toBe(1);
        expect(histories[workflow]?.violations, workflow).toEqual([
          expect.stringMatching(
            new RegExp(
              `^history ${taskQueue}-${workflow}: deleteItem of item ${id} \\(event \\d+\\) is not preceded by a completed deprovision that freed it$`,
            ),
          ),
        ]);
      }

      // The same, found through visibility by task queue, and through the checker's report.
      const all = await waitFor(
        () => checkHistories(temporal.client, taskQueue, c.takenAt),
        (found) => found.workflows === 4,
        { what: 'visibility to list the four workflows' },
      );
      expect(all).toMatchObject({ workflows: 4, deletes: 4, deprovisionsFreed: 2 });
      expect(all.violations).toHaveLength(3);
      const report = await c.check({ dropEvents: [], temporal: { client: temporal.client, taskQueue } });
      expect(report.historyViolations).toBe(3);
      expect(report.violations).toEqual(all.violations);
    });

    it('reads a recorded pass (fixture) and rejects it once a deprovision no longer freed, or never completed', () => {
      const raw = readFileSync(path.resolve(__dirname, '../fixtures/histories/reap-pass.json'), 'utf8');
      const markers = (JSON.parse(raw) as FixtureHistory).events.filter(
        (e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
      ).length;
      const recorded = checkItemHistory('fixture', historyFromJSON(JSON.parse(raw)));
      // Every local activity of a pass is a deleteItem: if marker parsing stopped matching the
      // recorded format, deletes would be 0 here and every scenario's history check would pass blindly.
      expect(markers).toBeGreaterThan(0);
      expect(recorded).toMatchObject({ violations: [], deletes: markers });
      expect(recorded.deprovisionsFreed).toBeGreaterThanOrEqual(markers);

      const notFreed = JSON.parse(raw) as FixtureHistory;
      const victim = deprovisionOfFirstDelete(notFreed);
      const result = victim.completed.activityTaskCompletedEventAttributes!.result!.payloads[0]!;
      result.data = encode({ outcome: 'skipped', reason: 'row changed since listing' });
      expect(checkItemHistory('not-freed', historyFromJSON(notFreed)).violations).toEqual([
        expect.stringContaining(`deleteItem of item ${victim.itemId} (event ${victim.markerId})`),
      ]);

      const neverCompleted = JSON.parse(raw) as FixtureHistory;
      const lost = deprovisionOfFirstDelete(neverCompleted);
      neverCompleted.events = neverCompleted.events.filter((e) => e !== lost.completed);
      expect(checkItemHistory('never-completed', historyFromJSON(neverCompleted)).violations).toEqual([
        expect.stringContaining(`deleteItem of item ${lost.itemId} (event ${lost.markerId})`),
      ]);
    });
  });
});

interface FixturePayload {
  metadata?: Record<string, string>;
  data: string;
}
interface FixtureEvent {
  eventId: string;
  markerRecordedEventAttributes?: {
    markerName: string;
    details: Record<string, { payloads: FixturePayload[] }>;
  };
  activityTaskScheduledEventAttributes?: {
    activityType: { name: string };
    input: { payloads: FixturePayload[] };
  };
  activityTaskCompletedEventAttributes?: {
    scheduledEventId: string;
    result?: { payloads: FixturePayload[] };
  };
}
interface FixtureHistory {
  events: FixtureEvent[];
}

const decode = (p: FixturePayload | undefined) =>
  JSON.parse(Buffer.from(p?.data ?? '', 'base64').toString('utf8'));
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

/** In an exported history: the first deleteItem marker, and the completion of its item's deprovision. */
function deprovisionOfFirstDelete(history: FixtureHistory): {
  itemId: string;
  markerId: string;
  completed: FixtureEvent;
} {
  const marker = history.events.find(
    (e) =>
      e.markerRecordedEventAttributes?.markerName === 'core_local_activity' &&
      decode(e.markerRecordedEventAttributes.details['data']?.payloads[0]).activity_type === 'deleteItem',
  );
  const itemId = decode(marker?.markerRecordedEventAttributes?.details['result']?.payloads[0])
    .itemId as string;
  const scheduled = history.events.find(
    (e) =>
      e.activityTaskScheduledEventAttributes?.activityType.name === 'deprovision' &&
      decode(e.activityTaskScheduledEventAttributes.input.payloads[0]).item.id === itemId,
  );
  const completed = history.events.find(
    (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId === scheduled?.eventId,
  );
  if (!marker || !scheduled || !completed)
    throw new Error('fixture has no deleteItem with a completed deprovision');
  return { itemId, markerId: marker.eventId, completed };
}
