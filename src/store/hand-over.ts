import pg from 'pg';
import type { Logger } from '../logger';

/**
 * After `migrate` ran as a role of its own (MIGRATE_DATABASE_URL), the pool_reaper_* tables
 * and function it created belong to that role; the worker must own them (it ANALYZEs its
 * sweep table, its triggers' function runs on its writes). Each one the migrating role owns
 * is handed to `toRole`, the user of PROVISIONER_DATABASE_URL. Only pool_reaper_* objects:
 * pool_items and its indexes stay with the provisioner. Idempotent.
 */
export async function handOverReaperObjects(url: string, toRole: string, log?: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'pool-reaper-migrate' });
  client.on('error', () => undefined); // surfaced by the failing query instead
  await client.connect();
  try {
    const { rows } = await client.query<{ statement: string; name: string }>(
      `SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, $1::text) AS statement,
              c.relname AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relname LIKE 'pool\\_reaper\\_%'
          AND n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = current_user
       UNION ALL
       SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $1::text), p.proname
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname LIKE 'pool\\_reaper\\_%' AND n.nspname = current_schema()
          AND pg_get_userbyid(p.proowner) = current_user
        ORDER BY 2`,
      [toRole],
    );
    for (const { statement } of rows) await client.query(statement);
    if (rows.length > 0) {
      log?.info(
        { event: 'pool_reaper.migrate.handed_over', to: toRole, objects: rows.map((r) => r.name) },
        'reaper tables handed to the worker role',
      );
    }
    return rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}
