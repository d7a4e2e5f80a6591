import type pg from 'pg';
import { DEV_DATABASE_COMMENT } from '../store/migrate';

/**
 * `pool-reaper seed` writes fake pool items and creates real databases, roles and Redis users.
 * Against a production provisioner database that would be an incident, so seeding only goes
 * where the provisioner database looks like a development one:
 *
 * - it is reached on a loopback address (`localhost`, `127.x.x.x`, `::1`) or a Unix socket
 *   (a laptop, CI, the test suite), or
 * - the reaper's own tooling created it (`npm start`, `pool-reaper migrate --create-database`,
 *   the compose stack's `migrate`): that marks it with a database comment. A production
 *   provisioner database exists before the reaper ever runs, so it never carries the mark.
 *
 * Anything else is refused with one line naming the database and its host, unless `--force`.
 */
export class SeedRefusedError extends Error {
  override readonly name = 'SeedRefusedError';
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** Where a database URL points: its host (empty for a Unix socket) and its database name. */
export function databaseTarget(url: string): { host: string; database: string; local: boolean } {
  const parsed = new URL(url);
  const socket = parsed.searchParams.get('host');
  const host = socket ?? parsed.hostname;
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  return { host, database, local: host === '' || host.startsWith('/') || LOOPBACK.test(host) };
}

/** Whether the connected database carries the development mark (set by ensureDatabase). */
export async function hasDevMark(db: Pick<pg.Pool, 'query'> | pg.Client): Promise<boolean> {
  const { rows } = await db.query<{ comment: string | null }>(
    `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = current_database()`,
  );
  return rows[0]?.comment === DEV_DATABASE_COMMENT;
}

/**
 * Throws SeedRefusedError unless `url` looks like a development database (see above) or
 * `force` is set. `db` is a connection to it (only asked when the host is not local).
 */
export async function assertDevDatabase(
  url: string,
  db: Pick<pg.Pool, 'query'> | pg.Client,
  options: { force?: boolean } = {},
): Promise<void> {
  if (options.force) return;
  const target = databaseTarget(url);
  if (target.local || (await hasDevMark(db))) return;
  throw new SeedRefusedError(
    `seed refused: the provisioner database ${JSON.stringify(target.database)} on ${target.host} is not ` +
      'a development one (not on a loopback host, not created by pool-reaper); pass --force to seed it anyway',
  );
}
