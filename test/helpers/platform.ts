import { newPoolToken } from '../../src/dev/seed';
import { createTestDatabase, type TestDatabase } from './postgres';

/**
 * A platform database for one test file: a fresh database on the local cluster with the
 * platform's `resources` table (the columns domain.md lists), nothing else.
 */
export interface TestPlatform {
  readonly db: TestDatabase;
  readonly url: string;
  /** Inserts a resources row; returns its id. */
  addResource(row: {
    providerResourceId: string | null;
    status?: string;
    resourceType?: string;
  }): Promise<string>;
  /** Binds a pool token the way the platform does: `local:0;pooltok:<token>`. */
  bind(poolToken: string, status?: string): Promise<string>;
  /** A binding to a pool item no test pool has, so the inventory is plausible. */
  addBackgroundBinding(): Promise<string>;
  /** Removes every resources row except the given ids. */
  clear(keep?: readonly string[]): Promise<void>;
  drop(): Promise<void>;
}

export async function createTestPlatform(label: string): Promise<TestPlatform> {
  const db = await createTestDatabase(`plat_${label}`, { migrate: false });
  await db.pool.query(`
    CREATE TABLE resources (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      token uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
      resource_type text NOT NULL,
      status text NOT NULL,
      provider_resource_id text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  const addResource: TestPlatform['addResource'] = async (row) => {
    const { rows } = await db.pool.query<{ id: string }>(
      'INSERT INTO resources (resource_type, status, provider_resource_id) VALUES ($1, $2, $3) RETURNING id',
      [row.resourceType ?? 'postgres', row.status ?? 'active', row.providerResourceId],
    );
    return rows[0]!.id;
  };
  return {
    db,
    url: db.url,
    addResource,
    bind: (poolToken, status = 'active') =>
      addResource({ providerResourceId: `local:0;pooltok:${poolToken}`, status }),
    addBackgroundBinding: () => addResource({ providerResourceId: `local:0;pooltok:${newPoolToken()}` }),
    async clear(keep = []) {
      await db.pool.query('DELETE FROM resources WHERE NOT (id = ANY($1::uuid[]))', [keep]);
    },
    drop: () => db.drop(),
  };
}
