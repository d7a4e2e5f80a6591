import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { closedFailuresQuery, failureClaimKey, schedulePauseReader } from '../../src/trigger/schedule-watch';

/** A client whose Schedule describe answers from a list: a boolean is `state.paused`, an Error is thrown. */
function fakeClient(answers: (boolean | Error)[]): { client: Client; calls: () => number } {
  let calls = 0;
  const client = {
    schedule: {
      getHandle: () => ({
        describe: async () => {
          const answer = answers[Math.min(calls++, answers.length - 1)];
          if (answer instanceof Error) throw answer;
          return { state: { paused: answer } };
        },
      }),
    },
  } as unknown as Client;
  return { client, calls: () => calls };
}

describe('schedule mode bookkeeping (schedule-watch)', () => {
  it('queries only the Schedule’s closed reapPass runs that did not complete, since a time', () => {
    expect(closedFailuresQuery("it's", new Date('2026-11-30T07:00:00Z'))).toBe(
      "WorkflowType = 'reapPass' AND TemporalScheduledById = 'it\\'s' " +
        "AND ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled') " +
        "AND CloseTime > '2026-11-30T07:00:00.000Z'",
    );
    // Never a pass id: those keys count pass summaries in the same table.
    expect(failureClaimKey('r1')).toBe('failed-run:r1');
  });

  it('the paused reader caches, and keeps the last known value when Temporal does not answer', async () => {
    const { client, calls } = fakeClient([true, new Error('unavailable'), false]);
    const cached = schedulePauseReader(client, 'x', 60_000);
    expect(await cached()).toBe(true);
    expect(await cached()).toBe(true);
    expect(calls()).toBe(1);

    const fresh = fakeClient([true, new Error('unavailable'), false]);
    const read = schedulePauseReader(fresh.client, 'x', 0);
    expect(await read()).toBe(true);
    expect(await read()).toBe(true); // describe failed: last known
    expect(await read()).toBe(false);
  });

  it('no series before the first answer', async () => {
    const { client } = fakeClient([new Error('unavailable')]);
    expect(await schedulePauseReader(client, 'x', 0)()).toBeUndefined();
  });
});
