import type { TeardownResult } from '../shared/types';

/** What a teardown knows about one object it looked at. */
export type ObjectState = 'unknown' | 'present' | 'dropped' | 'absent' | 'kept';

/**
 * The running account of one teardown: the result it returns on success and the `partial`
 * it attaches to an error. Objects not yet confirmed absent count as remaining.
 */
export class TeardownLedger {
  private readonly objects = new Map<string, { state: ObjectState; note?: string }>();

  constructor(
    readonly resourceType: string,
    readonly poolToken: string,
    readonly cluster: string,
  ) {}

  set(object: string, state: ObjectState, note?: string): void {
    this.objects.set(object, note === undefined ? { state } : { state, note });
  }

  state(object: string): ObjectState | undefined {
    return this.objects.get(object)?.state;
  }

  result(confirmedFreed: boolean): TeardownResult {
    const pick = (...states: ObjectState[]) =>
      [...this.objects]
        .filter(([, o]) => states.includes(o.state))
        .map(([name, o]) => (o.note === undefined ? name : `${name} (${o.note})`));
    return {
      resourceType: this.resourceType,
      poolToken: this.poolToken,
      cluster: this.cluster,
      dropped: pick('dropped'),
      alreadyGone: pick('absent'),
      remaining: pick('present', 'unknown'),
      kept: pick('kept'),
      confirmedFreed,
    };
  }
}
