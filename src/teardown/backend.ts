import type { Logger } from '../logger';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import type { TeardownCallOptions } from './postgres';

/**
 * The one interface every teardown backend implements, and the plan types they share.
 * A backend is one module (postgres.ts, redis.ts, queue.ts) registered by one line in
 * registry.ts; the registry supplies the common skeleton: unsupported types, the audit of
 * refusals, and `plan` / `confirm` built from `decide` and `inspect`.
 */

/** Kinds of object a teardown touches; the `kind` of a planned object. */
export type PlannedObjectKind = 'database' | 'role' | 'keys' | 'acl_user';

/**
 * One object a teardown would touch. `exists` is what a read-only look found now, or null
 * when it could not be looked at (the item's cluster is not configured, or did not answer).
 * For `keys`, `name` is the SCAN pattern and `count` how many keys match it.
 */
export interface PlannedObject {
  readonly kind: PlannedObjectKind;
  readonly name: string;
  readonly exists: boolean | null;
  readonly count?: number;
  /** Why the teardown would leave this object alone although it exists (e.g. a shared legacy user). */
  readonly kept?: string;
}

/** The guard's answer for an item, computed without side effects (no audit line, no connection). */
export type GuardDecision =
  | { readonly allowed: true; readonly cluster: string }
  | {
      readonly allowed: false;
      /** `token`, `database_name`, `role_name`, `redis_user`, `cluster` or `resource_type`. */
      readonly site: string;
      /** The rule (`reserved`, `missing_prefix`, …); `unknown_cluster` / `unsupported` for the other checks. */
      readonly reason: string;
      /** The refusal's class name, the failure type a pass would record. */
      readonly errorType: string;
      readonly message: string;
    };

export interface TeardownBackend {
  readonly resourceType: string;
  /**
   * The guard, the cluster check and the name derivation: pure, throws the refusal a teardown
   * would throw (DropRefusedError, UnknownClusterError) and writes nothing.
   */
  decide(item: PoolItemRef): { readonly cluster: string };
  /**
   * Read-only look at every object a teardown of this item would touch (catalog queries,
   * ACL GETUSER, SCAN). Never a DDL, DEL, UNLINK or ACL DELUSER, never an audit line.
   * Call only after `decide` allowed the item.
   */
  inspect(item: PoolItemRef): Promise<PlannedObject[]>;
  /** Frees the item's infra and confirms it gone (audits every destructive call). */
  teardown(item: PoolItemRef, options?: TeardownCallOptions): Promise<TeardownResult>;
  close(): Promise<void>;
}

/** What the teardown of an item would do, as `plan` computes it (read-only). */
export interface BackendPlan {
  /** `reap`: the guard allows it (its objects may already be gone); `refuse`: the guard refuses it. */
  readonly verdict: 'reap' | 'refuse' | 'skip';
  readonly decision: GuardDecision;
  readonly cluster: string;
  readonly objects: readonly PlannedObject[];
  /** Set when the objects could not be looked at (the cluster did not answer). */
  readonly inspectError?: string;
}

/** Call options a backend accepts for logging (refusals are audited through this logger). */
export interface LogOption {
  readonly log?: Logger;
}
