import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { ensureSearchAttributes, searchAttributeCommands, tickerSettingsFrom } from '../../src/client';
import { loadConfig } from '../../src/config';
import { formatStatus, formatSummary } from '../../src/operator-format';
import type { TickerStatus } from '../../src/shared/messages';
import type { PassSummary } from '../../src/shared/types';
import { createTeardownRegistry } from '../../src/teardown';
import { workflowListUrl, workflowUrl } from '../../src/ui-links';
import { passOutcomeOf } from '../../workflows/pass-outcome';
import { CapturedLog } from '../helpers/reaper';

const summary = (over: Partial<PassSummary>): PassSummary => ({
  passId: 'pass-1',
  startedAt: '2026-11-30T00:00:00.000Z',
  finishedAt: '2026-11-30T00:00:01.000Z',
  durationMs: 1000,
  listed: 0,
  reaped: 0,
  deprovisionErrors: 0,
  deleteErrors: 0,
  refused: 0,
  skipped: 0,
  deferred: 0,
  batchLimit: 50,
  batchFull: false,
  stuckAssigned: {},
  outcomes: [],
  errors: [],
  ...over,
});

describe('REAPER_DRY_RUN and TEMPORAL_UI_URL', () => {
  it('are off and the local dev UI by default, and reach the pass options', () => {
    const plain = loadConfig({});
    expect(plain.dryRun).toBe(false);
    expect(plain.temporalUiUrl).toBe('http://localhost:8233');
    expect(tickerSettingsFrom(plain).pass.dryRun).toBeUndefined();
    const dry = loadConfig({ REAPER_DRY_RUN: 'true', TEMPORAL_UI_URL: 'https://temporal.example.com/' });
    expect(tickerSettingsFrom(dry).pass.dryRun).toBe(true);
    expect(dry.temporalUiUrl).toBe('https://temporal.example.com');
    expect(() => loadConfig({ REAPER_DRY_RUN: 'maybe' })).toThrow(/REAPER_DRY_RUN/);
  });

  it('links passes and the saved view in the Web UI', () => {
    expect(workflowUrl('http://localhost:8233', 'default', 'pool-reaper-pass-1', 'run-1')).toBe(
      'http://localhost:8233/namespaces/default/workflows/pool-reaper-pass-1/run-1/history',
    );
    expect(workflowListUrl('http://ui', 'ns', 'ReapedCount > 0')).toBe(
      'http://ui/namespaces/ns/workflows?query=ReapedCount%20%3E%200',
    );
  });
});

describe('pass outcome', () => {
  it('names what the pass did, first match wins', () => {
    expect(passOutcomeOf(summary({ dryRun: { reap: 1, refuse: 0, skip: 0, failed: 0 } }))).toBe('dry_run');
    expect(passOutcomeOf(summary({ reaped: 3, deleteErrors: 1 }))).toBe('errors');
    expect(passOutcomeOf(summary({ aborted: { stage: 'list', errorType: 'E', message: 'm' } }))).toBe(
      'errors',
    );
    expect(passOutcomeOf(summary({ reaped: 3, refused: 1 }))).toBe('reaped');
    expect(passOutcomeOf(summary({ refused: 1 }))).toBe('refused');
    expect(passOutcomeOf(summary({ listed: 2, skipped: 2 }))).toBe('empty');
  });

  it('the summary and status say a dry run touched nothing', () => {
    const s = summary({ listed: 3, dryRun: { reap: 2, refuse: 1, skip: 0, failed: 0 }, outcome: 'dry_run' });
    expect(formatSummary(s)).toMatch(/DRY RUN.*nothing dropped, no row deleted/);
    expect(formatSummary(s)).toMatch(/would reap 2, refuse 1, skip 0/);
    const status = {
      paused: false,
      pauseReason: undefined,
      passesRun: 1,
      passesFailed: 0,
      consecutiveFailures: 0,
      lastFailure: undefined,
      pendingForce: false,
      currentPassId: undefined,
      nextTickAt: '2026-11-30T00:01:00.000Z',
      lastSummary: s,
      settings: { tickMs: 30_000, pass: { concurrency: 8, dryRun: true } },
    } satisfies TickerStatus;
    expect(formatStatus(status)).toMatch(/DRY RUN: passes plan and touch nothing/);
  });
});

describe('search attributes a namespace lacks', () => {
  it('degrade clearly: passes record only what is registered, and the warning gives the commands', async () => {
    const log = new CapturedLog();
    const client = {
      connection: {
        operatorService: {
          listSearchAttributes: async () => ({
            customAttributes: { ReapedPoolTokens: 1 },
            systemAttributes: {},
          }),
          addSearchAttributes: async () => {
            throw new Error('PermissionDenied: not allowed on this namespace');
          },
        },
      },
    } as unknown as Client;
    const available = await ensureSearchAttributes(client, 'prod', log.logger);
    expect([...available]).toEqual(['ReapedPoolTokens']);
    const [warning] = log.events('pool_reaper.search_attributes.unavailable');
    expect(warning?.['missing']).toEqual(['ReapOutcome', 'ReapedCount']);
    for (const command of searchAttributeCommands('prod', ['ReapOutcome', 'ReapedCount'])) {
      expect(String(warning?.['msg'])).toContain(command);
    }
    expect(searchAttributeCommands('prod', ['ReapedCount'])).toEqual([
      'temporal operator search-attribute create --namespace prod --name ReapedCount --type Int',
    ]);
    const pass = tickerSettingsFrom(loadConfig({}), available).pass;
    expect(pass).toMatchObject({ recordReapedTokens: true, recordPassOutcome: false });
  });
});

describe('the guard’s decision without side effects', () => {
  it('decide() gives site and reason, and writes no audit line', () => {
    const log = new CapturedLog();
    const registry = createTeardownRegistry({
      postgresClusters: new Map([['local:0', 'postgres://postgres@127.0.0.1:1/postgres']]),
      redisClusters: new Map([['local:0', 'redis://127.0.0.1:1']]),
      concurrency: 1,
      log: log.logger,
    });
    const item = (poolToken: string, resourceType = 'postgres', providerResourceId = 'local:0') => ({
      id: '00000000-0000-0000-0000-000000000001',
      poolToken,
      resourceType,
      providerResourceId,
    });
    expect(registry.decide(item('admin'))).toMatchObject({
      allowed: false,
      site: 'token',
      reason: 'reserved',
    });
    expect(registry.decide(item(''))).toMatchObject({ allowed: false, site: 'token', reason: 'empty' });
    expect(registry.decide(item('pool-x', 'redis', 'local:7'))).toMatchObject({
      allowed: false,
      site: 'cluster',
      reason: 'unknown_cluster',
    });
    expect(registry.decide(item('pool-x', 'mongodb'))).toMatchObject({
      allowed: false,
      site: 'resource_type',
    });
    expect(registry.decide(item('pool-x'))).toEqual({ allowed: true, cluster: 'local:0' });
    expect(log.lines).toEqual([]);
    // preflight (the teardown's path) still audits the same refusal once.
    expect(() => registry.preflight(item('admin'))).toThrow(/reserved/);
    expect(log.events('provisioner.drop.refused')).toHaveLength(1);
  });
});
