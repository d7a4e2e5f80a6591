import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import { createCanaries, dropEventsFrom, InvariantChecker, type OwnedCanaries } from '../helpers/invariants';
import { createPrng, seedFor } from '../helpers/prng';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { FAILED_GRACE_MS, HOUR, MINUTE, sleep } from '../helpers/reliability-fixtures';
import { recordFigures } from '../helpers/results';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';

/**
 * The provisioner moves rows while a pass runs. A second connection (application_name
 * 'test-provisioner') reclaims failed rows to ready or assigned, re-marks them with a new
 * assigned_at, and inserts new failed rows: before the reaper takes the row lock, while it
 * holds it (the provisioner's UPDATE waits and lands after the teardown's COMMIT, before the
 * conditional delete), and at random moments. The row lock's re-check and the conditional
 * delete must keep both invariants whatever the interleaving.
 */
type Hook = (phase: 'before' | 'after') => Promise<void> | void;

describe('races with the provisioner', () => {
  let h: ReaperHarness;
  let provisioner: pg.Pool;
  let canaries: OwnedCanaries;
  const targets = seedTargets();
  const hooks = new Map<string, Hook>();
  const tokens: string[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('rel_races', {
      settings: { quarantineAfter: 100 },
      teardown: (real) => ({
        preflight: (item) => real.preflight(item),
        teardown: async (item, options) => {
          await hooks.get(item.poolToken)?.('before');
          const result = await real.teardown(item, options);
          await hooks.get(item.poolToken)?.('after');
          return result;
        },
      }),
    });
    provisioner = new pg.Pool({ connectionString: h.db.url, max: 4, application_name: 'test-provisioner' });
    canaries = await createCanaries();
  });

  afterEach(() => {
    hooks.clear();
  });
  afterAll(async () => {
    await provisioner?.end();
    for (const token of tokens) await cleanupToken(targets, token).catch(() => undefined);
    await targets.close();
    await canaries?.cleanup();
    await h?.close();
  });

  const provision = async (resourceType: 'postgres' | 'redis' | 'queue', ageMs: number) => {
    const token = newPoolToken();
    tokens.push(token);
    const item = await provisionItem(targets, { resourceType, token });
    return insertRoleRow(item, ageMs);
  };
  const insertRoleRow = async (item: Awaited<ReturnType<typeof provisionItem>>, ageMs: number) => {
    const ref = await insertRow(h.db.pool, {
      resourceType: item.resourceType,
      status: 'failed',
      ageMs,
      poolToken: item.poolToken,
    });
    return ref;
  };
  const row = async (id: string) =>
    (
      await h.db.pool.query<{ status: string; fresh: boolean }>(
        `SELECT status, assigned_at > now() - interval '1 minute' AS fresh FROM pool_items WHERE id = $1`,
        [id],
      )
    ).rows[0];
  const reclaim = (id: string, status: 'ready' | 'assigned') =>
    provisioner.query(
      `UPDATE pool_items SET status = $2, assigned_at = CASE WHEN $2 = 'ready' THEN NULL ELSE now() END
        WHERE id = $1 AND status = 'failed'`,
      [id, status],
    );
  const remark = (id: string) =>
    provisioner.query(`UPDATE pool_items SET assigned_at = now() WHERE id = $1 AND status = 'failed'`, [id]);

  it('keeps (A) and (B) when rows move before, during and after the row lock', async () => {
    const startedAt = Date.now();
    const t1 = await provision('postgres', 5 * HOUR);
    const t2 = await provision('redis', 4 * HOUR);
    const t3 = await provision('postgres', 3.9 * HOUR);
    const t4 = await provision('redis', 3.8 * HOUR);
    const t5 = await provision('postgres', 3.7 * HOUR);
    const t6 = await provision('redis', 3.6 * HOUR);
    const t7 = await provision('queue', 3.5 * HOUR);
    const t8 = await provision('postgres', 3.4 * HOUR);
    const checker = new InvariantChecker({ pool: h.db.pool, failedGraceMs: FAILED_GRACE_MS, canaries });
    await checker.snapshot();

    let newRow: { id: string; poolToken: string } | undefined;
    let blockedReclaim: Promise<unknown> | undefined;
    let blockedRemark: Promise<unknown> | undefined;
    // Before the lock: while the first item is torn down, the provisioner moves the next ones.
    hooks.set(t1.poolToken, async (phase) => {
      if (phase !== 'before') return;
      await reclaim(t2.id, 'ready');
      await remark(t3.id);
      await reclaim(t4.id, 'assigned');
      // A status-only move (assigned_at kept, so still "old"): only the status re-check stops it.
      await provisioner.query(`UPDATE pool_items SET status = 'assigned' WHERE id = $1`, [t8.id]);
      const token = newPoolToken();
      tokens.push(token);
      newRow = await insertRoleRow(await provisionItem(targets, { resourceType: 'redis', token }), 6 * HOUR);
    });
    // During the lock: the UPDATE waits for the teardown's COMMIT, then lands before the delete.
    hooks.set(t5.poolToken, (phase) => {
      if (phase === 'before') blockedReclaim = reclaim(t5.id, 'ready');
    });
    hooks.set(t6.poolToken, (phase) => {
      if (phase === 'after') blockedRemark = remark(t6.id);
    });

    const { summary } = await h.runPass({ concurrency: 1 });
    await Promise.all([blockedReclaim, blockedRemark]);
    await checker.trackNewObjects();
    expect(summary).toMatchObject({
      listed: 8,
      reaped: 3,
      skipped: 5,
      deprovisionErrors: 0,
      deleteErrors: 0,
    });

    // Moved before the lock: skipped, untouched.
    expect(await row(t2.id)).toEqual({ status: 'ready', fresh: null });
    expect(await row(t3.id)).toEqual({ status: 'failed', fresh: true });
    expect(await row(t4.id)).toEqual({ status: 'assigned', fresh: true });
    expect(await row(t8.id)).toEqual({ status: 'assigned', fresh: false });
    for (const item of [t2, t3, t4, t8])
      expect((await checker.infraOf(item.poolToken)).length).toBeGreaterThan(0);
    // Reclaimed while locked: the teardown finished, the conditional delete kept the now-ready row.
    expect(await row(t5.id)).toEqual({ status: 'ready', fresh: null });
    expect(await checker.infraOf(t5.poolToken)).toEqual([]);
    // Re-marked while locked: still failed, so the conditional delete removed it (infra already gone).
    expect(await row(t6.id)).toBeUndefined();
    // The new failed row appeared after the listing: the next pass takes it.
    expect(await row(newRow!.id)).toEqual({ status: 'failed', fresh: false });
    const second = await h.runPass({ concurrency: 1 });
    expect(second.summary).toMatchObject({ listed: 1, reaped: 1 });
    expect(await row(newRow!.id)).toBeUndefined();
    expect(await row(t7.id)).toBeUndefined();

    const report = await checker.check({
      dropEvents: dropEventsFrom(h.log.lines),
      temporal: { client: h.temporal.client, taskQueue: h.taskQueue },
    });
    expect(report.violations).toEqual([]);
    // t1, t6, t7 in the first pass, the new row in the second: deleted, and seen deleted in history.
    expect(report.rowsDeleted).toBe(4);
    expect(report.history?.deletes).toBeGreaterThanOrEqual(4);
    // The checker saw the reclaimed-after-teardown row for what it is (allowed, and reported).
    expect(report.notes).toEqual([expect.stringContaining(`row ${t5.id} is ready`)]);
    recordFigures({
      scenario: 'races (scripted)',
      runs: 2,
      // The rows this test created (the 8 listed, and the one inserted mid-pass).
      items: [t1, t2, t3, t4, t5, t6, t7, t8, newRow].filter((r) => r !== undefined).length,
      faults: '4 moves before the lock, 2 moves waiting on the lock, 1 insert mid-pass',
      wrongfulDrops: report.wrongfulDrops,
      leaks: report.leaks,
      rowsLost: report.rowsLost,
      durationMs: Date.now() - startedAt,
      notes: report.notes,
    });
  }, 120_000);

  it('keeps (A) and (B) under a random storm of provisioner moves during passes', async () => {
    const startedAt = Date.now();
    const rng = createPrng(seedFor('races-storm'));
    await h.db.pool.query('DELETE FROM pool_items');
    const ids: string[] = [];
    const plan: ('postgres' | 'redis' | 'queue')[] = [
      ...Array<'postgres'>(8).fill('postgres'),
      ...Array<'redis'>(10).fill('redis'),
      ...Array<'queue'>(6).fill('queue'),
    ];
    for (const [n, type] of rng.shuffle(plan).entries())
      ids.push((await provision(type, 2 * HOUR + n * MINUTE)).id);
    const checker = new InvariantChecker({ pool: h.db.pool, failedGraceMs: FAILED_GRACE_MS, canaries });
    await checker.snapshot();

    const moves: string[] = [];
    let storming = true;
    const storm = (async () => {
      while (storming && moves.length < 80) {
        await sleep(rng.int(1, 12));
        const id = rng.pick(ids);
        const kind = rng.pick(['ready', 'assigned', 'status-only', 'remark', 'insert', 'claim'] as const);
        try {
          if (kind === 'ready' || kind === 'assigned') await reclaim(id, kind);
          else if (kind === 'remark') await remark(id);
          else if (kind === 'status-only') {
            await provisioner.query(
              `UPDATE pool_items SET status = 'assigned' WHERE id = $1 AND status = 'failed'`,
              [id],
            );
          } else if (kind === 'claim') {
            await provisioner.query(
              `UPDATE pool_items SET status = 'assigned', assigned_at = now()
                WHERE id = (SELECT id FROM pool_items WHERE status = 'ready' LIMIT 1 FOR UPDATE SKIP LOCKED)`,
            );
          } else {
            ids.push(
              (await insertRow(provisioner, { resourceType: 'queue', status: 'failed', ageMs: 3 * HOUR })).id,
            );
          }
          moves.push(kind);
        } catch (err) {
          moves.push(`${kind} failed: ${(err as Error).message}`);
        }
      }
    })();
    const first = await h.runPass({ concurrency: 4 });
    const second = await h.runPass({ concurrency: 4 });
    storming = false;
    await storm;
    const third = await h.runPass({ concurrency: 4 });

    const report = await checker.check({
      dropEvents: dropEventsFrom(h.log.lines),
      temporal: { client: h.temporal.client, taskQueue: h.taskQueue },
    });
    recordFigures({
      scenario: 'races (random storm)',
      runs: 3,
      items: ids.length,
      faults: `${moves.length} provisioner moves during 2 passes`,
      wrongfulDrops: report.wrongfulDrops,
      leaks: report.leaks,
      rowsLost: report.rowsLost,
      durationMs: Date.now() - startedAt,
      reaped: first.summary.reaped + second.summary.reaped + third.summary.reaped,
      skipped: first.summary.skipped + second.summary.skipped + third.summary.skipped,
      reclaimedAfterTeardown: report.notes.length,
    });
    expect(moves.filter((m) => m.includes('failed'))).toEqual([]);
    expect(moves.length).toBeGreaterThanOrEqual(10);
    expect(report.violations).toEqual([]);
    expect(report.staleFailedLeft).toEqual([]);
    expect(report.rowsDeleted).toBeGreaterThan(0);
    expect(report.history?.deletes).toBeGreaterThanOrEqual(report.rowsDeleted);
  }, 120_000);
});
