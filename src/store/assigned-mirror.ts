import type pg from 'pg';
import type { AssignedItemRef } from '../shared/types';
import { inTransaction } from './checked-out-client';
import { ASSIGNED_SINCE_SQL, olderThanSql, staleAssignedSql } from './predicates';

/**
 * The reaper's own record of stuck assigned items and of what the platform said about each
 * (tables `pool_reaper_assigned` and `pool_reaper_sweep`, migration 6). Nothing here touches
 * a provisioner column: pool_items is only read.
 *
 * A *sweep* classifies every stuck assigned item in bounded slices, spread over as many
 * passes as it needs:
 *  - sync: walk pool_items by id, a slice at a time; add the stuck assigned items to the
 *    mirror (a changed assigned_at, token or type starts the item over as `unknown`) and drop
 *    mirror rows whose item is gone or no longer stuck;
 *  - scan: walk the platform's `resources` by id, a slice at a time; every item a binding
 *    names that is unclassified, an orphan, or due for re-verification is written as bound
 *    (live or terminal), with its next re-verification time;
 *  - end: an item that needed a verdict when the scan began (unclassified, an orphan, or due)
 *    and that no slice of the whole scan found bound is an orphan.
 * So a verdict "orphan" always rests on a complete read of `resources` that began after the
 * item was stuck, and a bound item costs one write per re-verification interval, not per pass.
 */

export type SweepPhase = 'sync' | 'scan';

export interface SweepState {
  readonly sweep: number;
  readonly phase: SweepPhase;
  /** The last id done in this phase (pool_items in sync, resources in scan); null: from the start. */
  readonly cursor: string | null;
  readonly startedAt: Date;
  readonly scanStartedAt: Date | null;
  readonly resourcesSeen: number;
  readonly bindingsSeen: number;
  /** Slice sizes, adapted to how long slices take. */
  readonly syncRows: number;
  readonly scanRows: number;
  readonly completedSweep: number | null;
  readonly completedAt: Date | null;
}

/** A stuck assigned item the mirror holds as an orphan, as the orphan audit lists it. */
export interface MirrorOrphan extends AssignedItemRef {
  readonly quarantined: boolean;
}

export interface ClassCount {
  readonly resourceType: string;
  readonly cls: string;
  readonly n: number;
}

/** Arbitrary but fixed: one sweep step at a time across replicas and retried attempts. */
const SWEEP_LOCK_KEY = 0x706f6f73; // "poos"

export const INITIAL_SLICE_ROWS = 10_000;

const secs = (ms: number) => ms / 1000;

