import { proxyActivities, proxyLocalActivities, type RetryPolicy } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { NON_RETRYABLE_TYPES } from '../src/shared/failure-types';
import { DEPROVISION_RETRY_DEFAULTS } from '../src/shared/settings-rules';
import type { PoolItemRef, ReapPassOptions } from '../src/shared/types';

/**
 * How the pass calls its per-item activities: timeouts and named retry policies, in one place.
 * Each proxy's summary names the item, so the Web UI shows which item a step belongs to.
 */

type Activities = ReturnType<typeof createActivities>;

/**
 * A killed worker's teardown is retried once this passes without a heartbeat; the activity
 * heartbeats at a third of it. Short, so a crash costs seconds: with the sticky queue's
 * 5 s (src/worker.ts) a replacement worker picks the pass up within about 10 s.
 */
export const DEPROVISION_HEARTBEAT_TIMEOUT_MS = 10_000;

/**
 * A teardown retries with backoff on what may pass in seconds (object in use, a blip), never
 * on what the taxonomy says will not (refusals, needs-an-operator, a cluster that refuses the
 * reaper); bounded so that a pass ends and the next one tries again. Tests shorten it.
 */
export function deprovisionRetry(options: ReapPassOptions): RetryPolicy {
  const retry = { ...DEPROVISION_RETRY_DEFAULTS, ...options.deprovisionRetry };
  return {
    initialInterval: retry.initialIntervalMs,
    backoffCoefficient: 2,
    maximumInterval: retry.maximumIntervalMs,
    maximumAttempts: retry.maximumAttempts,
    nonRetryableErrorTypes: [...NON_RETRYABLE_TYPES],
  };
}

/** The row delete is one idempotent statement: a few quick retries cover a blip. */
export const DELETE_ROW_RETRY: RetryPolicy = {
  initialInterval: '1 second',
  maximumInterval: '10 seconds',
  maximumAttempts: 5,
};

/** An orphan's recheck: a few quick retries, then the item waits for the next pass. */
export const RECHECK_ORPHAN_RETRY: RetryPolicy = {
  initialInterval: '1 second',
  maximumInterval: '10 seconds',
  maximumAttempts: 3,
};

/** The retried teardown of one item; its summary names the item in the UI. */
export function deprovisionStep(item: PoolItemRef, options: ReapPassOptions, label = '') {
  const timeouts = options.activityTimeouts ?? {};
  return proxyActivities<Activities>({
    // A drop waits for a checkpoint: seconds on a busy cluster. The heartbeat catches a dead
    // worker in seconds instead of waiting out startToClose.
    startToCloseTimeout: timeouts.deprovisionStartToCloseMs ?? '5 minutes',
    heartbeatTimeout: timeouts.deprovisionHeartbeatMs ?? DEPROVISION_HEARTBEAT_TIMEOUT_MS,
    retry: deprovisionRetry(options),
    summary: `${label}${item.resourceType} ${item.poolToken}`,
  }).deprovision;
}

/**
 * The conditional row delete, as a local activity: one short idempotent statement, run by
 * the worker that just saw the teardown complete. History records it as a marker (type
 * deleteItem, the item in its summary and result) instead of three activity events plus a
 * workflow task, which keeps Temporal's cost per reaped item at about six events.
 */
export function deleteItemStep(item: PoolItemRef, options: ReapPassOptions, label = '') {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: options.activityTimeouts?.deleteStartToCloseMs ?? '30 seconds',
    retry: DELETE_ROW_RETRY,
    summary: `${label}${item.resourceType} ${item.poolToken}`,
  }).deleteItem;
}

/** The re-check of an orphan just before its reclamation (row and platform asked again). */
export function recheckOrphanStep(item: PoolItemRef) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: RECHECK_ORPHAN_RETRY,
    summary: `recheck orphan ${item.resourceType} ${item.poolToken}`,
  }).recheckOrphan;
}
