import pg from 'pg';
import type { Logger } from '../logger';
import { CONCURRENT_INDEXES, MIGRATIONS, SCHEMA_VERSION } from './schema';

/** Arbitrary but fixed: serialises `migrate` across replicas starting at once. */
const MIGRATION_LOCK_KEY = 0x706f6f6c; // "pool"

export interface MigrateResult {
  readonly applied: readonly number[];
  readonly current: number;
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * The comment ensureDatabase puts on a database it creates: the mark by which `pool-reaper
 * seed` recognises a development database (src/dev/dev-database.ts). A production provisioner
 * database is created by the provisioner, never by the reaper, so it never carries it.
 */
export const DEV_DATABASE_COMMENT = 'pool-reaper: development database (created by pool-reaper)';

/** Creates the database named in `url` when it does not exist (local stack and tests only), marked as such. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (dbName === '') throw new MigrationError('the database URL names no database');
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenance.toString() });
  client.on('error', () => undefined); // surfaced by the failing query instead
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(dbName)}`);
    } catch (err) {
      // Another process created it between our check and our CREATE.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return false;
    }
    await client.query(
      `COMMENT ON DATABASE ${pg.escapeIdentifier(dbName)} IS ${pg.escapeLiteral(DEV_DATABASE_COMMENT)}`,
    );
    return true;
  } finally {
    await client.end();
  }
}

/**
 * Polls a try-lock instead of blocking in pg_advisory_lock: a session blocked there holds a
 * snapshot, which CREATE INDEX CONCURRENTLY in the lock holder would wait for (a deadlock).
 */
async function acquireMigrationLock(client: pg.Client, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      MIGRATION_LOCK_KEY,
    ]);
    if (rows[0]?.locked) return;
    if (Date.now() > deadline)
      throw new MigrationError(`another migration held the lock for ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function dropInvalidIndex(client: pg.Client, name: string): Promise<void> {
  const { rows } = await client.query<{ invalid: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     WHERE c.relname = $1 AND NOT i.indisvalid) AS invalid`,
    [name],
  );
  if (rows[0]?.invalid) await client.query(`DROP INDEX ${pg.escapeIdentifier(name)}`);
}

/** Applies pending migrations in order; safe to run from several replicas at once. */
export async function migrate(url: string, log?: Logger): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: url, application_name: 'pool-reaper-migrate' });
  client.on('error', (err) => log?.warn({ err: err.message }, 'migration connection error'));
  await client.connect();
  try {
    await acquireMigrationLock(client);
    await client.query(`CREATE TABLE IF NOT EXISTS pool_reaper_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM pool_reaper_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      // A CONCURRENTLY build that was interrupted leaves an INVALID index that IF NOT EXISTS would keep.
      for (const index of CONCURRENT_INDEXES) await dropInvalidIndex(client, index);
      for (const statement of migration.statements) await client.query(statement);
      await client.query('INSERT INTO pool_reaper_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
      log?.info(
        { event: 'migration.applied', version: migration.version, name: migration.name },
        'migration applied',
      );
    }
    return { applied, current: SCHEMA_VERSION };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/** The provisioner database lacks migrations this code needs: `pool-reaper migrate` first. */
export class SchemaOutdatedError extends Error {
  override readonly name = 'SchemaOutdatedError';
}

/** Anything that runs a query: a pool, a client. */
interface Queryable {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Refuses to go on against a schema this code does not fully know: a missing table would
 * otherwise surface only as failing passes while the worker looks healthy.
 */
export async function assertSchemaCurrent(db: Queryable): Promise<void> {
  let done: Set<number>;
  try {
    const { rows } = await db.query<{ version: number }>('SELECT version FROM pool_reaper_migrations');
    done = new Set(rows.map((r) => r.version));
  } catch (err) {
    if ((err as { code?: unknown }).code !== '42P01') throw err;
    throw new SchemaOutdatedError(
      'the provisioner database has no pool-reaper schema (no pool_reaper_migrations table): ' +
        'run `pool-reaper migrate` against PROVISIONER_DATABASE_URL first',
    );
  }
  const missing = MIGRATIONS.filter((m) => !done.has(m.version)).map((m) => m.version);
  if (missing.length > 0) {
    throw new SchemaOutdatedError(
      `the provisioner database schema lacks migration(s) ${missing.join(', ')} (this worker needs ` +
        `version ${SCHEMA_VERSION}): run \`pool-reaper migrate\` against PROVISIONER_DATABASE_URL first`,
    );
  }
}
