import type { PassRules } from '../src/shared/types';
import { type ActivitySettings, DEFAULT_ORPHAN_GRACE_MS } from './deps';

/**
 * The rules an activity applies: the pass's, recorded in its input, so that every replica
 * serving one pass lists, re-checks and reports alike; this worker's own config only for a
 * pass that carries none (started by an older ticker or Schedule, or replayed from before).
 */
export function passRules(settings: ActivitySettings, rules: PassRules | undefined): PassRules {
  return (
    rules ?? {
      failedGraceMs: settings.failedGraceMs,
      batchLimit: settings.batchLimit,
      stuckAssignedGraceMs: settings.stuckAssignedGraceMs,
      orphanGraceMs: settings.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS,
    }
  );
}
