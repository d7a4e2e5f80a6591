import { deleteItemActivity } from './delete-item';
import { deleteItemsActivity } from './delete-items';
import { deprovisionActivity } from './deprovision';
import type { ActivityDeps } from './deps';
import { listStaleFailedActivity } from './list-stale-failed';
import { planItemActivity } from './plan-item';
import { recheckOrphanActivity } from './recheck-orphan';
import { recordPassSummaryActivity } from './record-pass-summary';
import { reportStuckAssignedActivity } from './report-stuck-assigned';
import { recordPassFailureActivity, recordTickerStateActivity } from './ticker-state';

export type { PlatformLookup } from '../src/platform/platform-store';
export type { ActivityDeps, ActivitySettings, Teardown } from './deps';
export type { PassFailureInput } from './ticker-state';

/**
 * The reaper's activities, built from their dependencies. The keys are the activity type
 * names operators read in the Temporal UI.
 */
export function createActivities(deps: ActivityDeps) {
  return {
    listStaleFailed: listStaleFailedActivity(deps),
    deprovision: deprovisionActivity(deps),
    deleteItem: deleteItemActivity(deps),
    deleteItems: deleteItemsActivity(deps),
    reportStuckAssigned: reportStuckAssignedActivity(deps),
    recheckOrphan: recheckOrphanActivity(deps),
    planItem: planItemActivity(deps),
    recordPassSummary: recordPassSummaryActivity(deps),
    recordPassFailure: recordPassFailureActivity(deps),
    recordTickerState: recordTickerStateActivity(deps),
  };
}
