import type { Client } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { loadConfig, type ReaperConfig } from '../config';
import { createLogger } from '../logger';
import { type ExplainDeps, explain } from '../plan/explain';
import { formatExplanation, formatPlan } from '../plan/format';
import { PlanStore } from '../plan/plan-store';
import { computePlan } from '../plan/planner';
import {
  PASS_OUTCOMES,
  REAP_OUTCOME,
  REAP_OUTCOME_KEY,
  REAPED_COUNT,
  REAPED_COUNT_KEY,
} from '../shared/search-attributes';
import { shardOfWorkflowId } from '../shared/shards';
import { PoolStore } from '../store/pool-store';
import { createTeardownRegistry, type TeardownRegistry } from '../teardown';
import { connectClient, temporalTarget } from '../temporal-connection';
import { workflowListUrl, workflowUrl } from '../ui-links';
import { CliExit } from './common';

/**
 * `plan`, `explain` and `passes`: look before you drop. Read-only against the provisioner
 * database and the customer clusters (docs/plan-and-dry-run.md); `passes` and the pass
 * lookup of `explain` read Temporal's visibility.
 */

/** `explain` found nothing for the id or token (the same code as a ticker that is not running: "nothing there"). */
export const EXIT_NOT_FOUND = 4;

/** The pass workflow's type name, as visibility queries spell it (workflows/reap-pass.ts). */
const PASS_WORKFLOW_TYPE = 'reapPass';

function positiveInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${raw}"`);
  return n;
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

interface Readers {
  readonly cfg: ReaperConfig;
  readonly store: PoolStore;
  readonly plans: PlanStore;
  readonly teardown: TeardownRegistry;
}

/** The reads a plan needs; the teardown registry is used only through decide/plan (read-only). */
async function withReaders<T>(fn: (r: Readers) => Promise<T>): Promise<T> {
  const cfg = loadConfig();
  // Refusals are never audited by planning; any other line goes to stderr, stdout is the answer.
  const log = createLogger({ level: cfg.logLevel }, pino.destination({ dest: 2, sync: true }));
  const store = PoolStore.connect(cfg.provisionerDatabaseUrl, 2);
  const teardown = createTeardownRegistry({
    postgresClusters: cfg.postgresClusters,
    redisClusters: cfg.redisClusters,
    concurrency: 1,
    log,
  });
  try {
    return await fn({ cfg, store, plans: new PlanStore(store.pool), teardown });
  } finally {
    await Promise.allSettled([teardown.close(), store.close()]);
  }
}

async function temporalOrError(): Promise<{ client: Client; namespace: string } | { error: string }> {
  try {
    const target = temporalTarget();
    return { client: await connectClient(target), namespace: target.namespace };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] ?? String(err) };
  }
}

export function registerPlanCommands(program: Command): void {
  program
    .command('plan')
    .description('show what the next passes would do with each stale failed item, touching nothing')
    .option('--json', 'one JSON object: totals and items (docs/plan-and-dry-run.md)')
    .option('-l, --limit <n>', 'at most this many items, oldest first', positiveInt, 500)
    .action(async (opts: { json?: boolean; limit: number }) => {
      await withReaders(async ({ cfg, store, plans, teardown }) => {
        const plan = await computePlan(
          { store, plans, teardown, failedGraceMs: cfg.failedGraceMs, batchLimit: cfg.batchLimit },
          opts.limit,
        );
        print(!!opts.json, plan, formatPlan(plan));
      });
    });

  program
    .command('explain')
    .description(
      'where one item stands and why: its row, the next pass’s verdict, its objects, the pass that reaped it',
    )
    .argument('<idOrToken>', 'an item id (uuid) or pool token')
    .option('--json', 'machine-readable output')
    .action(async (idOrToken: string, opts: { json?: boolean }) => {
      await withReaders(async ({ cfg, store, plans, teardown }) => {
        const temporal = await temporalOrError();
        const deps: ExplainDeps = {
          store,
          plans,
          teardown,
          failedGraceMs: cfg.failedGraceMs,
          batchLimit: cfg.batchLimit,
          ...('client' in temporal
            ? {
                temporal: {
                  client: temporal.client,
                  namespace: temporal.namespace,
                  uiUrl: cfg.temporalUiUrl,
                },
              }
            : { temporalError: temporal.error }),
        };
        try {
          const result = await explain(deps, idOrToken);
          if (result.rows.length === 0 && result.reaped.length === 0) {
            throw new CliExit(
              EXIT_NOT_FOUND,
              `no pool item and no reaped tombstone matches ${JSON.stringify(idOrToken.slice(0, 100))}`,
            );
          }
          print(!!opts.json, result, formatExplanation(result));
        } finally {
          if ('client' in temporal) await temporal.client.connection.close();
        }
      });
    });

  program
    .command('passes')
    .description('the last reap passes and what each did (ReapOutcome, ReapedCount), with Web UI links')
    .option('--with-work', 'only passes that did something (reaped, errors, refused, dry run)')
    .option('-l, --limit <n>', 'at most this many passes, newest first', positiveInt, 20)
    .option('--json', 'machine-readable output')
    .action(async (opts: { withWork?: boolean; limit: number; json?: boolean }) => {
      const cfg = loadConfig();
      const target = temporalTarget();
      const client = await connectClient(target);
      try {
        const worked = PASS_OUTCOMES.filter((o) => o !== 'empty')
          .map((o) => `'${o}'`)
          .join(', ');
        const query =
          `WorkflowType = '${PASS_WORKFLOW_TYPE}' AND TaskQueue = '${cfg.taskQueue}'` +
          (opts.withWork ? ` AND ${REAP_OUTCOME} IN (${worked})` : '');
        const passes: Record<string, unknown>[] = [];
        for await (const wf of client.workflow.list({ query })) {
          passes.push({
            workflowId: wf.workflowId,
            runId: wf.runId,
            status: wf.status.name,
            startTime: wf.startTime.toISOString(),
            closeTime: wf.closeTime ? wf.closeTime.toISOString() : null,
            outcome: wf.typedSearchAttributes.get(REAP_OUTCOME_KEY) ?? null,
            reapedCount: wf.typedSearchAttributes.get(REAPED_COUNT_KEY) ?? null,
            // A shard pass of a sharded tick (REAPER_PASS_SHARDS): "index/count"; null for a whole pass.
            shard: ((s) => (s ? `${s.index}/${s.count}` : null))(shardOfWorkflowId(wf.workflowId)),
            url: workflowUrl(cfg.temporalUiUrl, target.namespace, wf.workflowId, wf.runId),
          });
          if (passes.length >= opts.limit) break;
        }
        const view = workflowListUrl(cfg.temporalUiUrl, target.namespace, `${REAPED_COUNT} > 0`);
        const text = [
          ...(passes.length === 0
            ? [opts.withWork ? 'no pass that did something' : 'no pass found']
            : passes.map(
                (p) =>
                  `${p['startTime']}  ${String(p['outcome'] ?? '-').padEnd(8)} reaped ${String(p['reapedCount'] ?? '-').padEnd(4)} ${p['status']}  ${p['workflowId']}${p['shard'] ? `  (shard ${p['shard']})` : ''}\n    ${p['url']}`,
              )),
          `passes that reaped (saved view ${REAPED_COUNT} > 0): ${view}`,
        ].join('\n');
        print(!!opts.json, { query, passes }, text);
      } finally {
        await client.connection.close();
      }
    });
}
