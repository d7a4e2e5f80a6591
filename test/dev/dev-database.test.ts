import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertDevDatabase, databaseTarget, hasDevMark, SeedRefusedError } from '../../src/dev/dev-database';
import { ensureDatabase } from '../../src/store/migrate';
import { TEST_POSTGRES_URL, uniqueSuffix } from '../helpers/env';
import { adminQuery, createTestDatabase, type TestDatabase, urlForDatabase } from '../helpers/postgres';

/** A URL as an operator would set it for a production provisioner database. */
const REMOTE_URL = 'postgres://reaper@db.prod.internal:5432/pool_provisioner';

describe('which provisioner databases seed may write to', () => {
  it('counts loopback hosts and Unix sockets as local, and nothing else', () => {
    for (const url of [
      'postgres://postgres@127.0.0.1:5432/pool_provisioner',
      'postgres://postgres@127.1.2.3/x',
      'postgres://postgres@localhost/x',
      'postgres://postgres@LOCALHOST/x',
      'postgres://postgres@[::1]:5432/x',
      'postgres:///x?host=/var/run/postgresql',
      'postgres:///x',
    ]) {
      expect(databaseTarget(url).local, url).toBe(true);
    }
    for (const url of [
      REMOTE_URL,
      'postgres://postgres@postgres:5432/pool_provisioner', // the compose service: marked instead
      'postgres://postgres@10.0.0.5/x',
      'postgres://postgres@127.0.0.1.evil.example/x',
      'postgres://postgres@localhost.example/x',
    ]) {
      expect(databaseTarget(url).local, url).toBe(false);
    }
    expect(databaseTarget(REMOTE_URL)).toMatchObject({
      host: 'db.prod.internal',
      database: 'pool_provisioner',
    });
  });

  describe('against real databases', () => {
    let unmarked: TestDatabase;
    const markedName = `prt_devmark_${uniqueSuffix()}`;
    let marked: pg.Pool;

    beforeAll(async () => {
      unmarked = await createTestDatabase('dev_unmarked', { migrate: false });
      expect(await ensureDatabase(urlForDatabase(TEST_POSTGRES_URL, markedName))).toBe(true);
      marked = new pg.Pool({ connectionString: urlForDatabase(TEST_POSTGRES_URL, markedName), max: 1 });
      marked.on('error', () => undefined);
    });

    afterAll(async () => {
      await marked?.end();
      await adminQuery(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(markedName)} WITH (FORCE)`);
      await unmarked?.drop();
    });

    it('marks the databases pool-reaper creates, and only those', async () => {
      expect(await hasDevMark(marked)).toBe(true);
      expect(await hasDevMark(unmarked.pool)).toBe(false);
      // Created already: ensureDatabase leaves an existing database (and its comment) alone.
      expect(await ensureDatabase(unmarked.url)).toBe(false);
      expect(await hasDevMark(unmarked.pool)).toBe(false);
    });

    it('refuses a remote, unmarked database in one line naming it, unless forced', async () => {
      const refusal = await assertDevDatabase(REMOTE_URL, unmarked.pool).catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(SeedRefusedError);
      const message = (refusal as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toContain('"pool_provisioner" on db.prod.internal');
      expect(message).toContain('--force');
      await expect(assertDevDatabase(REMOTE_URL, unmarked.pool, { force: true })).resolves.toBeUndefined();
    });

    it('allows a remote database pool-reaper created, and any local one', async () => {
      await expect(assertDevDatabase(REMOTE_URL, marked)).resolves.toBeUndefined();
      await expect(assertDevDatabase(unmarked.url, unmarked.pool)).resolves.toBeUndefined();
    });
  });
});
