import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ReaperClient } from '../../src/client';
import { seedItems } from '../../src/dev/seed';
import type { DevServer } from '../../src/dev/temporal-server';
import type { PassSummary } from '../../src/shared/types';
import { startDevServerWithRetry } from '../helpers/dev-server';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from '../helpers/env';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const HOUR = 3_600_000;
const SCREENSHOTS = path.resolve(process.cwd(), 'artifacts', 'ui');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * What an operator sees: the local stack's Temporal Web UI in a real (headless) Chromium,
 * showing a forced pass and the activity summaries that name the pool tokens.
 */
describe('the Temporal Web UI shows a pass and its teardowns', () => {
  let server: DevServer;
  let db: TestDatabase;
  let worker: WorkerProcess;
  let connection: Connection;
  let browser: Browser;
  let summary: PassSummary;
  let tokens: string[];

  beforeAll(async () => {
    server = await startDevServerWithRetry({ cliPath: inject('temporalCliPath') });
    db = await createTestDatabase('ui_browser');
    const items = await seedItems({
      provisionerPool: db.pool,
      adminUrl: TEST_POSTGRES_URL,
      redisUrl: TEST_REDIS_URL,
      count: 2,
      resourceType: 'postgres',
      status: 'failed',
      ageMs: HOUR,
    });
    tokens = items.map((i) => i.poolToken);
    const tickerId = `ui-${uniqueSuffix()}`;
    worker = await startWorkerProcess({
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: tickerId,
      REAPER_WORKFLOW_ID: tickerId,
      REAPER_TICK: '1h',
      PROVISIONER_DATABASE_URL: db.url,
    });
    await worker.waitForEvent('pool_reaper.ticker.ensured');
    connection = await Connection.connect({ address: server.address });
    summary = await new ReaperClient(new Client({ connection }), tickerId).reapNowAndWait({
      requestedBy: 'ui-test',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    worker?.kill('SIGTERM');
    await worker?.exited;
    await connection?.close();
    await server?.stop();
    await db?.drop();
  });

  it('opens the pass and finds the activity summaries naming each pool token', async () => {
    expect(summary.reaped).toBe(2);
    const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
    const ui = server.uiUrl!;
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(summary.passId)}`);
    await page.getByText(summary.passId).first().waitFor({ timeout: 30_000 });
    await page
      .getByText(/reap pass #1 \(forced\)/)
      .first()
      .waitFor({ timeout: 30_000 });
    mkdirSync(SCREENSHOTS, { recursive: true });

    for (const token of tokens) {
      await page.getByText(`postgres ${token}`).first().waitFor({ timeout: 30_000 });
    }
    // The row deletes, as local-activity markers, are on the same page.
    await page.getByText('deleteItem').first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'pass.png'), fullPage: true });
    const text = (await page.locator('body').textContent()) ?? '';
    for (const token of tokens) expect(text).toContain(token);
    await page.close();
  });
});
