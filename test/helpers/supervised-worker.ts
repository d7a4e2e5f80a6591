import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { ReapPassOptions } from '../../src/shared/types';
import { startWorkerProcess, type WorkerProcess } from './worker-process';

export type LogLine = Record<string, unknown> & { incarnation?: number };

const PRELOAD = path.resolve(__dirname, 'worker-preload.cjs');
/** Activities without a heartbeat: after a kill -9 Temporal retries them only when startToClose (1 min) fires. */
const BOOKKEEPING = new Set(['listStaleFailed', 'reportStuckAssigned', 'recordPassSummary']);
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

export interface SupervisorOptions {
  /** Per-test variables (task queue, ticker id, provisioner database, tick, batch limit, ...). */
  readonly env: Record<string, string>;
  /** A client of the same Temporal server, for the recovery calls after a kill. */
  readonly client: Client;
  readonly taskQueue: string;
  /** Pass options merged into the ticker's settings through the test preload. */
  readonly passOptions?: Partial<ReapPassOptions>;
  /** Restart the worker when it exits on its own (as a container supervisor would), at most 5 times. */
  readonly restartOnCrash?: boolean;
  /** Every JSON line of every incarnation, as it arrives. */
  readonly onLine?: (line: LogLine) => void;
}

/**
 * A `node dist/src/cli.js worker` process (via startWorkerProcess) that the test can kill -9
 * and start again. After a kill it does what a fast failure detector would, so that a test
 * with many kills fits its time budget without changing what the reaper does:
 *  - resets the sticky task queue of the task queue's open workflows (otherwise each of them
 *    waits up to 10 s for the dead worker's sticky queue to time out);
 *  - fails, on the dead worker's behalf, the bookkeeping activities it had started (they have
 *    no heartbeat, so Temporal would retry them only after their 1-minute startToClose).
 * In-flight deprovision/delete activities are NOT touched: their heartbeat and start-to-close
 * timeouts (ReapPassOptions.activityTimeouts) bring them back, as in production.
 */
export class SupervisedWorker {
  readonly lines: LogLine[] = [];
  readonly crashes: string[] = [];
  incarnations = 0;
  kills = 0;
  stickyResets = 0;
  rescuedActivities = 0;
  private current: WorkerProcess | undefined;
  private readonly expectedExits = new WeakSet<WorkerProcess>();
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: SupervisorOptions) {}

  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  /** /metrics port of the current incarnation. */
  get metricsPort(): number | undefined {
    return this.current?.metricsPort;
  }

  /** Resolves once the current incarnation (including one restarted after a crash) is polling. */
  whenRunning(): Promise<void> {
    return this.running;
  }

  async start(): Promise<void> {
    this.running = this.spawn();
    await this.running;
  }

  private async spawn(): Promise<void> {
    const env: Record<string, string> = { ...this.options.env };
    if (this.options.passOptions) {
      env['NODE_OPTIONS'] = `--require ${PRELOAD}`;
      env['RELIABILITY_PASS_OPTIONS'] = JSON.stringify(this.options.passOptions);
    }
    const proc = await startWorkerProcess(env);
    const incarnation = ++this.incarnations;
    this.current = proc;
    let buffer = '';
    proc.child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (text.trim() === '') continue;
        let line: LogLine;
        try {
          line = JSON.parse(text);
        } catch {
          line = { raw: text };
        }
        line.incarnation = incarnation;
        this.lines.push(line);
        this.options.onLine?.(line);
      }
    });
    void proc.exited.then(async (code) => {
      if (this.expectedExits.has(proc) || this.stopped) return;
      const stderr = proc.stderr.join('');
      const why = ['Emitted ', 'error: ', 'Error: ']
        .map((needle) => stderr.split('\n').find((l) => l.includes(needle)))
        .filter((l): l is string => l !== undefined)
        .map((l) => l.trim())
        .join(' / ');
      this.crashes.push(`incarnation ${incarnation} exited (${code}): ${why || stderr.slice(-300)}`);
      if (this.options.restartOnCrash && this.crashes.length <= 5) {
        this.running = (async () => {
          await this.recover(proc.child.pid);
          await this.spawn();
        })();
      }
    });
    await proc.waitForEvent('pool_reaper.worker.started', 90_000);
  }

  /** kill -9 the current incarnation, wait for it to be gone, and clean up after it. */
  async kill9(): Promise<void> {
    const proc = this.current;
    if (!proc) return;
    this.expectedExits.add(proc);
    proc.kill('SIGKILL');
    await proc.exited;
    this.kills++;
    await this.recover(proc.child.pid);
  }

  /** SIGTERM (graceful drain) and no restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running.catch(() => undefined);
    const proc = this.current;
    if (!proc) return;
    this.expectedExits.add(proc);
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await proc.exited;
    clearTimeout(timer);
  }

  private async recover(deadPid: number | undefined): Promise<void> {
    const { client, taskQueue } = this.options;
    const service = client.workflowService;
    const namespace = client.options.namespace;
    const open: { workflowId: string; runId: string; type: string }[] = [];
    for await (const wf of client.workflow.list({
      query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      open.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type });
    }
    for (const wf of open) {
      const execution = { workflowId: wf.workflowId, runId: wf.runId };
      await service
        .resetStickyTaskQueue({ namespace, execution })
        .then(() => this.stickyResets++)
        .catch(() => undefined);
      if (wf.type !== 'reapPass' || deadPid === undefined) continue;
      const description = await client.workflow
        .getHandle(wf.workflowId, wf.runId)
        .describe()
        .catch(() => undefined);
      for (const activity of description?.raw.pendingActivities ?? []) {
        const type = activity.activityType?.name ?? '';
        if (!BOOKKEEPING.has(type) || activity.state !== STARTED) continue;
        if (!String(activity.lastWorkerIdentity ?? '').startsWith(`${deadPid}@`)) continue;
        await service
          .respondActivityTaskFailedById({
            namespace,
            workflowId: wf.workflowId,
            runId: wf.runId,
            activityId: activity.activityId,
            identity: 'reliability-test',
            failure: {
              message: `worker ${deadPid} was killed (reliability test)`,
              source: 'reliability-test',
              applicationFailureInfo: { type: 'WorkerKilled', nonRetryable: false },
            },
          })
          .then(() => this.rescuedActivities++)
          .catch(() => undefined);
      }
    }
  }
}
