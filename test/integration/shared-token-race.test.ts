import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { historyOrder } from '../helpers/history';
import { databaseExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { cleanupTokens } from '../helpers/reliability-fixtures';

const HOUR = 3_600_000;

/**
 * Issue 13, item 12: pool_items has no unique pool token, and nothing the reaper may touch
 * can stop the provisioner from inserting a live row with the token of a failed item whose
 * teardown is running. The reaper looks again under the row lock once the teardown is done:
 * a live row that appeared meanwhile keeps the failed row, refuses the item and quarantines it.
 */
describe('a live row with the same token inserted during the teardown (real Temporal, Postgres)', () => {
  let h: ReaperHarness;
  /** Tokens whose teardown gets a racing `ready` row inserted just before it runs. */
  const racing = new Set<string>();
  const racedRows = new Map<string, string>();
  const seededTokens: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('token_race', {
      teardown: (real) => ({
        preflight: (item, options) => real.preflight(item, options),
        teardown: async (item, options) => {
          if (racing.delete(item.poolToken)) {
            // The provisioner's insert, committed on its own connection while the reaper
            // holds the failed row's lock: plain SQL, as the provisioner writes it.
            const { rows } = await h.db.pool.query<{ id: string }>(
              `INSERT INTO pool_items (resource_type, connection_url, provider_resource_id, database_name,
                                       username, key_prefix, pool_token, status, created_at)
               VALUES ($1, 'postgres://provisioner-race@127.0.0.1/x', $2, $3, $4, '', $5, 'ready', now())
               RETURNING id`,
              [
                item.resourceType,
                item.providerResourceId,
                `db_${item.poolToken}`,
                `usr_${item.poolToken}`,
                item.poolToken,
              ],
            );
            racedRows.set(item.poolToken, rows[0]!.id);
          }
          return real.teardown(item, options);
        },
      }),
    });
  });
  afterAll(async () => {
    await h?.close();
    await cleanupTokens(seededTokens);
  });

  const rowStatus = async (id: string) =>
    (await h.db.pool.query<{ status: string }>('SELECT status FROM pool_items WHERE id = $1', [id])).rows[0]
      ?.status;
  const counter = async (outcome: string) =>
    (await h.metrics.reapTotal.get()).values.find(
      (v) =>
        v.labels.outcome === outcome && v.labels.resource_type === 'postgres' && v.labels.status === 'failed',
    )?.value ?? 0;

  it('keeps the failed row, refuses the item as SharedPoolTokenError and quarantines it; the other item is reaped', async () => {
    const [raced, control] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 2,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    seededTokens.push(raced!.poolToken, control!.poolToken);
    racing.add(raced!.poolToken);
    const refusedBefore = await counter('refused');

    const { summary, handle } = await h.runPass();

    expect(racedRows.has(raced!.poolToken)).toBe(true);
    expect(summary).toMatchObject({
      listed: 2,
      reaped: 1,
      refused: 1,
      deprovisionErrors: 0,
      deleteErrors: 0,
    });
    expect(summary.errors).toEqual([
      expect.objectContaining({
        id: raced!.id,
        poolToken: raced!.poolToken,
        outcome: 'refused',
        errorType: 'SharedPoolTokenError',
      }),
    ]);
    expect(summary.errors[0]?.message).toMatch(/while its teardown ran/);
    expect(await counter('refused')).toBe(refusedBefore + 1);

    // The failed row stays (the reaper never deletes it), and so does the live one.
    expect(await rowStatus(raced!.id)).toBe('failed');
    expect(await rowStatus(racedRows.get(raced!.poolToken)!)).toBe('ready');
    const history = await historyOrder(handle);
    expect(history.filter((r) => r.activity === 'deleteItem').map((r) => r.poolToken)).toEqual([
      control!.poolToken,
    ]);
    expect(await rowStatus(control!.id)).toBeUndefined();
    expect(await databaseExists(control!.item.databaseName)).toBe(false);

    // Recorded for an operator, and quarantined at once: the teardown may have dropped infra
    // that the live row's item was given, so no later pass may try again on its own.
    const failures = await h.store.listFailures();
    expect(failures).toEqual([
      expect.objectContaining({
        itemId: raced!.id,
        lastErrorType: 'SharedPoolTokenError',
        failures: 1,
        rowExists: true,
      }),
    ]);
    expect(failures[0]?.quarantinedAt).not.toBeNull();
    const raceLines = h.log.events('pool_reaper.shared_token.raced');
    expect(raceLines).toEqual([
      expect.objectContaining({ level: 'error', poolToken: raced!.poolToken, itemId: raced!.id }),
    ]);

    // Later passes leave it alone until an operator has looked.
    const next = (await h.runPass()).summary;
    expect(next.listed).toBe(0);
    expect(await rowStatus(raced!.id)).toBe('failed');
  });
});
