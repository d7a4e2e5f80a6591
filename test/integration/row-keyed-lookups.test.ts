import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_EVENTS } from '../../src/teardown/audit';
import { createTestPlatform, type TestPlatform } from '../helpers/platform';
import { createReaperHarness, type ReaperHarness } from '../helpers/reaper';
import { insertRow } from '../helpers/rows';

/**
 * Issue 13, item 7: `resource_type` comes from a row, so `__proto__`, `constructor` or
 * `toString` are just types. A real pass (Temporal, Postgres, a platform database) over such
 * rows must count them under their own names and leave Object.prototype alone: the
 * activities run in this process, so pollution would show here.
 */

const HOUR = 3_600_000;
const PROTO_KEYS = ['__proto__', 'constructor', 'toString'] as const;

/** An own property of a record parsed from JSON (a `__proto__` key included). */
const own = (record: object | undefined, key: string): unknown =>
  record === undefined ? undefined : Object.getOwnPropertyDescriptor(record, key)?.value;

describe('row data used as keys: __proto__, constructor, toString', () => {
  let h: ReaperHarness;
  let platform: TestPlatform;

  beforeAll(async () => {
    platform = await createTestPlatform('proto');
    await platform.addBackgroundBinding();
    h = await createReaperHarness('proto_keys', { platformDatabaseUrl: platform.url });
  });
  afterAll(async () => {
    await h?.close();
    await platform?.drop();
  });

  it('counts them under their own names in the summary and the metrics; Object.prototype is untouched', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const objectBefore = Object.getOwnPropertyNames(Object).sort();
    for (const type of PROTO_KEYS) {
      await insertRow(h.db.pool, { resourceType: type, status: 'assigned', ageMs: 2 * HOUR });
    }
    const bound = await insertRow(h.db.pool, {
      resourceType: '__proto__',
      status: 'assigned',
      ageMs: 2 * HOUR,
    });
    await platform.bind(bound.poolToken);
    const failed = await insertRow(h.db.pool, { resourceType: '__proto__', status: 'failed', ageMs: HOUR });

    const { summary } = await h.runPass();

    try {
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
      expect(Object.getOwnPropertyNames(Object).sort()).toEqual(objectBefore);
      expect(({} as Record<string, unknown>)['orphan']).toBeUndefined();
    } finally {
      // Undo what a polluting build would have done, so one failure does not spread.
      for (const name of Object.getOwnPropertyNames(Object.prototype)) {
        if (!prototypeBefore.includes(name)) delete (Object.prototype as Record<string, unknown>)[name];
      }
    }

    expect(summary.platformCheck).toEqual({ status: 'ok' });
    expect(own(summary.assignedClasses, '__proto__')).toEqual({
      bound_live: 1,
      bound_terminal: 0,
      orphan: 1,
      unknown: 0,
    });
    for (const type of ['constructor', 'toString']) {
      expect(own(summary.assignedClasses, type)).toEqual({
        bound_live: 0,
        bound_terminal: 0,
        orphan: 1,
        unknown: 0,
      });
    }
    for (const type of PROTO_KEYS) expect(own(summary.stuckAssigned, type)).toBe(1);
    expect(own(summary.stuckAssigned, 'postgres')).toBe(0);

    const stuck = await h.metrics.registry.getSingleMetricAsString('instant_pool_stuck_assigned');
    const classes = await h.metrics.registry.getSingleMetricAsString('instant_pool_assigned_items');
    for (const type of PROTO_KEYS) {
      expect(stuck).toContain(`instant_pool_stuck_assigned{resource_type="${type}"} 1`);
      expect(classes).toContain(`instant_pool_assigned_items{resource_type="${type}",class="orphan"} 1`);
    }
    expect(classes).toContain('instant_pool_assigned_items{resource_type="__proto__",class="bound_live"} 1');

    // The failed row: refused as an unsupported type, audited as such, counted under its name.
    expect(summary.refused).toBe(1);
    expect(summary.outcomes).toEqual([{ resourceType: '__proto__', outcome: 'refused', count: 1 }]);
    const refusal = h.log.events(AUDIT_EVENTS.refused).find((e) => e['token'] === failed.poolToken);
    expect(refusal).toMatchObject({ site: 'resource_type', resource_type: 'RESOURCE_TYPE_UNSPECIFIED' });
    const reaped = await h.metrics.registry.getSingleMetricAsString('instant_pool_reap_total');
    expect(reaped).toContain(
      'instant_pool_reap_total{resource_type="__proto__",status="failed",outcome="refused"} 1',
    );
  });
});
