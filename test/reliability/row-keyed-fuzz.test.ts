import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_KEYS } from '../../activities/deps';
import { createMetrics } from '../../src/metrics';
import { tallyAssigned } from '../../src/platform/classify';
import { countsByType } from '../../src/shared/keyed';
import { ASSIGNED_CLASSES, type PassSummary, RESOURCE_TYPES } from '../../src/shared/types';
import { PoolStore, withKnownTypes } from '../../src/store/pool-store';
import { auditResourceType } from '../../src/teardown/audit';
import { snapshotReader } from '../../src/worker';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { seedFor } from '../helpers/prng';
import { recordFigures } from '../helpers/results';

/**
 * Issue 13, item 7: every lookup keyed by a row's resource_type, fuzzed with fast-check through
 * the real code: the classification tally, the counts per type, the shared state written to
 * and read back from the real provisioner database (jsonb), the gauges and counters scraped
 * from the real metrics registry, and the audit's type names. Types include every name
 * Object.prototype carries and arbitrary Unicode. A model built on Maps says what each must
 * show; Object.prototype must come out of every run unchanged.
 */

const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);
/** Rows hold text: never NUL (Postgres text cannot), any other character. */
const typeArb = fc
  .oneof(
    { weight: 3, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES, 'prototype', ...RESOURCE_TYPES) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }) },
  )
  .filter((t) => !t.includes('\u0000'));
const classArb = fc.constantFrom(...ASSIGNED_CLASSES, 'weird');

/** Label values as prom-client escapes them in the text format. */
const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

describe('row data as keys: fuzzed through classification, state, metrics and audit', () => {
  let db: TestDatabase;
  let store: PoolStore;
  let seed: number;

  beforeAll(async () => {
    db = await createTestDatabase('keyed_fuzz');
    store = new PoolStore(db.pool);
    seed = seedFor('row-keyed-fuzz');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('counts every type under its own name and never touches Object.prototype', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const startedAt = Date.now();
    let runs = 0;
    let rowsSeen = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ resourceType: typeArb, cls: classArb, n: fc.integer({ min: 1, max: 5 }) }), {
          maxLength: 12,
        }),
        fc.boolean(),
        async (rows, checkFailed) => {
          runs++;
          rowsSeen += rows.length;
          // The model: Maps only.
          const model = new Map<string, Map<string, number>>();
          for (const type of RESOURCE_TYPES) model.set(type, new Map(ASSIGNED_CLASSES.map((c) => [c, 0])));
          for (const row of rows) {
            const perType = model.get(row.resourceType) ?? new Map(ASSIGNED_CLASSES.map((c) => [c, 0]));
            model.set(row.resourceType, perType);
            const known = (ASSIGNED_CLASSES as readonly string[]).includes(row.cls) ? row.cls : 'unknown';
            const cls = checkFailed && known === 'orphan' ? 'unknown' : known;
            perType.set(cls, (perType.get(cls) ?? 0) + row.n);
          }

          // The real tally, then the real shared state (jsonb) and the real gauges.
          const tally = tallyAssigned(rows, checkFailed);
          await store.writeState(STATE_KEYS.stuckAssigned, { stuck: tally.stuck, classes: tally.classes });
          const metrics = createMetrics(snapshotReader(store, 600_000), { defaultMetrics: false });
          const text = await metrics.registry.metrics();

          for (const [type, classes] of model) {
            expect(Object.getOwnPropertyDescriptor(tally.classes, type)?.value).toEqual(
              Object.fromEntries(classes),
            );
            for (const [cls, n] of classes) {
              expect(text).toContain(
                `instant_pool_assigned_items{resource_type="${escapeLabel(type)}",class="${cls}"} ${n}`,
              );
            }
            const orphans = classes.get('orphan') ?? 0;
            if (checkFailed) {
              expect(text).not.toContain(`instant_pool_stuck_assigned{resource_type="${escapeLabel(type)}"}`);
            } else {
              expect(text).toContain(
                `instant_pool_stuck_assigned{resource_type="${escapeLabel(type)}"} ${orphans}`,
              );
            }
          }
          const series = text.split('\n').filter((l) => l.startsWith('instant_pool_assigned_items{'));
          expect(series).toHaveLength(model.size * ASSIGNED_CLASSES.length);

          // Counts per type and the pass counters take the same keys.
          const perType = new Map<string, number>();
          for (const row of rows) perType.set(row.resourceType, (perType.get(row.resourceType) ?? 0) + row.n);
          const counts = withKnownTypes(countsByType([...perType]));
          for (const [type, n] of perType)
            expect(Object.getOwnPropertyDescriptor(counts, type)?.value).toBe(n);
          const summary = {
            outcomes: [...perType].map(([resourceType, count]) => ({
              resourceType,
              outcome: 'refused',
              count,
            })),
            durationMs: 1,
          } as unknown as PassSummary;
          metrics.recordPass(summary);
          const reaped = await metrics.registry.getSingleMetricAsString('instant_pool_reap_total');
          for (const [type, n] of perType) {
            expect(reaped).toContain(
              `instant_pool_reap_total{resource_type="${escapeLabel(type)}",status="failed",outcome="refused"} ${n}`,
            );
          }

          for (const row of rows) {
            const name = auditResourceType(row.resourceType);
            expect(typeof name).toBe('string');
            expect(name).toMatch(/^RESOURCE_TYPE_[A-Z]+$/);
          }
          expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
        },
      ),
      { numRuns: 300, seed },
    );
    recordFigures({
      scenario: 'row-keyed lookups fuzz (fast-check)',
      runs,
      items: rowsSeen,
      faults: `${runs} populations of resource types incl. ${PROTOTYPE_NAMES.length} Object.prototype names and arbitrary Unicode`,
      wrongfulDrops: 0,
      leaks: 0,
      rowsLost: 0,
      durationMs: Date.now() - startedAt,
    });
  });
});
