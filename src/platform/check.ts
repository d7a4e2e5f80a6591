import type { Logger } from '../logger';
import type { ReaperMetrics } from '../metrics';
import type { PlatformCheckFailureReason } from '../shared/types';
import { checkPlausible, classOf, type PlausibilityFailure } from './classify';
import { type PlatformLookup, platformErrorMessage, platformErrorReason } from './platform-store';

/** Where a check ran, for the log line of a failure. */
export type PlatformCheckSite = 'classify' | 'recheck' | 'teardown';

interface CheckDeps {
  readonly platform: PlatformLookup;
  readonly metrics: ReaperMetrics;
  readonly log: Logger;
}

/** Counts a fail-closed check and logs it once. */
export function reportFailure(deps: CheckDeps, site: PlatformCheckSite, failure: PlausibilityFailure): void {
  deps.metrics.platformCheckFailures.inc({ reason: failure.reason });
  deps.log.warn(
    { event: 'pool_reaper.platform_check.failed', site, reason: failure.reason, error: failure.message },
    'platform check failed closed: nothing is treated as an orphan',
  );
}

/** Reads the inventory; any error becomes a fail-closed failure (never thrown). */
async function readInventory(deps: CheckDeps, tokens: readonly string[]) {
  try {
    return await deps.platform.inventory(tokens);
  } catch (err) {
    const failure: PlausibilityFailure = {
      reason: platformErrorReason(err),
      message: platformErrorMessage(err),
    };
    return failure;
  }
}

export type OrphanVerdict =
  | { readonly orphan: true }
  | { readonly orphan: false; readonly reason: string; readonly failure?: PlatformCheckFailureReason };

/** Asks the platform again about one token: an orphan only if the check is sound and finds no binding. */
export async function recheckToken(
  deps: CheckDeps,
  poolToken: string,
  site: Exclude<PlatformCheckSite, 'classify'>,
): Promise<OrphanVerdict> {
  const fail = (f: PlausibilityFailure): OrphanVerdict => {
    reportFailure(deps, site, f);
    return { orphan: false, reason: `platform check failed (${f.reason}): ${f.message}`, failure: f.reason };
  };
  const inventory = await readInventory(deps, [poolToken]);
  if ('reason' in inventory) return fail(inventory);
  const implausible = checkPlausible(inventory, 1);
  if (implausible) return fail(implausible);
  const cls = classOf(inventory.bindings.get(poolToken));
  return cls === 'orphan' ? { orphan: true } : { orphan: false, reason: `now ${cls} on the platform` };
}
