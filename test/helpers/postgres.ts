import pg from 'pg';
import { migrate } from '../../src/store/migrate';
import { TEST_POSTGRES_URL, uniqueSuffix } from './env';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  readonly pool: pg.Pool;
  drop(): Promise<void>;
}

export function urlForDatabase(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs one statement on the admin connection of the local test cluster. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

/**
 * A fresh provisioner database for one test file, with the reaper's schema applied, so
 * files run in parallel and re-run on a dirty machine without seeing each other's rows.
 */
export async function createTestDatabase(
  label: string,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  // The label is cut, never the suffix: the suffix carries the file's cleanup tag.
  const name = `prt_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${uniqueSuffix()}`;
  await adminQuery(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = urlForDatabase(TEST_POSTGRES_URL, name);
  if (options.migrate !== false) await migrate(url);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined); // idle connections closed by the server are simply replaced
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    },
  };
}

export async function databaseExists(name: string): Promise<boolean> {
  const { rowCount } = await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return (rowCount ?? 0) > 0;
}

export async function roleExists(name: string): Promise<boolean> {
  const { rowCount } = await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  return (rowCount ?? 0) > 0;
}

/** Drops whatever is left of these tokens' Postgres infra on a cluster, directly as the superuser. */
export async function dropTokenInfra(url: string, tokens: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const t of tokens) {
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(`db_${t}`)} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(`usr_${t}`)}`);
    }
  } finally {
    await client.end();
  }
}
