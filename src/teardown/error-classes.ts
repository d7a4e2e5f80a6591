import { type FailureTreatment, treatmentOf } from '../shared/failure-types';
import type { TeardownResult } from '../shared/types';

/**
 * Typed teardown failures. The class name is the failure type Temporal records, so every
 * class sets `name` to its own name; how each type is treated (retried within the pass,
 * counted towards quarantine, scoped to the item or to its whole cluster) is read from the
 * one table in src/shared/failure-types.ts, never restated here.
 *
 * Messages never carry a connection string: driver messages pass through `scrubSecrets`.
 */
export type TeardownErrorCategory = 'transient' | 'operator' | 'cluster';

export interface TeardownErrorOptions {
  /** What this run had done before it failed (e.g. the role still present after a failed database drop). */
  readonly partial?: TeardownResult;
  /** SQLSTATE, Redis reply prefix or Node errno of the underlying failure, when there was one. */
  readonly code?: string;
}

export class TeardownError extends Error {
  override readonly name: string = 'TeardownError';
  readonly partial?: TeardownResult;
  readonly code?: string;

  constructor(message: string, options: TeardownErrorOptions = {}) {
    super(message);
    if (options.partial !== undefined) this.partial = options.partial;
    if (options.code !== undefined) this.code = options.code;
  }

  get treatment(): FailureTreatment {
    return treatmentOf(this.name);
  }

  /** Whether repeating the same teardown soon (within the pass) can help. */
  get retryable(): boolean {
    return this.treatment.retry;
  }

  /** `cluster`: the item's whole cluster; `operator`: a person must act on the item; `transient`: retry. */
  get category(): TeardownErrorCategory {
    const t = this.treatment;
    return t.scope === 'cluster' ? 'cluster' : t.quarantine ? 'operator' : 'transient';
  }
}

/** Object in use after the in-activity retries, lock or statement timeouts: this item, soon again. */
export class TransientTeardownError extends TeardownError {
  override readonly name: string = 'TransientTeardownError';
}

/** The item's cluster does not answer: refused, reset, timed out, shutting down, out of connections. */
export class ClusterUnreachableError extends TeardownError {
  override readonly name: string = 'ClusterUnreachableError';
}

/** The item's cluster answers but refuses the reaper: login, privilege, TLS, the admin database. */
export class ClusterAccessError extends TeardownError {
  override readonly name: string = 'ClusterAccessError';
}

/** Where in the guard a name was refused. */
export type RefusalSite = 'token' | 'database_name' | 'role_name' | 'redis_user';

/** The drop guard refused a name before anything was touched. Never retryable. */
export class DropRefusedError extends TeardownError {
  override readonly name: string = 'DropRefusedError';
  constructor(
    readonly site: RefusalSite,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** `mongodb` (no backend that could be tested for real yet) and any type this worker does not know. */
export class UnsupportedResourceTypeError extends TeardownError {
  override readonly name: string = 'UnsupportedResourceTypeError';
  constructor(
    readonly resourceType: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The item names a cluster id with no configured URL: never sent to a default cluster instead.
 * Scoped to the cluster (a replica mid config rollout may lack it), so never quarantining.
 */
export class UnknownClusterError extends TeardownError {
  override readonly name: string = 'UnknownClusterError';
  constructor(
    readonly cluster: string,
    readonly backend: string,
  ) {
    super(
      `no ${backend} URL is configured for cluster ${JSON.stringify(cluster.slice(0, 80))}; ` +
        'refusing to fall back to another cluster',
    );
  }
}

/** `DROP DATABASE ... WITH (FORCE)` blocked by prepared transactions, logical replication slots or subscriptions. */
export class ForceBlockedError extends TeardownError {
  override readonly name: string = 'ForceBlockedError';
}

/** `DROP ROLE` refused because objects or privileges elsewhere still depend on the role (2BP01). */
export class RoleStillReferencedError extends TeardownError {
  override readonly name: string = 'RoleStillReferencedError';
}

/** A server error no rule above recognises: not retried blindly, left for an operator (and the next pass). */
export class BackendTeardownError extends TeardownError {
  override readonly name: string = 'BackendTeardownError';
}

/** The refusals: raised before any connection opens, audited as `provisioner.drop.refused`. */
export function isRefusal(
  err: unknown,
): err is DropRefusedError | UnsupportedResourceTypeError | UnknownClusterError {
  return (
    err instanceof DropRefusedError ||
    err instanceof UnsupportedResourceTypeError ||
    err instanceof UnknownClusterError
  );
}
