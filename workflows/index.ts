// What the worker bundles into Temporal's sandbox: deterministic code only.
export { poolReaper } from './pool-reaper';
export { reapPass } from './reap-pass';
export { reapedTokensIndex } from './reaped-tokens';
export { reclaimOrphans } from './reclaim-orphans';
