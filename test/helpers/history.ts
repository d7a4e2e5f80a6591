import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

export interface ActivityRecord {
  readonly activity: string;
  readonly itemId: string | undefined;
  readonly poolToken: string | undefined;
  readonly scheduledEventId: number;
  readonly startedEventId: number | undefined;
  readonly completedEventId: number | undefined;
  readonly failedEventId: number | undefined;
  readonly attempts: number | undefined;
  readonly scheduledAt: number;
  readonly closedAt: number | undefined;
}

type History = temporal.api.history.v1.IHistory;

const toMs = (t: temporal.api.history.v1.IHistoryEvent['eventTime']) =>
  t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;

/**
 * Every activity in a history with its item and the ids of its events. Regular activities
 * name their item in their input; local activities (one marker event) in their result.
 */
export function activityRecords(history: History): ActivityRecord[] {
  const byScheduled = new Map<number, ActivityRecord>();
  for (const event of history.events ?? []) {
    const id = Number(event.eventId);
    const s = event.activityTaskScheduledEventAttributes;
    if (s) {
      const input = s.input?.payloads?.[0];
      const arg = input
        ? (defaultPayloadConverter.fromPayload(input) as { item?: { id?: string; poolToken?: string } })
        : undefined;
      byScheduled.set(id, {
        activity: s.activityType?.name ?? '',
        itemId: arg?.item?.id,
        poolToken: arg?.item?.poolToken,
        scheduledEventId: id,
        startedEventId: undefined,
        completedEventId: undefined,
        failedEventId: undefined,
        attempts: undefined,
        scheduledAt: toMs(event.eventTime),
        closedAt: undefined,
      });
      continue;
    }
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      // A local activity (deleteItem) is one marker: its type in `data`, the item in its result.
      const decode = (key: string) => {
        const payload = marker.details?.[key]?.payloads?.[0];
        return payload
          ? (defaultPayloadConverter.fromPayload(payload) as Record<string, unknown>)
          : undefined;
      };
      const data = decode('data') as { activity_type?: string; attempt?: number } | undefined;
      const result = decode('result') as
        | { itemId?: string; poolToken?: string; items?: { itemId?: string; poolToken?: string }[] }
        | undefined;
      // A batched delete (deleteItems) is one marker for several rows: one record per row.
      const rows = result?.items ?? [result];
      rows.forEach((row, n) => {
        byScheduled.set(rows.length > 1 ? id + n / rows.length : id, {
          activity: data?.activity_type === 'deleteItems' ? 'deleteItem' : (data?.activity_type ?? ''),
          itemId: row?.itemId,
          poolToken: row?.poolToken,
          scheduledEventId: id,
          startedEventId: id,
          completedEventId: marker.failure ? undefined : id,
          failedEventId: marker.failure ? id : undefined,
          attempts: data?.attempt ?? undefined,
          scheduledAt: toMs(event.eventTime),
          closedAt: toMs(event.eventTime),
        });
      });
      continue;
    }
    const started = event.activityTaskStartedEventAttributes;
    const completed = event.activityTaskCompletedEventAttributes;
    const failed = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const ref = Number(
      started?.scheduledEventId ?? completed?.scheduledEventId ?? failed?.scheduledEventId ?? 0,
    );
    const record = byScheduled.get(ref);
    if (!record) continue;
    byScheduled.set(ref, {
      ...record,
      ...(started ? { startedEventId: id, attempts: started.attempt ?? undefined } : {}),
      ...(completed ? { completedEventId: id, closedAt: toMs(event.eventTime) } : {}),
      ...(failed ? { failedEventId: id, closedAt: toMs(event.eventTime) } : {}),
    });
  }
  return [...byScheduled.values()];
}

/** Ids of the child workflows a history started (a pass's batches). */
export function childWorkflowIds(history: History): string[] {
  return (history.events ?? [])
    .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId)
    .filter((id): id is string => typeof id === 'string');
}

/** Activities of a workflow and of every child it started, recursively. */
export async function historyOrder(handle: WorkflowHandle): Promise<ActivityRecord[]> {
  const history = await handle.fetchHistory();
  const records = activityRecords(history);
  for (const id of childWorkflowIds(history))
    records.push(...(await historyOrder(handle.client.getHandle(id))));
  return records;
}
