import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SeededItem, seedItems } from '../../src/dev/seed';
import type { PassSummary } from '../../src/shared/types';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { adminQuery, databaseExists, roleExists, urlForDatabase } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

const HOUR = 3_600_000;

/**
 * Teardowns that fail half-way on the real Postgres, through real passes on the real Temporal
 * server: the row is kept, no deleteItem is recorded, each pass counts the item as
 * deprovision_err, the failure is recorded in pool_reaper_item_failures, and after
 * REAPER_QUARANTINE_AFTER passes the item is quarantined and no longer listed.
 *  - 2BP01: the database is dropped, but the role still holds a privilege in another database.
 *  - FORCE blocked: a logical replication subscription lives in the item's database
 *    (max_prepared_transactions is 0 on these clusters, and wal_level is not logical, so a
 *    subscription created without connecting is the blocker that needs no restart).
 * The blockers are removed with plain SQL after each test, however it ended.
 */
describe('partial teardowns on the real Postgres, pass by pass until quarantine', () => {
  let h: ReaperHarness;
  const targets = seedTargets();
  /** Plain-SQL undo steps for this test's blockers, run before its items are cleaned up. */
  const unblock: (() => Promise<unknown>)[] = [];
  const tokens: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('partial_teardown');
  });
  afterEach(async () => {
    for (const step of unblock.splice(0)) await step();
    for (const token of tokens.splice(0)) await cleanupToken(targets, token);
    await h.db.pool.query('DELETE FROM pool_items');
    await h.db.pool.query('DELETE FROM pool_reaper_item_failures');
  });
  afterAll(async () => {
    await targets.close();
    await h?.close();
  });

  const stalePostgresItem = async (): Promise<SeededItem> => {
    const [item] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    tokens.push(item!.poolToken);
    return item!;
  };
  const rowExists = async (id: string) =>
    ((await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [id])).rowCount ?? 0) > 0;
  const deprovisionErrors = async () =>
    (await h.metrics.reapTotal.get()).values.find(
      (v) =>
        v.labels.resource_type === 'postgres' &&
        v.labels.status === 'failed' &&
        v.labels.outcome === 'deprovision_err',
    )?.value ?? 0;
  const failureRecord = async (id: string) =>
    (
      await h.db.pool.query<{ failures: number; type: string; quarantined: boolean }>(
        `SELECT failures, last_error_type AS type, quarantined_at IS NOT NULL AS quarantined
           FROM pool_reaper_item_failures WHERE item_id = $1`,
        [id],
      )
    ).rows[0];

  /**
   * Runs passes until the item is quarantined, checking after each one what must hold for a
   * needs-an-operator failure; then one more pass, which must no longer list it.
   */
  async function passesUntilQuarantine(
    item: SeededItem,
    errorType: string,
    infraAfterEachPass: { database: boolean; role: boolean },
  ): Promise<void> {
    const quarantineAfter = h.settings.quarantineAfter;
    expect(quarantineAfter).toBeGreaterThan(1);
    for (let pass = 1; pass <= quarantineAfter; pass++) {
      const countedBefore = await deprovisionErrors();
      const { summary, handle } = await h.runPass();
      const what = `pass ${pass} of ${quarantineAfter}`;

      // Counted: in the pass summary, and on instant_pool_reap_total.
      expect(summary, what).toMatchObject<Partial<PassSummary>>({
        listed: 1,
        reaped: 0,
        deprovisionErrors: 1,
        deleteErrors: 0,
        refused: 0,
      });
      expect(
        summary.errors.map((e) => [e.poolToken, e.errorType]),
        what,
      ).toEqual([[item.poolToken, errorType]]);
      expect(await deprovisionErrors(), what).toBe(countedBefore + 1);

      // Kept: the row, and what the teardown could not remove.
      expect(await rowExists(item.id), what).toBe(true);
      expect(await databaseExists(`db_${item.poolToken}`), what).toBe(infraAfterEachPass.database);
      expect(await roleExists(`usr_${item.poolToken}`), what).toBe(infraAfterEachPass.role);

      // History: one deprovision attempt (needs an operator: not retried), and no deleteItem,
      // neither as an activity nor as a local-activity marker.
      const history = await handle.fetchHistory();
      expect(deleteItemEvents(history), what).toEqual([]);
      const records = await historyOrder(handle);
      expect(
        records.filter((r) => r.activity === 'deleteItem'),
        what,
      ).toEqual([]);
      const deprovision = records.filter((r) => r.activity === 'deprovision' && r.itemId === item.id);
      expect(
        deprovision.map((r) => [r.attempts, r.failedEventId !== undefined]),
        what,
      ).toEqual([[1, true]]);

      // Recorded: one more failure of this type; quarantined exactly at the threshold.
      expect(await failureRecord(item.id), what).toEqual({
        failures: pass,
        type: errorType,
        quarantined: pass === quarantineAfter,
      });
    }

    const { summary, handle } = await h.runPass();
    expect(summary).toMatchObject({ listed: 0, deprovisionErrors: 0 });
    expect((await historyOrder(handle)).filter((r) => r.itemId === item.id)).toEqual([]);
    expect(await rowExists(item.id)).toBe(true);
    expect(await h.metrics.registry.getSingleMetricAsString('instant_pool_quarantined_items')).toContain(
      'instant_pool_quarantined_items{resource_type="postgres"} 1',
    );
  }

  it('2BP01: database dropped, role kept by a privilege in another database; row kept, then quarantined', async () => {
    const item = await stalePostgresItem();
    const scratch = `prt_scratch_${uniqueSuffix()}`;
    const role = pg.escapeIdentifier(`usr_${item.poolToken}`);
    await adminQuery(`CREATE DATABASE ${pg.escapeIdentifier(scratch)}`);
    // Dropping the scratch database also removes the privilege that keeps the role.
    unblock.push(() => adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(scratch)} WITH (FORCE)`));
    await adminQuery(`GRANT CONNECT, CREATE ON DATABASE ${pg.escapeIdentifier(scratch)} TO ${role}`);

    await passesUntilQuarantine(item, 'RoleStillReferencedError', { database: false, role: true });
    const failed = h.log
      .events('provisioner.drop.failed')
      .filter((e) => e['token'] === item.poolToken && e['action'] === 'drop_role');
    expect(failed.length).toBe(h.settings.quarantineAfter);
    expect(String(failed[0]?.['error'])).toMatch(/privileges for database/);
  });

  it('FORCE blocked by a logical replication subscription in the database; row and infra kept, then quarantined', async () => {
    const item = await stalePostgresItem();
    const subscription = pg.escapeIdentifier(`sub_${uniqueSuffix()}`);
    const inItemDatabase = async (sql: string) => {
      // The superuser still connects after the reaper's REVOKE CONNECT.
      const client = new pg.Client({
        connectionString: urlForDatabase(TEST_POSTGRES_URL, `db_${item.poolToken}`),
      });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await inItemDatabase(
      `CREATE SUBSCRIPTION ${subscription} CONNECTION 'host=127.0.0.1 dbname=postgres' PUBLICATION nothing
         WITH (connect = false)`,
    );
    unblock.push(async () => {
      if (!(await databaseExists(`db_${item.poolToken}`))) return;
      await inItemDatabase(`ALTER SUBSCRIPTION ${subscription} SET (slot_name = NONE)`);
      await inItemDatabase(`DROP SUBSCRIPTION ${subscription}`);
    });

    await passesUntilQuarantine(item, 'ForceBlockedError', { database: true, role: true });
    const failed = h.log
      .events('provisioner.drop.failed')
      .filter((e) => e['token'] === item.poolToken && e['action'] === 'drop_database');
    expect(failed.length).toBe(h.settings.quarantineAfter);
    expect(String(failed[0]?.['error'])).toMatch(/subscription/);
    // The role was never attempted: it still holds privileges on the database.
    const roleDrops = h.log
      .events('provisioner.drop')
      .filter((e) => e['token'] === item.poolToken && e['action'] === 'drop_role');
    expect(roleDrops).toEqual([]);
  });
});

/** deleteItem in a raw history: a scheduled activity of that type, or a local-activity marker naming it. */
function deleteItemEvents(history: temporal.api.history.v1.IHistory): number[] {
  const found: number[] = [];
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes?.activityType?.name;
    const markerData = event.markerRecordedEventAttributes?.details?.['data']?.payloads?.[0];
    const markerType = markerData
      ? (defaultPayloadConverter.fromPayload(markerData) as { activity_type?: string }).activity_type
      : undefined;
    if (scheduled === 'deleteItem' || markerType === 'deleteItem') found.push(Number(event.eventId));
  }
  return found;
}
