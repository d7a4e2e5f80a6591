import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { seedItems } from '../../src/dev/seed';
import { configureSignal, type TickerSettings } from '../../src/shared/messages';
import { poolReaper } from '../../workflows/pool-reaper';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { cleanupTokens } from '../helpers/reliability-fixtures';
import { insertRow } from '../helpers/rows';
import { waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * Issue 13, item 8: malformed or partial input never makes a pass skip silently. Real
 * Temporal, real Postgres: a `configure` signal with a broken payload, and failed rows that
 * the provisioner left without an assigned_at.
 */
describe('malformed input never makes a pass skip silently', () => {
  let h: ReaperHarness;
  let ticker: WorkflowHandle | undefined;
  const seededTokens: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('malformed');
  });
  afterEach(async () => {
    await ticker?.terminate('test over').catch(() => undefined);
    ticker = undefined;
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
    await cleanupTokens(seededTokens);
  });

  const rowExists = async (id: string) =>
    ((await h.db.pool.query('SELECT 1 FROM pool_items WHERE id = $1', [id])).rowCount ?? 0) > 0;

  it('ignores a configure signal whose payload is malformed: the ticker keeps its settings and a forced pass still reaps', async () => {
    const settings: TickerSettings = { tickMs: HOUR, pass: TEST_PASS_OPTIONS };
    const workflowId = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
    ticker = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId,
      args: [{ settings }],
    });
    const reaper = new ReaperClient(h.temporal.client, workflowId);
    await waitFor(
      () => reaper.status(),
      (s) => s.nextTickAt !== undefined,
      { what: 'the ticker to wait for its first tick' },
    );

    // What a hand-typed `temporal workflow signal --name configure` or an older client may send.
    const malformed: unknown[] = [
      { tickMs: 1_000, pass: { recordReapedTokens: true } }, // no pass.concurrency: zero lanes
      { tickMs: 1_000, pass: { concurrency: 0 } },
      { tickMs: '30s', pass: TEST_PASS_OPTIONS }, // a string tick
      { tickMs: 1_000 }, // no pass at all
      null,
      // Finite, but the next tick's time is past what a Date holds: every workflow task failed.
      { tickMs: 1e20, pass: TEST_PASS_OPTIONS },
      // Held to the same bound (365 days) as the tick and REAPER_PASS_TIMEOUT.
      { tickMs: HOUR, passTimeoutMs: 1e20, pass: TEST_PASS_OPTIONS },
      // The retry policy and activity timeouts of each item (issue: leftovers, item 1).
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, deprovisionRetry: { maximumAttempts: 0 } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, deprovisionRetry: { initialIntervalMs: -1 } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, deprovisionRetry: { maxAttempts: 3 } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, deprovisionRetry: { initialIntervalMs: 60_000 } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, activityTimeouts: { deprovisionHeartbeatMs: 100 } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, activityTimeouts: { deleteStartToCloseMs: '5s' } } },
      { tickMs: 1_000, pass: { ...TEST_PASS_OPTIONS, activityTimeouts: 'fast' } },
    ];
    for (const payload of malformed) {
      await ticker.signal(configureSignal, payload as TickerSettings);
      // A query is answered after every signal before it: the status reflects this one.
      const status = await reaper.status();
      expect(status.settings, JSON.stringify(payload)).toEqual(settings);
    }

    const row = await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
    const summary = await reaper.reapNowAndWait({ requestedBy: 'test' });
    expect(summary).toMatchObject({ listed: 1, reaped: 1, deprovisionErrors: 0 });
    expect(await rowExists(row.id)).toBe(false);
    // The tick is still an hour away: the malformed tick of 1 s was not applied either.
    const after = await reaper.status();
    expect(after.settings).toEqual(settings);
    expect(Date.parse(after.nextTickAt!) - Date.now()).toBeGreaterThan(HOUR - MINUTE);
  });

  it('reaps a failed row without an assigned_at once its created_at is past the grace, and leaves a fresh one', async () => {
    const [old, fresh] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 2,
      resourceType: 'postgres',
      status: 'failed',
    });
    seededTokens.push(old!.poolToken, fresh!.poolToken);
    // A provisioner bug or a hand edit: failed, but no assigned_at.
    await h.db.pool.query(
      `UPDATE pool_items SET assigned_at = NULL,
              created_at = now() - make_interval(secs => $2::float8 / 1000)
        WHERE id = $1`,
      [old!.id, 2 * HOUR],
    );
    await h.db.pool.query(
      `UPDATE pool_items SET assigned_at = NULL, created_at = now() - interval '1 minute' WHERE id = $1`,
      [fresh!.id],
    );
    expect(h.settings.failedGraceMs).toBeGreaterThan(MINUTE);

    const { summary } = await h.runPass();

    expect(summary).toMatchObject({ listed: 1, reaped: 1, deprovisionErrors: 0, refused: 0, skipped: 0 });
    expect(await rowExists(old!.id)).toBe(false);
    expect(await databaseExists(old!.item.databaseName)).toBe(false);
    expect(await roleExists(old!.item.username)).toBe(false);
    // Inside the grace by its created_at: untouched.
    expect(await rowExists(fresh!.id)).toBe(true);
    expect(await databaseExists(fresh!.item.databaseName)).toBe(true);
    // The backlog gauge sees the same rule as the listing.
    const backlog = await h.store.backlog(h.settings.failedGraceMs);
    expect(backlog.reduce((n, b) => n + b.items, 0)).toBe(0);
  });
});
