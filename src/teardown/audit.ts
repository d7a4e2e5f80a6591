import type { Logger } from '../logger';
import type { PoolItemRef } from '../shared/types';
import {
  DropRefusedError,
  scrubSecrets,
  TeardownError,
  UnknownClusterError,
  UnsupportedResourceTypeError,
} from './errors';

/**
 * The audit trail security teams correlate with the Postgres log: one JSON line per event,
 * the event name in `event` and as the message. `provisioner.drop` is written BEFORE every
 * destructive statement; a DROP with no preceding event is an alert. Never a URL or password.
 */
export const AUDIT_EVENTS = {
  drop: 'provisioner.drop',
  failed: 'provisioner.drop.failed',
  refused: 'provisioner.drop.refused',
} as const;

/** What a destructive statement does; the `action` field of `provisioner.drop`. */
export type DropAction =
  | 'revoke_connect'
  | 'disable_login'
  | 'terminate_backends'
  | 'drop_database'
  | 'drop_role'
  | 'acl_deluser'
  | 'unlink_keys';

/** A Map, not an object literal: the key comes from a row, and `__proto__` must not find Object.prototype. */
const RESOURCE_TYPE_NAMES: ReadonlyMap<string, string> = new Map([
  ['postgres', 'RESOURCE_TYPE_POSTGRES'],
  ['redis', 'RESOURCE_TYPE_REDIS'],
  ['mongodb', 'RESOURCE_TYPE_MONGODB'],
  ['queue', 'RESOURCE_TYPE_QUEUE'],
]);

/** `postgres` → `RESOURCE_TYPE_POSTGRES`; anything unknown → `RESOURCE_TYPE_UNSPECIFIED`. */
export function auditResourceType(resourceType: string): string {
  return RESOURCE_TYPE_NAMES.get(resourceType) ?? 'RESOURCE_TYPE_UNSPECIFIED';
}

export interface ItemAudit {
  /** Announces a destructive statement; call immediately before issuing it. */
  drop(action: DropAction, target: string, extra?: Readonly<Record<string, string | number | boolean>>): void;
  /** The announced statement (or the teardown step) failed. */
  failed(action: string, target: string, err: unknown, outcome?: string): void;
  /** The guard (or the type/cluster check) refused before anything was touched. */
  refused(err: unknown): void;
}

function errorText(err: unknown): string {
  return scrubSecrets(err instanceof Error ? err.message : String(err));
}

function refusalSite(err: unknown): string {
  if (err instanceof DropRefusedError) return err.site;
  if (err instanceof UnknownClusterError) return 'cluster';
  if (err instanceof UnsupportedResourceTypeError) return 'resource_type';
  return 'unknown';
}

/** The audit lines of one item's teardown. */
export function auditFor(log: Logger, item: PoolItemRef): ItemAudit {
  const base = {
    token: item.poolToken,
    item_id: item.id,
    provider_resource_id: item.providerResourceId,
    resource_type: auditResourceType(item.resourceType),
    backend: 'shared',
    caller: 'pool_reaper',
  };
  return {
    drop(action, target, extra = {}) {
      log.info({ event: AUDIT_EVENTS.drop, ...base, action, target, ...extra }, AUDIT_EVENTS.drop);
    },
    failed(action, target, err, outcome = 'deprovision_err') {
      log.error(
        {
          event: AUDIT_EVENTS.failed,
          ...base,
          action,
          target,
          outcome,
          error_type: err instanceof Error ? err.name : typeof err,
          retryable: err instanceof TeardownError ? err.retryable : undefined,
          error: errorText(err),
        },
        AUDIT_EVENTS.failed,
      );
    },
    refused(err) {
      log.warn(
        {
          event: AUDIT_EVENTS.refused,
          ...base,
          site: refusalSite(err),
          reason: err instanceof DropRefusedError ? err.reason : undefined,
          error_type: err instanceof Error ? err.name : typeof err,
          error: errorText(err),
        },
        AUDIT_EVENTS.refused,
      );
    },
  };
}
