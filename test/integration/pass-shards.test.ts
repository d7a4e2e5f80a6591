import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { type SeededItem, seedItems } from '../../src/dev/seed';
import { configureSignal } from '../../src/shared/messages';
import { shardWorkflowId } from '../../src/shared/shards';
import type { PassSummary } from '../../src/shared/types';
import { shardOf } from '../../src/store/shard-rule';
import { poolReaper } from '../../workflows/pool-reaper';
import { TEST_POSTGRES_URL, TEST_POSTGRES_URL_2, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { activityRecords } from '../helpers/history';
import { dropTokenInfra } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { cleanupTokens } from '../helpers/reliability-fixtures';
import { insertRow } from '../helpers/rows';
import { workflowBundle } from '../helpers/temporal';
import { Gate, waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/histories');

/** Cluster ids chosen so that, with 2 shards, each shard owns one Postgres cluster. */
const PG_A = 'local:0'; // 5432, shard 0
const PG_B = 'local:3'; // 5433, shard 1
const REDIS = 'local:0'; // 6379, shard 1

async function databasesOn(url: string, tokens: readonly string[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_database WHERE datname = ANY($1::text[])`,
      [tokens.map((t) => `db_${t}`)],
    );
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/**
 * Issue 18 item 4: REAPER_PASS_SHARDS=2 on real Temporal, two real Postgres clusters (5432,
 * 5433) and Redis. One tick runs two shard passes; each lists only its clusters; every item is
 * torn down exactly once; the stuck-assigned report runs once; a terminated shard is recorded
 * as a failed pass, stops neither the other shard nor the ticker, and the next tick reaps it.
 */
describe('shard passes (REAPER_PASS_SHARDS=2)', () => {
  let h: ReaperHarness;
  const gate = new Gate();
  const gatedCluster = { resourceType: 'postgres', cluster: PG_B };
  let gating = false;
  const seededA: string[] = [];
  const seededB: string[] = [];
  const tickers: WorkflowHandle[] = [];

  beforeAll(async () => {
    h = await createReaperHarness('pass_shards', {
      postgresClusters: new Map([
        [PG_A, TEST_POSTGRES_URL],
        [PG_B, TEST_POSTGRES_URL_2],
      ]),
      redisClusters: new Map([[REDIS, TEST_REDIS_URL]]),
      teardown: (real) => ({
        ...real,
        async teardown(item, options) {
          const cluster = item.providerResourceId.split(';')[0];
          if (gating && item.resourceType === gatedCluster.resourceType && cluster === gatedCluster.cluster) {
            await gate.pass();
          }
          return real.teardown(item, options);
        },
      }),
    });
  });
  afterEach(async () => {
    gate.open();
    gating = false;
    for (const t of tickers.splice(0)) await t.terminate('test done').catch(() => undefined);
    await h.db.pool.query('DELETE FROM pool_items');
  });
  afterAll(async () => {
    await h?.close();
    await cleanupTokens(seededA);
    await dropTokenInfra(TEST_POSTGRES_URL_2, seededB);
  });

  const seed = async (
    resourceType: 'postgres' | 'redis',
    cluster: string,
    adminUrl: string,
    count: number,
  ): Promise<SeededItem[]> => {
    const items = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl,
      redisUrl: TEST_REDIS_URL,
      count,
      resourceType,
      status: 'failed',
      ageMs: HOUR,
      providerResourceId: cluster,
    });
    (adminUrl === TEST_POSTGRES_URL_2 ? seededB : seededA).push(...items.map((i) => i.poolToken));
    return items;
  };

  const startTicker = async (
    passShards = 2,
  ): Promise<{ handle: WorkflowHandle; reaper: ReaperClient; id: string }> => {
    const id = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
    const handle = await h.temporal.client.workflow.start(poolReaper, {
      taskQueue: h.taskQueue,
      workflowId: id,
      args: [{ settings: { tickMs: HOUR, passShards, pass: TEST_PASS_OPTIONS } }],
    });
    tickers.push(handle);
    return { handle, reaper: new ReaperClient(h.temporal.client, id), id };
  };

  const rowsLeft = async (ids: readonly string[]) =>
    Number(
      (await h.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM pool_items WHERE id = ANY($1)', [ids]))
        .rows[0]?.n,
    );

  it('the test clusters map to different shards (else this file tests nothing)', () => {
    expect(shardOf('postgres', PG_A, 2)).toBe(0);
    expect(shardOf('postgres', PG_B, 2)).toBe(1);
    expect(shardOf('redis', REDIS, 2)).toBe(1);
  });

  it('one tick reaps both clusters in two shard passes, each item once, each shard only its clusters, the stuck report once', async () => {
    const a = await seed('postgres', PG_A, TEST_POSTGRES_URL, 3);
    const b = await seed('postgres', PG_B, TEST_POSTGRES_URL_2, 3);
    const r = await seed('redis', REDIS, TEST_POSTGRES_URL, 2);
    // A stuck assigned row: the report counts it, once.
    await insertRow(h.db.pool, { resourceType: 'queue', status: 'assigned', ageMs: 2 * HOUR });
    const { handle, reaper, id } = await startTicker();

    const summary: PassSummary = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
    expect(summary.reaped).toBe(8);
    expect(summary.listed).toBe(8);
    expect(summary.shards?.map((s) => s.reaped).sort()).toEqual([3, 5]);
    expect(summary.stuckAssigned['queue']).toBe(1);
    expect(await rowsLeft([...a, ...b, ...r].map((i) => i.id))).toBe(0);
    expect(
      await databasesOn(
        TEST_POSTGRES_URL,
        a.map((i) => i.poolToken),
      ),
    ).toBe(0);
    expect(
      await databasesOn(
        TEST_POSTGRES_URL_2,
        b.map((i) => i.poolToken),
      ),
    ).toBe(0);

    const passId = summary.passId;
    const shardIds = [0, 1].map((index) => shardWorkflowId(passId, { index, count: 2 }));
    expect(summary.shards?.map((s) => s.passId)).toEqual(shardIds);
    const owned = [new Set(a.map((i) => i.id)), new Set([...b, ...r].map((i) => i.id))];
    const deprovisioned: string[] = [];
    let reports = 0;
    for (const [index, shardId] of shardIds.entries()) {
      const history = await h.temporal.client.workflow.getHandle(shardId).fetchHistory();
      const records = activityRecords(history);
      reports += records.filter((x) => x.activity === 'reportStuckAssigned').length;
      const items = records.filter((x) => x.activity === 'deprovision').map((x) => x.itemId!);
      for (const item of items) expect(owned[index]!.has(item), `${item} in shard ${index}`).toBe(true);
      expect(items.length).toBe(owned[index]!.size);
      deprovisioned.push(...items);
    }
    expect(new Set(deprovisioned).size).toBe(deprovisioned.length);
    expect(deprovisioned.length).toBe(8);
    expect(reports).toBe(1);

    const status = await reaper.status();
    expect(status.passesRun).toBe(1);
    expect(status.passesFailed).toBe(0);

    // The fixture of a sharded ticker (and of a shard pass without the report) for replay.test.ts.
    const tickerHistory = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, tickerHistory, id);
    if (process.env['RECORD_HISTORIES']) {
      await handle.terminate('recorded');
      const recorded = { 'pool-reaper-ticker-sharded': id, 'reap-pass-shard': shardIds[1]! };
      for (const [name, wid] of Object.entries(recorded)) {
        const json = execFileSync(inject('temporalCliPath'), [
          'workflow',
          'show',
          '--address',
          h.temporal.address,
          '--workflow-id',
          wid,
          '--output',
          'json',
        ]);
        writeFileSync(path.join(FIXTURES, `${name}.json`), json);
      }
      const idsFile = path.join(FIXTURES, 'workflow-ids.json');
      const kept = JSON.parse(readFileSync(idsFile, 'utf8')) as Record<string, string>;
      writeFileSync(idsFile, `${JSON.stringify({ ...kept, ...recorded }, null, 2)}\n`);
    }
  });

  it('a terminated shard is recorded as a failed pass, the other shard and the ticker go on, the next tick reaps its items', async () => {
    const a = await seed('postgres', PG_A, TEST_POSTGRES_URL, 2);
    const b = await seed('postgres', PG_B, TEST_POSTGRES_URL_2, 2);
    gating = true;
    gate.close();
    const { reaper } = await startTicker();
    await reaper.reapNow({ requestedBy: 'pass-shards-test' });
    const running = await waitFor(
      () => reaper.status(),
      (s) => s.currentPassId !== undefined && gate.waiting > 0,
      { what: 'shard 1 to hold a teardown of cluster B' },
    );
    const shard1 = shardWorkflowId(running.currentPassId!, { index: 1, count: 2 });
    await h.temporal.client.workflow.getHandle(shard1).terminate('operator ends a stuck shard');
    const after = await waitFor(
      () => reaper.status(),
      (s) => s.passesRun === 1,
      { what: 'the tick to end' },
    );
    expect(after.passesFailed).toBe(1);
    expect(after.lastFailure?.passId).toBe(shard1);
    expect(after.lastFailure?.reason).toBe('terminated');
    expect(after.lastSummary?.reaped).toBe(2);
    expect(after.lastSummary?.shards?.[1]?.failure).toBe('terminated');
    expect(await rowsLeft(a.map((i) => i.id))).toBe(0);
    expect(await rowsLeft(b.map((i) => i.id))).toBe(2);

    // The held teardowns end (their rows stay: their pass is gone; one may still hold its row
    // lock for a moment, and a locked row is skipped): the next ticks reap shard 1's items.
    gate.open();
    let reapedLater = 0;
    let shard0Later = 0;
    for (let tick = 0; tick < 5 && (await rowsLeft(b.map((i) => i.id))) > 0; tick++) {
      const next = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
      reapedLater += next.reaped;
      shard0Later += next.shards?.[0]?.reaped ?? 0;
    }
    expect(reapedLater).toBe(2);
    expect(shard0Later).toBe(0);
    expect(await rowsLeft(b.map((i) => i.id))).toBe(0);
    expect(
      await databasesOn(
        TEST_POSTGRES_URL_2,
        b.map((i) => i.poolToken),
      ),
    ).toBe(0);
    const status = await reaper.status();
    expect(status.passesFailed).toBe(1);
    expect(status.consecutiveFailures).toBe(0);
  });

  it('the shard count changes at run time through configure (1, then 2 in dry run, then 2, then 1), and the history replays', async () => {
    const { handle, reaper, id } = await startTicker(1);
    const a1 = await seed('postgres', PG_A, TEST_POSTGRES_URL, 1);
    const b1 = await seed('postgres', PG_B, TEST_POSTGRES_URL_2, 1);
    const one = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
    expect(one.shards).toBeUndefined();
    expect(one.reaped).toBe(2);

    // A restarted worker with REAPER_PASS_SHARDS=2 and REAPER_DRY_RUN=true sends this signal.
    const configure = (passShards: number, dryRun: boolean) =>
      handle.signal(configureSignal, {
        tickMs: HOUR,
        ...(passShards > 1 ? { passShards } : {}),
        pass: { ...TEST_PASS_OPTIONS, ...(dryRun ? { dryRun } : {}) },
      });
    const a2 = await seed('postgres', PG_A, TEST_POSTGRES_URL, 2);
    const b2 = await seed('postgres', PG_B, TEST_POSTGRES_URL_2, 1);
    await configure(2, true);
    const dry = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
    expect(dry.shards?.map((s) => s.passId)).toEqual(
      [0, 1].map((index) => shardWorkflowId(dry.passId, { index, count: 2 })),
    );
    expect(dry.dryRun?.reap).toBe(3);
    expect(dry.reaped).toBe(0);
    expect(await rowsLeft([...a2, ...b2].map((i) => i.id))).toBe(3);
    expect(
      await databasesOn(
        TEST_POSTGRES_URL_2,
        b2.map((i) => i.poolToken),
      ),
    ).toBe(1);

    await configure(2, false);
    const two = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
    expect(two.shards?.map((s) => s.reaped).sort()).toEqual([1, 2]);
    expect(await rowsLeft([...a2, ...b2].map((i) => i.id))).toBe(0);
    expect(
      await databasesOn(
        TEST_POSTGRES_URL_2,
        b2.map((i) => i.poolToken),
      ),
    ).toBe(0);

    const a3 = await seed('postgres', PG_A, TEST_POSTGRES_URL, 1);
    const b3 = await seed('postgres', PG_B, TEST_POSTGRES_URL_2, 1);
    await configure(1, false);
    const back = await reaper.reapNowAndWait({ requestedBy: 'pass-shards-test' });
    expect(back.shards).toBeUndefined();
    expect(back.reaped).toBe(2);
    expect(await rowsLeft([...a1, ...b1, ...a3, ...b3].map((i) => i.id))).toBe(0);
    expect((await reaper.status()).passesRun).toBe(4);

    // The patch marker first appears mid-history, where the shards began; replay agrees.
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, await handle.fetchHistory(), id);
  });
});