/** assigned_at as ISO 8601 in UTC with microseconds, so it compares exactly when sent back. */
const ASSIGNED_AT_TEXT = `to_char(p.assigned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

interface SweepRow {
  sweep: string;
  phase: SweepPhase;
  cursor: string | null;
  started_at: Date;
  scan_started_at: Date | null;
  resources_seen: string;
  bindings_seen: string;
  sync_rows: number;
  scan_rows: number;
  completed_sweep: string | null;
  completed_at: Date | null;
}

function toState(row: SweepRow): SweepState {
  return {
    sweep: Number(row.sweep),
    phase: row.phase,
    cursor: row.cursor,
    startedAt: row.started_at,
    scanStartedAt: row.scan_started_at,
    resourcesSeen: Number(row.resources_seen),
    bindingsSeen: Number(row.bindings_seen),
    syncRows: row.sync_rows,
    scanRows: row.scan_rows,
    completedSweep: row.completed_sweep === null ? null : Number(row.completed_sweep),
    completedAt: row.completed_at,
  };
}

/** The mirror's SQL, on one client inside one transaction. */
export class AssignedMirror {
  constructor(
    private readonly client: pg.PoolClient,
    /** This transaction holds the sweep lock: it may advance the sweep. */
    readonly leader: boolean,
  ) {}

  /**
   * Runs `fn` in one transaction on the provisioner database. Only the holder of the sweep
   * lock (a transaction-scoped advisory lock) is the `leader`; another concurrent caller (a
   * retried attempt whose first one still runs) may only read.
   */
  static async run<T>(pool: pg.Pool, fn: (mirror: AssignedMirror) => Promise<T>): Promise<T> {
    return inTransaction(pool, async (client) => {
      // Slices are bounded, so no statement here should take long; this keeps one that does
      // (a locked table, a stalled disk) well inside the activity's own timeout.
      await client.query("SET LOCAL statement_timeout = '20s'");
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1) AS locked',
        [SWEEP_LOCK_KEY],
      );
      return fn(new AssignedMirror(client, rows[0]?.locked === true));
    });
  }

  /** The sweep in progress (the first one is created on first use). */
  async readSweep(): Promise<SweepState> {
    const { rows } = await this.client.query<SweepRow>('SELECT * FROM pool_reaper_sweep FOR UPDATE');
    if (rows[0]) return toState(rows[0]);
    const created = await this.client.query<SweepRow>(
      `INSERT INTO pool_reaper_sweep (sweep, phase, cursor, started_at, sync_rows, scan_rows)
       VALUES (1, 'sync', NULL, now(), $1, $1)
       ON CONFLICT (singleton) DO UPDATE SET updated_at = now()
       RETURNING *`,
      [INITIAL_SLICE_ROWS],
    );
    return toState(created.rows[0]!);
  }

  /** The sweep in progress without locking it (a follower must not wait for the leader). */
  async peekSweep(): Promise<SweepState | undefined> {
    const { rows } = await this.client.query<SweepRow>('SELECT * FROM pool_reaper_sweep');
    return rows[0] ? toState(rows[0]) : undefined;
  }

  async saveSweep(state: SweepState): Promise<void> {
    await this.client.query(
      `UPDATE pool_reaper_sweep
          SET sweep = $1, phase = $2, cursor = $3, started_at = $4, scan_started_at = $5,
              resources_seen = $6, bindings_seen = $7, sync_rows = $8, scan_rows = $9,
              completed_sweep = $10, completed_at = $11, updated_at = now()`,
      [
        state.sweep,
        state.phase,
        state.cursor,
        state.startedAt,
        state.scanStartedAt,
        state.resourcesSeen,
        state.bindingsSeen,
        state.syncRows,
        state.scanRows,
        state.completedSweep,
        state.completedAt,
      ],
    );
  }

  /** The database's clock: every time compared with assigned_at or verify_after comes from it. */
  async now(): Promise<Date> {
    const { rows } = await this.client.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return rows[0]!.now;
  }

  /**
   * One sync slice: up to `limit` pool_items rows after `after`, by id. Their stuck assigned
   * items enter the mirror (or start over as `unknown` when their assigned_at, token or type
   * changed); mirror rows in the same id range whose item is not among them are dropped.
   * The last slice (fewer rows than asked) also drops mirror rows past the table's last id.
   */
  async syncSlice(
    after: string | null,
    limit: number,
    graceMs: number,
  ): Promise<{ rows: number; lastId: string | null; done: boolean }> {
    const { rows } = await this.client.query<{ last_id: string | null; n: string }>(
      `WITH slice AS (
         SELECT id, resource_type, pool_token, status, assigned_at FROM pool_items
          WHERE $1::uuid IS NULL OR id > $1::uuid
          ORDER BY id LIMIT $2
       ), stuck AS (
         SELECT id, resource_type, pool_token, assigned_at FROM slice p
          WHERE ${staleAssignedSql('$3')}
       ), bounds AS (
         SELECT (SELECT id FROM slice ORDER BY id DESC LIMIT 1) AS last_id,
                (SELECT count(*) FROM slice) AS n
       ), changed AS (
         -- Only rows that differ are written: a steady sync slice writes nothing.
         UPDATE pool_reaper_assigned m
            SET pool_token = s.pool_token, token_key = lower(s.pool_token), resource_type = s.resource_type,
                assigned_at = s.assigned_at, class = 'unknown', seen_sweep = NULL, verified_at = NULL,
                verify_after = NULL
           FROM stuck s
          WHERE m.item_id = s.id
            AND (m.assigned_at <> s.assigned_at OR m.pool_token <> s.pool_token
                 OR m.resource_type <> s.resource_type)
         RETURNING 1
       ), added AS (
         INSERT INTO pool_reaper_assigned (item_id, pool_token, token_key, resource_type, assigned_at)
         SELECT id, pool_token, lower(pool_token), resource_type, assigned_at FROM stuck s
          WHERE NOT EXISTS (SELECT 1 FROM pool_reaper_assigned m WHERE m.item_id = s.id)
         ON CONFLICT (item_id) DO NOTHING
         RETURNING 1
       ), gone AS (
         DELETE FROM pool_reaper_assigned m
          WHERE ($1::uuid IS NULL OR m.item_id > $1::uuid)
            AND (m.item_id <= (SELECT last_id FROM bounds) OR (SELECT n FROM bounds) < $2)
            AND NOT EXISTS (SELECT 1 FROM stuck s WHERE s.id = m.item_id)
         RETURNING 1
       )
       SELECT last_id::text AS last_id, n, (SELECT count(*) FROM changed) AS changed,
              (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM gone) AS gone
         FROM bounds`,
      [after, limit, secs(graceMs)],
    );
    const n = Number(rows[0]?.n ?? 0);
    return { rows: n, lastId: rows[0]?.last_id ?? null, done: n < limit };
  }

  /**
   * Records one scan slice's bindings: every mirror item a token names (compared with
   * lower() on both sides) that needs a verdict is now bound, live when any of its bindings
   * in this sweep is live, and due again after `reverifyMs` (± 25 %, so a million items
   * classified together do not fall due together). Items already confirmed, and not due,
   * are left alone: no write.
   */
  async recordBindings(
    sweep: number,
    bindings: readonly { readonly token: string; readonly live: boolean }[],
    reverifyMs: number,
  ): Promise<number> {
    if (bindings.length === 0) return 0;
    const { rowCount } = await this.client.query(
      `WITH found AS (
         SELECT lower(t) AS token_key, bool_or(l) AS live
           FROM unnest($1::text[], $2::boolean[]) AS f(t, l)
          GROUP BY 1
       )
       UPDATE pool_reaper_assigned m
          SET class = CASE WHEN f.live OR (m.seen_sweep = $3 AND m.class = 'bound_live')
                           THEN 'bound_live' ELSE 'bound_terminal' END,
              seen_sweep = $3,
              verified_at = clock_timestamp(),
              verify_after = clock_timestamp() + make_interval(secs => $4 * (0.75 + random() * 0.5))
         FROM found f
        WHERE m.token_key = f.token_key
          AND (m.class IN ('unknown', 'orphan')
               OR m.verify_after IS NULL OR m.verify_after <= clock_timestamp()
               OR (m.seen_sweep = $3 AND m.class = 'bound_terminal' AND f.live))`,
      [bindings.map((b) => b.token), bindings.map((b) => b.live), sweep, secs(reverifyMs)],
    );
    return rowCount ?? 0;
  }

  /** Items that need a verdict from a scan that began at `scanStartedAt` and were not found bound. */
  private static readonly UNFOUND =
    `(class IN ('unknown', 'orphan') OR verify_after IS NULL OR verify_after <= $2)
      AND seen_sweep IS DISTINCT FROM $1`;

  async countUnfound(sweep: number, scanStartedAt: Date): Promise<number> {
    const { rows } = await this.client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pool_reaper_assigned WHERE ${AssignedMirror.UNFOUND}`,
      [sweep, scanStartedAt],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The end of a complete scan: every item that needed a verdict and was not found bound is an orphan. */
  async markOrphans(sweep: number, scanStartedAt: Date): Promise<number> {
    const { rowCount } = await this.client.query(
      `UPDATE pool_reaper_assigned
          SET class = 'orphan', verified_at = clock_timestamp(), verify_after = NULL
        WHERE ${AssignedMirror.UNFOUND}`,
      [sweep, scanStartedAt],
    );
    return rowCount ?? 0;
  }

  async isEmpty(): Promise<boolean> {
    const { rows } = await this.client.query<{ empty: boolean }>(
      'SELECT NOT EXISTS (SELECT 1 FROM pool_reaper_assigned) AS empty',
    );
    return rows[0]?.empty !== false;
  }

  /** Fresh planner statistics once a sync has filled the table (a first sync adds a million rows). */
  async analyze(): Promise<void> {
    await this.client.query('ANALYZE pool_reaper_assigned');
  }

  /**
   * Items per type and class, from the counts the trigger keeps. An orphan counts only while
   * its pool_items row is still the stuck assigned item it was (same assigned_at and token):
   * one Discarded, claimed again or reclaimed since the sweep that judged it must not page as
   * an orphan until the next sync drops it. Bound and unknown rows count as the last sync saw them.
   */
  async classCounts(): Promise<ClassCount[]> {
    const { rows } = await this.client.query<{ resource_type: string; class: string; n: string }>(
      `SELECT resource_type, class, n FROM pool_reaper_assigned_counts WHERE class <> 'orphan' AND n <> 0
       UNION ALL
       SELECT m.resource_type, 'orphan', count(*) FROM pool_reaper_assigned m
         JOIN pool_items p ON p.id = m.item_id AND p.status = 'assigned' AND p.assigned_at = m.assigned_at
                          AND p.pool_token = m.pool_token
        WHERE m.class = 'orphan'
        GROUP BY 1`,
    );
    return rows.map((r) => ({ resourceType: r.resource_type, cls: r.class, n: Number(r.n) }));
  }

  /**
   * Orphans, oldest first, joined to their pool_items row so only those still assigned with
   * the same assigned_at are named. `minAgeMs` and `unquarantinedOnly` narrow the list to the
   * ones reclamation may take.
   */
  async orphans(
    limit: number,
    options: { minAgeMs?: number; unquarantinedOnly?: boolean } = {},
  ): Promise<MirrorOrphan[]> {
    if (limit <= 0) return [];
    const { rows } = await this.client.query<{
      id: string;
      resource_type: string;
      pool_token: string;
      provider_resource_id: string;
      assigned_at: string;
      age_ms: number;
      quarantined: boolean;
    }>(
      `SELECT p.id, p.resource_type, p.pool_token, p.provider_resource_id,
              ${ASSIGNED_AT_TEXT} AS assigned_at,
              (extract(epoch FROM now() - p.assigned_at) * 1000)::float8 AS age_ms,
              EXISTS (SELECT 1 FROM pool_reaper_item_failures f
                       WHERE f.item_id = p.id AND f.quarantined_at IS NOT NULL) AS quarantined
         FROM pool_reaper_assigned m
         JOIN pool_items p ON p.id = m.item_id AND p.status = 'assigned' AND p.assigned_at = m.assigned_at
                          AND p.pool_token = m.pool_token
        WHERE m.class = 'orphan'
          AND ($2::float8 IS NULL OR ${olderThanSql(ASSIGNED_SINCE_SQL, '$2::float8')})
          AND (NOT $3::boolean OR NOT EXISTS (SELECT 1 FROM pool_reaper_item_failures f
                                               WHERE f.item_id = p.id AND f.quarantined_at IS NOT NULL))
        ORDER BY m.assigned_at ASC, m.item_id
        LIMIT $1`,
      [
        limit,
        options.minAgeMs === undefined ? null : secs(options.minAgeMs),
        options.unquarantinedOnly === true,
      ],
    );
    return rows.map((r) => ({
      id: r.id,
      resourceType: r.resource_type,
      poolToken: r.pool_token,
      providerResourceId: r.provider_resource_id,
      assignedAt: r.assigned_at,
      ageMs: Math.round(r.age_ms),
      quarantined: r.quarantined,
    }));
  }
}
