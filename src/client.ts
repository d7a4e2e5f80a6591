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
import { SEARCH_ATTRIBUTE_TYPES } from './shared/search-attributes';
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

export function tickerSettingsFrom(config: ReaperConfig, recordReapedTokens = true): TickerSettings {
  return {
    tickMs: config.tickMs,
    passTimeoutMs: config.passTimeoutMs,
    pass: {
      concurrency: config.concurrency,
      clusterConcurrency: config.clusterConcurrency,
      recordReapedTokens,
    },
  };
}

const KEYWORD_LIST = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST;

/**
 * Registers the reaper's search attributes when the cluster lets us (self-hosted); elsewhere
 * (e.g. Temporal Cloud) it logs the one command to run. Returns whether they are usable,
 * since upserting an unregistered attribute would fail every pass.
 */
export async function ensureSearchAttributes(
  client: Client,
  namespace: string,
  log: Logger,
): Promise<boolean> {
  const names = Object.keys(SEARCH_ATTRIBUTE_TYPES);
  try {
    const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
    const known = { ...existing.customAttributes, ...existing.systemAttributes };
    const missing = names.filter((n) => !(n in known));
    if (missing.length === 0) return true;
    await client.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD_LIST])),
    });
    log.info(
      { event: 'pool_reaper.search_attributes.registered', names: missing },
      'search attributes registered',
    );
    return true;
  } catch (err) {
    log.warn(
      { event: 'pool_reaper.search_attributes.unavailable', error: (err as Error).message.split('\n')[0] },
      `search attribute ReapedPoolTokens is not registered and could not be: run \`temporal operator search-attribute create --namespace ${namespace} --name ReapedPoolTokens --type KeywordList\`; until then passes do not record reaped tokens`,
    );
    return false;
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
