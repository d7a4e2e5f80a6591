import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedItems } from '../../src/dev/seed';
import { explain } from '../../src/plan/explain';
import { PlanStore } from '../../src/plan/plan-store';
import { DEFAULT_CLUSTER } from '../../src/shared/clusters';
import { REAP_OUTCOME_KEY, REAPED_COUNT_KEY } from '../../src/shared/search-attributes';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from '../helpers/env';
import { activityRecords } from '../helpers/history';
import { databaseExists, roleExists } from '../helpers/postgres';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { aclUserExists, keysMatching, testRedis } from '../helpers/redis';
import { insertRow } from '../helpers/rows';
import { cleanupToken, seedTargets } from '../helpers/teardown-fixtures';
import { workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/histories');

/**
 * REAPER_DRY_RUN on real Temporal, Postgres and Redis: a dry-run pass plans every listed item
 * in an activity named after it and touches nothing; a real pass then reaps; the outcome
 * search attributes find the pass that reaped among the others; `explain` names it.
 */
describe('dry-run passes, pass outcomes and explain', () => {
  let h: ReaperHarness;
  let registry: TeardownRegistry;
  const redis = testRedis();
  const targets = seedTargets();
  const provisioned: string[] = [];
  let pgItem: { id: string; poolToken: string };
  let redisItem: { id: string; poolToken: string };
  let refused: { id: string; poolToken: string };
  let dryPassId: string;

  const seed = async (resourceType: 'postgres' | 'redis') => {
    const [item] = await seedItems({
      provisionerPool: h.db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 1,
      resourceType,
      status: 'failed',
      ageMs: HOUR,
    });
    provisioned.push(item!.poolToken);
    return item!;
  };

  beforeAll(async () => {
    h = await createReaperHarness('dry_run');
    registry = createTeardownRegistry({
      postgresClusters: new Map([[DEFAULT_CLUSTER, TEST_POSTGRES_URL]]),
      redisClusters: new Map([[DEFAULT_CLUSTER, TEST_REDIS_URL]]),
      concurrency: 1,
      log: h.log.logger,
    });
    pgItem = await seed('postgres');
    redisItem = await seed('redis');
    refused = await insertRow(h.db.pool, {
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
      poolToken: 'root',
    });
  });
  afterAll(async () => {
    for (const token of provisioned) await cleanupToken(targets, token);
    await registry?.close();
    await h?.close();
    await targets.close();
    redis.disconnect();
  });

  const explainDeps = () => ({
    store: h.store,
    plans: new PlanStore(h.db.pool),
    teardown: registry,
    failedGraceMs: h.settings.failedGraceMs,
    batchLimit: h.settings.batchLimit,
    temporal: { client: h.temporal.client, namespace: 'default', uiUrl: 'http://localhost:8233' },
  });
  const planned = async (type: string) =>
    (await h.metrics.reapTotal.get()).values.find(
      (v) =>
        v.labels.outcome === 'planned' && v.labels.resource_type === type && v.labels.status === 'failed',
    )?.value ?? 0;

  it('a dry-run pass records each item’s verdict in an activity named after it, and drops nothing', async () => {
    const rowsBefore = (await h.db.pool.query('SELECT id FROM pool_items ORDER BY id')).rows;
    const { summary, handle } = await h.runPass({ dryRun: true });
    dryPassId = handle.workflowId;

    expect(summary).toMatchObject({
      listed: 3,
      reaped: 0,
      refused: 0,
      deprovisionErrors: 0,
      deleteErrors: 0,
      outcome: 'dry_run',
      dryRun: { reap: 2, refuse: 1, skip: 0, failed: 0 },
    });
    expect(summary.outcomes).toEqual(
      expect.arrayContaining([
        { resourceType: 'postgres', outcome: 'planned', count: 2 },
        { resourceType: 'redis', outcome: 'planned', count: 1 },
      ]),
    );
    expect(await planned('postgres')).toBe(2);

    // Nothing dropped, no row deleted, no failure recorded (the refused item is not counted towards quarantine).
    expect(await databaseExists(`db_${pgItem.poolToken}`)).toBe(true);
    expect(await roleExists(`usr_${pgItem.poolToken}`)).toBe(true);
    expect((await keysMatching(redis, `${redisItem.poolToken}:*`)).length).toBeGreaterThan(0);
    expect(await aclUserExists(redis, `usr_${redisItem.poolToken}`)).toBe(true);
    expect((await h.db.pool.query('SELECT id FROM pool_items ORDER BY id')).rows).toEqual(rowsBefore);
    expect(
      (await h.db.pool.query('SELECT count(*)::int AS n FROM pool_reaper_item_failures')).rows[0].n,
    ).toBe(0);
    expect(h.log.lines.filter((l) => String(l['event'] ?? '').startsWith('provisioner.drop'))).toEqual([]);
    expect(
      h.log
        .events('pool_reaper.plan.item')
        .map((l) => l['verdict'])
        .sort(),
    ).toEqual(['reap', 'reap', 'refuse']);

    // History: one planItem per item, its summary naming the item; no teardown, no delete.
    const history = await handle.fetchHistory();
    const records = activityRecords(history);
    expect(
      records
        .filter((r) => r.activity === 'planItem')
        .map((r) => r.itemId)
        .sort(),
    ).toEqual([pgItem.id, redisItem.id, refused.id].sort());
    expect(records.some((r) => r.activity === 'deprovision' || r.activity === 'deleteItem')).toBe(false);
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'planItem')
      .map((e) => {
        const payload = e.userMetadata?.summary;
        return payload ? (defaultPayloadConverter.fromPayload(payload) as string) : '';
      });
    expect(summaries.sort()).toEqual(
      [
        `dry run: postgres ${pgItem.poolToken}`,
        `dry run: redis ${redisItem.poolToken}`,
        'dry run: postgres root',
      ].sort(),
    );
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(REAP_OUTCOME_KEY)).toBe('dry_run');
    expect(description.typedSearchAttributes.get(REAPED_COUNT_KEY)).toBe(0);

    // The new branch replays; RECORD_HISTORIES=1 keeps it as a fixture for future changes.
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, handle.workflowId);
    if (process.env['RECORD_HISTORIES']) {
      const json = execFileSync(inject('temporalCliPath'), [
        'workflow',
        'show',
        '--address',
        h.temporal.address,
        '--workflow-id',
        handle.workflowId,
        '--output',
        'json',
      ]);
      writeFileSync(path.join(FIXTURES, 'reap-pass-dry-run.json'), json);
      const idsFile = path.join(FIXTURES, 'workflow-ids.json');
      const ids = JSON.parse(readFileSync(idsFile, 'utf8')) as Record<string, string>;
      writeFileSync(
        idsFile,
        `${JSON.stringify({ ...ids, 'reap-pass-dry-run': handle.workflowId }, null, 2)}\n`,
      );
    }
  });

  it('explain says why the refused item is kept and that the others would be reaped', async () => {
    const byRefused = await explain(explainDeps(), refused.id);
    expect(byRefused.rows[0]).toMatchObject({
      verdict: 'refuse',
      guard: { site: 'token', reason: 'reserved' },
    });
    const byToken = await explain(explainDeps(), pgItem.poolToken);
    expect(byToken.rows[0]).toMatchObject({ verdict: 'reap', nextPass: true, status: 'failed' });
    expect(byToken.rows[0]!.objects.every((o) => o.exists === true)).toBe(true);
  });

  it('a real pass reaps; ReapedCount > 0 finds it and not the dry-run or empty passes; explain links it', async () => {
    const { summary: real, handle: realHandle } = await h.runPass();
    expect(real).toMatchObject({ reaped: 2, refused: 1, outcome: 'reaped' });
    expect(await databaseExists(`db_${pgItem.poolToken}`)).toBe(false);

    // The refused item now has a failure record; quarantined, explain says so with its failures.
    await h.db.pool.query('UPDATE pool_reaper_item_failures SET quarantined_at = now() WHERE item_id = $1', [
      refused.id,
    ]);
    const quarantined = await explain(explainDeps(), refused.id);
    expect(quarantined.rows[0]).toMatchObject({ verdict: 'skip', failures: { failures: 1 } });
    expect(quarantined.rows[0]!.reason).toMatch(/^quarantined since /);

    const { summary: empty, handle: emptyHandle } = await h.runPass();
    expect(empty).toMatchObject({ listed: 0, outcome: 'empty' });
    // An empty pass stays cheap: the outcome is one more event in the same last workflow task.
    const { handle: bare } = await h.runPass({ recordPassOutcome: false });
    const events = async (handle: typeof bare) => (await handle.fetchHistory()).events ?? [];
    const [withOutcome, without] = [await events(emptyHandle), await events(bare)];
    const tasks = (list: typeof without) => list.filter((e) => e.workflowTaskCompletedEventAttributes).length;
    expect(withOutcome.length).toBe(without.length + 1);
    expect(tasks(withOutcome)).toBe(tasks(without));
    // (The SDK upserts TemporalChangeVersion for each patch too: count ours as the difference.)
    const upserts = (list: typeof without) =>
      list.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length;
    expect(upserts(withOutcome)).toBe(upserts(without) + 1);

    const list = async (query: string) => {
      const ids: string[] = [];
      for await (const wf of h.temporal.client.workflow.list({
        query: `TaskQueue = '${h.taskQueue}' AND ${query}`,
      }))
        ids.push(wf.workflowId);
      return ids.sort();
    };
    expect(
      await waitFor(
        () => list('ReapedCount > 0'),
        (ids) => ids.length >= 1,
        { what: 'the reaping pass' },
      ),
    ).toEqual([realHandle.workflowId]);
    const all = await waitFor(
      () => list("ReapOutcome IN ('dry_run', 'reaped', 'empty')"),
      (ids) => ids.length >= 3,
      { what: 'every pass' },
    );
    expect(all).toEqual([dryPassId, realHandle.workflowId, emptyHandle.workflowId].sort());
    expect(await list("ReapOutcome = 'empty'")).toEqual([emptyHandle.workflowId]);

    // The reaped item: its tombstone and the pass that tore it down, with its Web UI link.
    const reaped = await waitFor(
      () => explain(explainDeps(), pgItem.poolToken),
      (e) => (e.reaped[0]?.passes.length ?? 0) > 0,
      { what: 'the pass found through ReapedPoolTokens' },
    );
    expect(reaped.rows).toEqual([]);
    expect(reaped.reaped[0]).toMatchObject({ itemId: pgItem.id, poolToken: pgItem.poolToken });
    expect(reaped.reaped[0]!.passes[0]).toMatchObject({
      workflowId: realHandle.workflowId,
      outcome: 'reaped',
      reapedCount: 2,
      url: `http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(realHandle.workflowId)}/${encodeURIComponent(
        reaped.reaped[0]!.passes[0]!.runId,
      )}/history`,
    });
  });
});
