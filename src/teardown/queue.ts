import type { Logger } from '../logger';
import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor, type ItemAudit } from './audit';
import type { TeardownBackend } from './backend';
import { assertSafeToken } from './drop-guard';
import { isRefusal, UnknownClusterError } from './errors';

/**
 * Queue (shared NATS) items. The shared NATS server keeps no per-item state (domain.md: "a
 * shared NATS item has no per-item state"): the provisioner creates no subject, stream,
 * account or user on it for an item. The per-item credential the provisioner (and `seed`)
 * writes lives only in the row's `connection_url`, so deleting the row is what frees it, and
 * a teardown has nothing to drop and nothing to connect to.
 *
 * The item still passes the same checks as every other type before its row may go: the drop
 * guard on its token (a malformed or reserved token names something that is not a pool item,
 * so the row is kept for an operator) and the cluster check (an id this worker has no
 * configuration for may be a deployment it does not know, whose NATS might keep state: the
 * row is kept, never treated as the default cluster). Both are pure: no connection opens.
 */

export interface QueueBackendOptions {
  /**
   * Cluster ids a queue item may name. The shared NATS of a cluster sits beside its shared
   * Postgres and Redis, so by default these are the ids configured for either of them.
   */
  readonly clusters: ReadonlySet<string>;
  readonly log: Logger;
}

export interface QueueBackend extends TeardownBackend {
  preflight(item: PoolItemRef, options?: { log?: Logger }): { cluster: string };
}

export function createQueueBackend(options: QueueBackendOptions): QueueBackend {
  /** The guard and the cluster check, pure: throws the refusal, audits nothing. */
  function decide(item: PoolItemRef): { cluster: string } {
    assertSafeToken(item.poolToken);
    const cluster = clusterOf(item.providerResourceId);
    if (!options.clusters.has(cluster)) throw new UnknownClusterError(cluster, 'queue');
    return { cluster };
  }
  function plan(item: PoolItemRef, audit: ItemAudit): { cluster: string } {
    try {
      return decide(item);
    } catch (err) {
      if (isRefusal(err)) audit.refused(err);
      throw err;
    }
  }
  return {
    resourceType: 'queue',
    decide,
    preflight(item, callOptions = {}) {
      return plan(item, auditFor(callOptions.log ?? options.log, item));
    },
    // Nothing per item lives on the shared NATS: a teardown touches no object.
    async inspect(item) {
      decide(item);
      return [];
    },
    async teardown(item, callOptions = {}) {
      const { cluster } = plan(item, auditFor(callOptions.log ?? options.log, item));
      return teardownQueueItem(item, cluster);
    },
    async close() {},
  };
}

/**
 * The result of a queue item's teardown once its checks passed: nothing to drop, nothing
 * left, confirmed at once (the credential goes with the row).
 */
export function teardownQueueItem(
  item: PoolItemRef,
  cluster = clusterOf(item.providerResourceId),
): TeardownResult {
  return {
    resourceType: item.resourceType,
    poolToken: item.poolToken,
    cluster,
    dropped: [],
    alreadyGone: [],
    remaining: [],
    kept: [],
    confirmedFreed: true,
  };
}
