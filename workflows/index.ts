// What the worker bundles into Temporal's sandbox: deterministic code only.
export { poolReaper } from './pool-reaper';
export { reapBatch } from './reap-batch';
export { reapPass } from './reap-pass';
export { reclaimOrphans } from './reclaim-orphans';
