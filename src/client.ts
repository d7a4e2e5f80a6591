import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { poolReaper } from '../workflows/pool-reaper';
import type { reapPass } from '../workflows/reap-pass';
import type { ReaperConfig } from './config';
import type { Logger } from './logger';
import {
  configureSignal,
  type PauseRequest,
  pauseSignal,
  type ReapNowRequest,
  reapNowSignal,
  reapNowUpdate,
  resumeSignal,
  statusQuery,
  type TickerSettings,
  type TickerStatus,
} from './shared/messages';
import {
  PASS_OUTCOME_ATTRIBUTES,
  REAPED_POOL_TOKENS,
  SEARCH_ATTRIBUTE_TYPES,
} from './shared/search-attributes';
import type { PassSummary } from './shared/types';

/** The ticker is not running (never started, or terminated): start a worker first. */
export class TickerNotRunningError extends Error {
  override readonly name = 'TickerNotRunningError';
}

/** The ticker refused the request (e.g. reapNow while paused). */
export class ReaperRequestRefusedError extends Error {
  override readonly name = 'ReaperRequestRefusedError';
}

/** The pass a `reapNow` waited for failed, timed out, was terminated or could not list. */
export class PassFailedError extends Error {
  override readonly name = 'PassFailedError';
}

/**
 * The ticker settings of this worker's config. `searchAttributes`: true (all registered),
 * false (none), or the names the namespace has (ensureSearchAttributes).
 */
export function tickerSettingsFrom(
  config: ReaperConfig,
  searchAttributes: boolean | ReadonlySet<string> = true,
): TickerSettings {
  const has = (name: string) =>
    typeof searchAttributes === 'boolean' ? searchAttributes : searchAttributes.has(name);
  return {
    tickMs: config.tickMs,
    passTimeoutMs: config.passTimeoutMs,
    // Only when sharding: a worker with one pass per tick sends the settings it always sent.
    ...(config.passShards > 1 ? { passShards: config.passShards } : {}),
    pass: {
      concurrency: config.concurrency,
      clusterConcurrency: config.clusterConcurrency,
      redisClusterConcurrency: config.redisClusterConcurrency,
      recordReapedTokens: has(REAPED_POOL_TOKENS),
      recordPassOutcome: PASS_OUTCOME_ATTRIBUTES.every(has),
      // Only when on: a worker without it starts passes exactly as before.
      ...(config.dryRun ? { dryRun: true } : {}),
      // Decided here, once: every replica serving the pass applies these, whatever its own config.
      rules: {
        failedGraceMs: config.failedGraceMs,
        batchLimit: config.batchLimit,
        stuckAssignedGraceMs: config.stuckAssignedGraceMs,
        orphanGraceMs: config.orphanGraceMs,
      },
    },
  };
}

const INDEXED_TYPES: Readonly<Record<string, temporal.api.enums.v1.IndexedValueType>> = {
  KeywordList: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  Int: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
};

/** The commands an operator runs to register what a namespace lacks. */
export function searchAttributeCommands(namespace: string, names: readonly string[]): string[] {
  const types: Readonly<Record<string, string>> = SEARCH_ATTRIBUTE_TYPES;
  return names.map(
    (n) =>
      `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type ${types[n]}`,
  );
}

/**
 * Registers the reaper's search attributes when the cluster lets us (self-hosted); elsewhere
 * (e.g. Temporal Cloud) it logs the commands to run. Returns the names that are usable, since
 * upserting an unregistered attribute would fail every pass: a pass records only those.
 */
