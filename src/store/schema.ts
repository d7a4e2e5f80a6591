/**
 * Schema the reaper needs. `pool_items` belongs to the provisioner and already exists in
 * production: its creation is IF NOT EXISTS with exactly the provisioner's columns, and the
 * reaper never alters them. Everything the reaper adds is its own table or a partial index.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Statements run one by one, outside a transaction (CREATE INDEX CONCURRENTLY needs that). */
  readonly statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'pool_items (provisioner-owned, created only if absent)',
    statements: [
      `CREATE TABLE IF NOT EXISTS pool_items (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        resource_type text NOT NULL,
        connection_url text NOT NULL,
        provider_resource_id text NOT NULL DEFAULT '',
        database_name text NOT NULL DEFAULT '',
        username text NOT NULL DEFAULT '',
        key_prefix text NOT NULL DEFAULT '',
        pool_token text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'ready',
        created_at timestamptz NOT NULL DEFAULT now(),
        assigned_at timestamptz
      )`,
      `CREATE INDEX IF NOT EXISTS idx_pool_ready ON pool_items (resource_type, created_at) WHERE status = 'ready'`,
    ],
  },
  {
    version: 2,
    name: 'reaper index on failed/assigned rows by age',
    // CONCURRENTLY: the provisioner keeps claiming while this builds in production.
    statements: [
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_pool_reaper_stale
         ON pool_items (status, assigned_at) WHERE status IN ('failed', 'assigned')`,
    ],
  },
  {
    version: 3,
    name: 'reaper-owned tables: item failures (quarantine) and shared state',
    statements: [
      `CREATE TABLE IF NOT EXISTS pool_reaper_item_failures (
        item_id uuid PRIMARY KEY,
        pool_token text NOT NULL,
        resource_type text NOT NULL,
        failures integer NOT NULL DEFAULT 0,
        last_error_type text NOT NULL DEFAULT '',
        last_error text NOT NULL DEFAULT '',
        first_failed_at timestamptz NOT NULL DEFAULT now(),
        last_failed_at timestamptz NOT NULL DEFAULT now(),
        quarantined_at timestamptz
      )`,
      `CREATE TABLE IF NOT EXISTS pool_reaper_state (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 4,
    name: 'reaper-owned tombstones of deleted rows (a retried delete after a crash still counts as reaped)',
    statements: [
      `CREATE TABLE IF NOT EXISTS pool_reaper_reaped (
        item_id uuid PRIMARY KEY,
        pool_token text NOT NULL,
        resource_type text NOT NULL,
        reaped_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS idx_pool_reaper_reaped_at ON pool_reaper_reaped (reaped_at)`,
    ],
  },
  {
    version: 5,
    name: 'reaping never stops: per-item backoff, per-cluster circuit, idempotent pass accounting, failed rows by age',
    statements: [
      // A retryable failure defers the item (exponential, per pass) instead of letting it head
      // every listing; the same row already holds its quarantine.
      `ALTER TABLE pool_reaper_item_failures
         ADD COLUMN IF NOT EXISTS deferrals integer NOT NULL DEFAULT 0,
         ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,
         ADD COLUMN IF NOT EXISTS last_pass_id text`,
      // A cluster that refused the reaper (unreachable, credentials, privileges, TLS, not
      // configured) is left out of listings until retry_at, then probed with one item.
      `CREATE TABLE IF NOT EXISTS pool_reaper_clusters (
        resource_type text NOT NULL,
        cluster text NOT NULL,
        failures integer NOT NULL DEFAULT 0,
        last_error_type text NOT NULL DEFAULT '',
        last_error text NOT NULL DEFAULT '',
        last_pass_id text,
        down_since timestamptz NOT NULL DEFAULT now(),
        retry_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (resource_type, cluster)
      )`,
      // Each pass is counted once, however often its recording activity is retried.
      `CREATE TABLE IF NOT EXISTS pool_reaper_passes (
        pass_id text PRIMARY KEY,
        recorded_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX IF NOT EXISTS idx_pool_reaper_passes_at ON pool_reaper_passes (recorded_at)`,
      // A failed row with no assigned_at ages by created_at (see FAILED_SINCE_SQL).
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_pool_reaper_failed_since
         ON pool_items ((COALESCE(assigned_at, created_at))) WHERE status = 'failed'`,
    ],
  },
  {
    version: 6,
    name: 'reaper-owned classification of stuck assigned items (what the platform said, and the sweep reading it)',
    statements: [
      // One row per stuck assigned pool item (as the last sync saw it) and what the platform
      // last said about it, so a pass asks the platform only a slice at a time and a bound
      // item is written again only when its re-verification falls due. UNLOGGED: it is a cache
      // of what can always be read again (no WAL for a million rows written on a first sweep);
      // after a crash Postgres empties it, and every item is simply `unknown` (never an
      // orphan) until the next complete sweep. fillfactor leaves room for the in-place (HOT)
      // updates of re-verification.
      `CREATE UNLOGGED TABLE IF NOT EXISTS pool_reaper_assigned (
        item_id uuid PRIMARY KEY,
        pool_token text NOT NULL,
        token_key text NOT NULL,
        resource_type text NOT NULL,
        assigned_at timestamptz NOT NULL,
        class text NOT NULL DEFAULT 'unknown'
          CHECK (class IN ('unknown', 'bound_live', 'bound_terminal', 'orphan')),
        seen_sweep bigint,
        verified_at timestamptz,
        verify_after timestamptz
      ) WITH (fillfactor = 80)`,
      `CREATE INDEX IF NOT EXISTS idx_pool_reaper_assigned_token ON pool_reaper_assigned (token_key)`,
      `CREATE INDEX IF NOT EXISTS idx_pool_reaper_assigned_orphans
         ON pool_reaper_assigned (assigned_at) WHERE class = 'orphan'`,
      // Items per type and class, kept by the trigger below in the same transaction as every
      // change, so a pass reads a handful of rows instead of counting a million.
      `CREATE UNLOGGED TABLE IF NOT EXISTS pool_reaper_assigned_counts (
        resource_type text NOT NULL,
        class text NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (resource_type, class)
      )`,
      `CREATE OR REPLACE FUNCTION pool_reaper_assigned_count() RETURNS trigger LANGUAGE plpgsql AS $fn$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           INSERT INTO pool_reaper_assigned_counts AS c (resource_type, class, n)
           SELECT resource_type, class, -count(*) FROM old_rows GROUP BY 1, 2
           ON CONFLICT (resource_type, class) DO UPDATE SET n = c.n + EXCLUDED.n;
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           INSERT INTO pool_reaper_assigned_counts AS c (resource_type, class, n)
           SELECT resource_type, class, count(*) FROM new_rows GROUP BY 1, 2
           ON CONFLICT (resource_type, class) DO UPDATE SET n = c.n + EXCLUDED.n;
         END IF;
         RETURN NULL;
       END
       $fn$`,
      'DROP TRIGGER IF EXISTS pool_reaper_assigned_count_insert ON pool_reaper_assigned',
      `CREATE TRIGGER pool_reaper_assigned_count_insert AFTER INSERT ON pool_reaper_assigned
         REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pool_reaper_assigned_count()`,
      'DROP TRIGGER IF EXISTS pool_reaper_assigned_count_update ON pool_reaper_assigned',
      `CREATE TRIGGER pool_reaper_assigned_count_update AFTER UPDATE ON pool_reaper_assigned
         REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
         FOR EACH STATEMENT EXECUTE FUNCTION pool_reaper_assigned_count()`,
      'DROP TRIGGER IF EXISTS pool_reaper_assigned_count_delete ON pool_reaper_assigned',
      `CREATE TRIGGER pool_reaper_assigned_count_delete AFTER DELETE ON pool_reaper_assigned
         REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pool_reaper_assigned_count()`,
      // The one sweep in progress: which phase, how far, and what it has seen so far. Unlogged
      // with the table it describes, so a crash empties both together.
      `CREATE UNLOGGED TABLE IF NOT EXISTS pool_reaper_sweep (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        sweep bigint NOT NULL,
        phase text NOT NULL CHECK (phase IN ('sync', 'scan')),
        cursor text,
        started_at timestamptz NOT NULL,
        scan_started_at timestamptz,
        resources_seen bigint NOT NULL DEFAULT 0,
        bindings_seen bigint NOT NULL DEFAULT 0,
        sync_rows integer NOT NULL,
        scan_rows integer NOT NULL,
        completed_sweep bigint,
        completed_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
];

/** The schema version this code needs; `pool-reaper worker` refuses to start on an older one. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/** Indexes built CONCURRENTLY: an interrupted build leaves an INVALID one that IF NOT EXISTS would keep. */
export const CONCURRENT_INDEXES: readonly string[] = [
  'idx_pool_reaper_stale',
  'idx_pool_reaper_failed_since',
];
