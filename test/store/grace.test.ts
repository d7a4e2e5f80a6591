import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ASSIGNED_SINCE_COLUMNS, isPastGrace, isStaleFailed, sinceOf } from '../../src/shared/grace';
import { staleAssignedSql, staleFailedSql } from '../../src/store/predicates';
import { adminQuery } from '../helpers/postgres';

/**
 * The grace rule in SQL (what listings, row locks and reports run) and in JavaScript must
 * agree on every row, or the reaper would list what it then refuses (or the reverse). Rows
 * are given relative to one `now`, fixed in both, so the comparison is exact.
 */
interface Row {
  readonly status: string;
  readonly assignedAgo: number | null;
  readonly createdAgo: number;
}

const NOW = new Date('2026-06-01T12:00:00.000Z');
const GRACE_MS = 10 * 60_000;

async function sqlVerdicts(rows: readonly Row[]): Promise<{ failed: boolean; assigned: boolean }[]> {
  // now() inside the fragments is the statement's clock: pin it by shifting the rows instead.
  const { rows: out } = await adminQuery<{ failed: boolean; assigned: boolean }>(
    `SELECT coalesce(${staleFailedSql('$4')}, false) AS failed, coalesce(${staleAssignedSql('$4')}, false) AS assigned
       FROM (SELECT s.status, s.n,
                    CASE WHEN s.assigned_ago IS NULL THEN NULL
                         ELSE now() - make_interval(secs => s.assigned_ago / 1000.0) END AS assigned_at,
                    now() - make_interval(secs => s.created_ago / 1000.0) AS created_at
               FROM unnest($1::text[], $2::float8[], $3::float8[]) WITH ORDINALITY
                    AS s(status, assigned_ago, created_ago, n)) p
      ORDER BY p.n`,
    [
      rows.map((r) => r.status),
      rows.map((r) => r.assignedAgo),
      rows.map((r) => r.createdAgo),
      GRACE_MS / 1000,
    ],
  );
  return out;
}

function jsVerdicts(rows: readonly Row[]): { failed: boolean; assigned: boolean }[] {
  const at = (ago: number | null) => (ago === null ? null : new Date(NOW.getTime() - ago));
  return rows.map((r) => {
    const row = { status: r.status, assigned_at: at(r.assignedAgo), created_at: at(r.createdAgo) };
    return {
      failed: isStaleFailed(row, GRACE_MS, NOW.getTime()),
      assigned:
        r.status === 'assigned' && isPastGrace(sinceOf(ASSIGNED_SINCE_COLUMNS, row), GRACE_MS, NOW.getTime()),
    };
  });
}

// Ages around the grace (well inside, just inside, well past) and far from it.
const AGES = [0, 1_000, GRACE_MS - 60_000, GRACE_MS + 60_000, 2 * GRACE_MS, 30 * 24 * 3_600_000];

describe('the grace rule', () => {
  it('gives the same verdicts in SQL and in JavaScript, with and without assigned_at', async () => {
    const rows: Row[] = [];
    for (const status of ['failed', 'assigned', 'ready'])
      for (const assignedAgo of [null, ...AGES])
        for (const createdAgo of AGES) rows.push({ status, assignedAgo, createdAgo });
    expect(await sqlVerdicts(rows)).toEqual(jsVerdicts(rows));
    // The fallback the rule exists for: a failed row without assigned_at ages by created_at.
    expect(jsVerdicts([{ status: 'failed', assignedAgo: null, createdAgo: 2 * GRACE_MS }])[0]?.failed).toBe(
      true,
    );
  });

  it('agrees on random rows', async () => {
    const row = fc.record({
      status: fc.constantFrom('failed', 'assigned', 'ready'),
      assignedAgo: fc.option(fc.integer({ min: 0, max: 4 * GRACE_MS }), { nil: null }),
      // Whole minutes away from the grace: clock drift between statement and test is not the point.
      createdAgo: fc.integer({ min: 0, max: 40 }).map((m) => m * 60_000 + 30_000),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), async (rows) => {
        const safe = rows.map((r) => ({
          ...r,
          assignedAgo: r.assignedAgo === null ? null : Math.round(r.assignedAgo / 60_000) * 60_000 + 30_000,
        }));
        expect(await sqlVerdicts(safe)).toEqual(jsVerdicts(safe));
      }),
      { numRuns: 25 },
    );
  });
});
