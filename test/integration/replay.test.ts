import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { poolReaper } from '../../workflows/pool-reaper';
import { uniqueSuffix } from '../helpers/env';
import { childWorkflowIds } from '../helpers/history';
import { createReaperHarness, type ReaperHarness, TEST_PASS_OPTIONS } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';
import { workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/histories');
const HOUR = 3_600_000;

/**
 * Determinism: recorded histories of the ticker, a pass and a token index must replay against
 * the current workflow code. `RECORD_HISTORIES=1` refreshes the fixtures from a live run
 * (do that only for an intended, compatible change, and keep the old files if runs of the
 * old shape may still be open in production).
 */
describe('workflow replay', () => {
  it('replays every recorded history in test/fixtures/histories', async () => {
    // Child workflow ids derive from the parent's id, so each history replays under its own.
    const ids = JSON.parse(readFileSync(path.join(FIXTURES, 'workflow-ids.json'), 'utf8')) as Record<
      string,
      string
    >;
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && f !== 'workflow-ids.json');
    expect(files.sort()).toEqual(
      Object.keys(ids)
        .map((name) => `${name}.json`)
        .sort(),
    );
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      // The worker accepts the exported JSON as is and decodes it with its own protobuf types.
      const history: unknown = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
      await expect(
        Worker.runReplayHistory(
          { workflowBundle: workflowBundle() },
          history,
          ids[file.replace(/\.json$/, '')],
        ),
        `replaying ${file}`,
      ).resolves.toBeUndefined();
    }
  });

  describe('a live run of ticker → pass → token index', () => {
    let h: ReaperHarness;
    beforeAll(async () => {
      h = await createReaperHarness('replay');
    });
    afterAll(async () => {
      await h?.close();
    });

    it('records histories that replay cleanly', async () => {
      // Enough reaped tokens to overflow one search attribute value, plus a refused item.
      for (let i = 0; i < 45; i++)
        await insertRow(h.db.pool, { resourceType: 'queue', status: 'failed', ageMs: HOUR });
      await insertRow(h.db.pool, { resourceType: 'mongodb', status: 'failed', ageMs: HOUR });
      const workflowId = `${h.taskQueue}-ticker-${uniqueSuffix()}`;
      const ticker = await h.temporal.client.workflow.start(poolReaper, {
        taskQueue: h.taskQueue,
        workflowId,
        args: [{ settings: { tickMs: HOUR, pass: TEST_PASS_OPTIONS }, continueAsNewAfterPasses: 5 }],
      });
      const reaper = new ReaperClient(h.temporal.client, workflowId);
      await reaper.reapNowAndWait({ requestedBy: 'replay-test' });
      await reaper.pause({ reason: 'replay' });
      await reaper.reapNow({ requestedBy: 'replay-test' });
      await reaper.resume();
      await waitFor(
        () => reaper.status(),
        (s) => s.passesRun === 2 && s.nextTickAt !== undefined,
        {
          what: 'two passes',
        },
      );
      await ticker.terminate('recorded');

      const tickerHistory = await ticker.fetchHistory();
      const passId = childWorkflowIds(tickerHistory)[0]!;
      const pass: WorkflowHandle = h.temporal.client.workflow.getHandle(passId);
      const passHistory = await pass.fetchHistory();
      const tokensId = childWorkflowIds(passHistory)[0]!;
      expect(tokensId).toBe(`${passId}-tokens-2`);
      const tokensHistory = await h.temporal.client.workflow.getHandle(tokensId).fetchHistory();

      const recorded = {
        'pool-reaper-ticker': { id: workflowId, history: tickerHistory },
        'reap-pass': { id: passId, history: passHistory },
        'reaped-tokens-index': { id: tokensId, history: tokensHistory },
      };
      for (const { id, history } of Object.values(recorded)) {
        await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, id);
      }
      if (process.env['RECORD_HISTORIES']) {
        mkdirSync(FIXTURES, { recursive: true });
        // The CLI's export is the format the UI downloads and operators attach to bug reports.
        for (const [name, { id }] of Object.entries(recorded)) {
          const json = execFileSync(inject('temporalCliPath'), [
            'workflow',
            'show',
            '--address',
            h.temporal.address,
            '--workflow-id',
            id,
            '--output',
            'json',
          ]);
          writeFileSync(path.join(FIXTURES, `${name}.json`), json);
        }
        const ids = Object.fromEntries(Object.entries(recorded).map(([name, { id }]) => [name, id]));
        writeFileSync(path.join(FIXTURES, 'workflow-ids.json'), `${JSON.stringify(ids, null, 2)}\n`);
      }
      expect((passHistory.events ?? []).some((e) => e.markerRecordedEventAttributes)).toBe(true);
    });
  });
});
