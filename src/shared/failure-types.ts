/**
 * The one failure taxonomy: how every failure type the reaper can meet is treated. The error
 * classes (src/teardown/errors.ts, src/store/pool-store.ts) carry these names, the activity
 * boundary turns them into Temporal failures of the same type, and the workflows read this
 * table to decide retries and outcomes. Pure data: imported into the workflow sandbox too.
 *
 * - `outcome`: what the pass counts for the item (`instant_pool_reap_total{outcome}`).
 * - `retry`: whether Temporal retries the activity within the pass (something may change in
 *   seconds), or the pass gives up on the item at once.
 * - `quarantine`: whether the failure counts towards the item's quarantine. Only failures
 *   that are the item's own fault and need an operator do; a cluster that is down or
 *   misconfigured is never an item's fault.
 * - `scope`: `cluster` failures hit every item of the item's cluster alike (unreachable,
 *   credentials, privileges, TLS, not configured): they are counted per cluster, mark the
 *   cluster down for the rest of the pass and, in the reaper's table, for a cool-down, so
 *   that its items cost a pass seconds, not minutes, while other clusters are reaped.
 */
export type FailureScope = 'item' | 'cluster';
export type FailureOutcome = 'refused' | 'deprovision_err' | 'deferred';

export interface FailureTreatment {
  readonly outcome: FailureOutcome;
  readonly retry: boolean;
  readonly quarantine: boolean;
  readonly scope: FailureScope;
}

const refusal: FailureTreatment = { outcome: 'refused', retry: false, quarantine: true, scope: 'item' };
const needsOperator: FailureTreatment = {
  outcome: 'deprovision_err',
  retry: false,
  quarantine: true,
  scope: 'item',
};
const transient: FailureTreatment = {
  outcome: 'deprovision_err',
  retry: true,
  quarantine: false,
  scope: 'item',
};

export const FAILURE_TYPES = {
  /** The drop guard refused a name before anything was touched. */
  DropRefusedError: refusal,
  /** No backend for the item's resource type (mongodb, anything unknown). */
  UnsupportedResourceTypeError: refusal,
  /** Another live row carries the same pool token: tearing it down would take theirs. */
  SharedPoolTokenError: refusal,
  /** `DROP DATABASE … WITH (FORCE)` blocked by a prepared transaction, slot or subscription. */
  ForceBlockedError: needsOperator,
  /** `DROP ROLE` refused: something elsewhere still depends on the role (2BP01). */
  RoleStillReferencedError: needsOperator,
  /** A server error no rule recognises: left for an operator (and later passes). */
  BackendTeardownError: needsOperator,
  /** Object in use, lock or statement timeouts, a dropped connection mid-statement. */
  TransientTeardownError: transient,
  /** Another reaper or a provisioner transaction holds the row. */
  ItemLockedError: transient,
  /** The teardown ran but a confirming look still found objects. */
  TeardownNotConfirmedError: transient,
  /** The cluster does not answer (refused, reset, timed out, shutting down, too many connections). */
  ClusterUnreachableError: { outcome: 'deprovision_err', retry: true, quarantine: false, scope: 'cluster' },
  /** The cluster answers but refuses the reaper: login, privilege, TLS, the admin database. */
  ClusterAccessError: { outcome: 'deprovision_err', retry: false, quarantine: false, scope: 'cluster' },
  /** The item names a cluster this replica has no URL for (e.g. mid config rollout). */
  UnknownClusterError: { outcome: 'deprovision_err', retry: false, quarantine: false, scope: 'cluster' },
} as const satisfies Readonly<Record<string, FailureTreatment>>;

export type FailureType = keyof typeof FAILURE_TYPES;

/** Anything not in the table (a bug, an unexpected throw) is retried and never quarantines. */
export const UNKNOWN_FAILURE: FailureTreatment = transient;

export function treatmentOf(type: string | undefined): FailureTreatment {
  return type !== undefined && Object.hasOwn(FAILURE_TYPES, type)
    ? FAILURE_TYPES[type as FailureType]
    : UNKNOWN_FAILURE;
}

const typesWhere = (test: (t: FailureTreatment) => boolean): readonly FailureType[] =>
  (Object.keys(FAILURE_TYPES) as FailureType[]).filter((type) => test(FAILURE_TYPES[type]));

/** What `nonRetryableErrorTypes` of the deprovision activity lists. */
export const NON_RETRYABLE_TYPES: readonly FailureType[] = typesWhere((t) => !t.retry);
/** Failures counted as `refused`: the guard, the type, a shared token. */
export const REFUSAL_TYPES: readonly FailureType[] = typesWhere((t) => t.outcome === 'refused');
/** Failures that mark the item's cluster down. */
export const CLUSTER_TYPES: readonly FailureType[] = typesWhere((t) => t.scope === 'cluster');