export async function ensureSearchAttributes(
  client: Client,
  namespace: string,
  log: Logger,
): Promise<ReadonlySet<string>> {
  const names = Object.keys(SEARCH_ATTRIBUTE_TYPES);
  let known: Set<string> = new Set();
  try {
    const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
    known = new Set([
      ...Object.keys(existing.customAttributes ?? {}),
      ...Object.keys(existing.systemAttributes ?? {}),
    ]);
    const missing = names.filter((n) => !known.has(n));
    if (missing.length === 0) return known;
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((n) => [
          n,
          INDEXED_TYPES[(SEARCH_ATTRIBUTE_TYPES as Record<string, string>)[n] ?? 'Keyword'] ??
            temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
    log.info(
      { event: 'pool_reaper.search_attributes.registered', names: missing },
      'search attributes registered',
    );
    return new Set([...known, ...missing]);
  } catch (err) {
    const missing = names.filter((n) => !known.has(n));
    log.warn(
      {
        event: 'pool_reaper.search_attributes.unavailable',
        missing,
        error: (err as Error).message.split('\n')[0],
      },
      `search attribute(s) ${missing.join(', ')} not registered and could not be: run ` +
        searchAttributeCommands(namespace, missing)
          .map((c) => `\`${c}\``)
          .join(' and ') +
        '; until then passes do not record them (ReapedPoolTokens: the reaped tokens; ReapOutcome and ReapedCount: what each pass did)',
    );
    return known;
  }
}

/**
 * Starts the ticker if it is not running, and pushes this replica's settings either way
 * (signal-with-start): N replicas, one ticker.
 */
export async function ensureTicker(
  client: Client,
  options: {
    workflowId: string;
    taskQueue: string;
    settings: TickerSettings;
    log: Logger;
    /** The last recorded pause: a ticker started afresh starts paused when its predecessor was. */
    paused?: { reason?: string | undefined } | undefined;
  },
): Promise<void> {
  // Only used when no ticker runs: then it starts with the recorded pause (and mirrors it).
  const state = options.paused
    ? {
        paused: true,
        pauseReason: options.paused.reason ?? 'paused before this ticker started',
        mirrorPending: true,
      }
    : undefined;
  const handle = await client.workflow.signalWithStart<typeof poolReaper, [TickerSettings]>(poolReaper, {
    workflowId: options.workflowId,
    taskQueue: options.taskQueue,
    args: [{ settings: options.settings, ...(state ? { state } : {}) }],
    signal: configureSignal,
    signalArgs: [options.settings],
    staticSummary: 'pool-reaper ticker: one reap pass per tick, forced by reapNow',
  });
  options.log.info(
    { event: 'pool_reaper.ticker.ensured', workflowId: options.workflowId, runId: handle.signaledRunId },
    'ticker running',
  );
}

/** Operator actions on a running ticker, as used by the CLI. */
export class ReaperClient {
  constructor(
    private readonly client: Client,
    readonly workflowId: string,
  ) {}

  private handle() {
    return this.client.workflow.getHandle<typeof poolReaper>(this.workflowId);
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new TickerNotRunningError(
          `no running ticker with workflow id ${this.workflowId}: start a worker (\`pool-reaper worker\`)`,
        );
      }
      if (err instanceof WorkflowUpdateFailedError) {
        const cause = err.cause as (Error & { type?: string }) | undefined;
        if (cause?.type === 'PassFailedError') throw new PassFailedError(cause.message);
        throw new ReaperRequestRefusedError(cause?.message ?? err.message);
      }
      throw err;
    }
  }

  /** Asks for a pass as soon as the current one finishes; several requests coalesce. */
  reapNow(request: ReapNowRequest = {}): Promise<void> {
    return this.call(() => this.handle().signal(reapNowSignal, request));
  }

  /** Same, and waits for the summary of the pass it caused. */
  reapNowAndWait(request: ReapNowRequest = {}): Promise<PassSummary> {
    return this.call(() => this.handle().executeUpdate(reapNowUpdate, { args: [request] }));
  }

  pause(request: PauseRequest = {}): Promise<void> {
    return this.call(() => this.handle().signal(pauseSignal, request));
  }

  resume(request: PauseRequest = {}): Promise<void> {
    return this.call(() => this.handle().signal(resumeSignal, request));
  }

  /** The ticker's state; a ticker that is closed (failed, terminated, …) is reported as not running. */
  async status(): Promise<TickerStatus> {
    const description = await this.call(() => this.handle().describe());
    if (description.status.name !== 'RUNNING') {
      const since = description.closeTime ? ` since ${description.closeTime.toISOString()}` : '';
      throw new TickerNotRunningError(
        `the ticker ${this.workflowId} is ${description.status.name.toLowerCase()}${since}: ` +
          'start a worker (`pool-reaper worker`) to start a new one',
      );
    }
    return this.call(() => this.handle().query(statusQuery));
  }

  /** The pass currently running, for progress display (its current details). */
  async passDetails(passId: string): Promise<string | undefined> {
    // The SDK's built-in metadata query (current details), which no workflow defines itself.
    const metadata = await this.client.workflow
      .getHandle<typeof reapPass>(passId)
      .query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return metadata.currentDetails;
  }
}
