import { DatabaseError, type PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import {
  ClusterUnreachableError,
  ForceBlockedError,
  RoleStillReferencedError,
  TransientTeardownError,
} from '../../src/teardown/errors';
import { createPostgresBackend, type PgPoolLike } from '../../src/teardown/postgres';
import { captureLog, eventsNamed, itemRef } from '../helpers/teardown-fixtures';

/**
 * The retry and failure paths that a real server rarely produces on demand, against a
 * scripted fake connection: the statements sent are recorded and answered from a script.
 */

function pgError(code: string, message: string, detail?: string): DatabaseError {
  const err = new DatabaseError(message, message.length, 'error');
  err.code = code;
  if (detail !== undefined) err.detail = detail;
  return err;
}

type Answer = Error | undefined;

interface Script {
  dropDatabase?: Answer[];
  dropRole?: Answer[];
  revoke?: Answer;
}

function fakeCluster(script: Script) {
  const state = { db: true, role: true };
  const statements: string[] = [];
  const releases: (boolean | undefined)[] = [];
  const dropDatabase = [...(script.dropDatabase ?? [])];
  const dropRole = [...(script.dropRole ?? [])];
  const client = {
    async query(sql: string) {
      statements.push(sql.replace(/\s+/g, ' ').trim());
      if (sql.includes('FROM pg_database')) {
        return { rows: [{ db: state.db, db_invalid: false, role: state.role }] };
      }
      if (sql.startsWith('REVOKE') && script.revoke) throw script.revoke;
      if (sql.startsWith('DROP DATABASE')) {
        const answer = dropDatabase.shift();
        if (answer) throw answer;
        state.db = false;
      }
      if (sql.startsWith('DROP ROLE')) {
        const answer = dropRole.shift();
        if (answer) throw answer;
        state.role = false;
      }
      return { rows: [] };
    },
    on() {},
    off() {},
    release(destroy?: boolean) {
      releases.push(destroy);
    },
  };
  const pool: PgPoolLike = {
    connect: async () => client as unknown as PoolClient,
    end: async () => {},
    on: () => pool,
  };
  return { pool, statements, releases, state };
}

function backendFor(fake: ReturnType<typeof fakeCluster>) {
  const { log, lines } = captureLog();
  const backend = createPostgresBackend({
    clusters: new Map([['local:0', 'postgres://fake/postgres']]),
    concurrency: 1,
    log,
    dropRetry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 4 },
    createPool: () => fake.pool,
  });
  return { backend, lines };
}

const TOKEN = 'pool-5f0e6a2c-1111-4222-8333-944455556666';
const inUse = () =>
  pgError(
    '55006',
    `database "db_${TOKEN}" is being accessed by other users`,
    'There is 1 other session using the database.',
  );

describe('postgres backend retry and failure paths', () => {
  it('retries DROP DATABASE on plain 55006, announcing every attempt, then drops the role', async () => {
    const fake = fakeCluster({ dropDatabase: [inUse(), inUse()] });
    const { backend, lines } = backendFor(fake);
    const steps: string[] = [];
    const result = await backend.teardown(itemRef(TOKEN, 'postgres'), { onProgress: (s) => steps.push(s) });
    expect(result.confirmedFreed).toBe(true);
    expect(result.dropped).toEqual([`database db_${TOKEN}`, `role usr_${TOKEN}`]);
    expect(fake.statements.filter((s) => s.startsWith('DROP DATABASE'))).toHaveLength(3);
    const announces = eventsNamed(lines, 'provisioner.drop').filter((l) => l.action === 'drop_database');
    expect(announces.map((l) => l.attempt)).toEqual([1, 2, 3]);
    expect(eventsNamed(lines, 'provisioner.drop.failed').map((l) => l.outcome)).toEqual([
      'retrying',
      'retrying',
    ]);
    expect(steps.filter((s) => s.includes('retry'))).toHaveLength(2);
    expect(fake.releases).toEqual([undefined]);
  });

  it('gives up after the bounded attempts with a retryable error, never touching the role', async () => {
    const fake = fakeCluster({ dropDatabase: Array.from({ length: 10 }, inUse) });
    const { backend } = backendFor(fake);
    const error = await backend.teardown(itemRef(TOKEN, 'postgres')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientTeardownError);
    expect(error).toMatchObject({
      retryable: true,
      code: '55006',
      partial: { remaining: [`database db_${TOKEN}`, `role usr_${TOKEN}`], confirmedFreed: false },
    });
    expect(fake.statements.filter((s) => s.startsWith('DROP DATABASE'))).toHaveLength(5);
    expect(fake.statements.some((s) => s.startsWith('DROP ROLE'))).toBe(false);
  });

  it('does not retry 55006 caused by prepared transactions', async () => {
    const fake = fakeCluster({
      dropDatabase: [
        pgError(
          '55006',
          `database "db_${TOKEN}" is being used by prepared transactions`,
          'There is 1 prepared transaction using the database.',
        ),
      ],
    });
    const { backend } = backendFor(fake);
    await expect(backend.teardown(itemRef(TOKEN, 'postgres'))).rejects.toBeInstanceOf(ForceBlockedError);
    expect(fake.statements.filter((s) => s.startsWith('DROP DATABASE'))).toHaveLength(1);
    expect(fake.statements.some((s) => s.startsWith('DROP ROLE'))).toBe(false);
  });

  it('reports a role still referenced elsewhere with the database already dropped', async () => {
    const fake = fakeCluster({
      dropRole: [
        pgError(
          '2BP01',
          `role "usr_${TOKEN}" cannot be dropped because some objects depend on it`,
          '1 object in database other',
        ),
      ],
    });
    const { backend, lines } = backendFor(fake);
    const error = await backend.teardown(itemRef(TOKEN, 'postgres')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RoleStillReferencedError);
    expect(error).toMatchObject({
      retryable: false,
      partial: { dropped: [`database db_${TOKEN}`], remaining: [`role usr_${TOKEN}`] },
    });
    expect(eventsNamed(lines, 'provisioner.drop.failed').at(-1)).toMatchObject({
      action: 'drop_role',
      error_type: 'RoleStillReferencedError',
    });
  });

  it('a failed best-effort fence is recorded and skipped; a lost connection is discarded, not reused', async () => {
    const fake = fakeCluster({
      revoke: pgError('42501', 'permission denied'),
      dropDatabase: [Object.assign(new Error('Connection terminated unexpectedly'), {})],
    });
    const { backend, lines } = backendFor(fake);
    const error = await backend.teardown(itemRef(TOKEN, 'postgres')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterUnreachableError);
    expect(eventsNamed(lines, 'provisioner.drop.failed').map((l) => [l.action, l.outcome])).toEqual([
      ['revoke_connect', 'ignored'],
      ['drop_database', 'deprovision_err'],
    ]);
    expect(fake.statements.some((s) => s.startsWith('ALTER ROLE'))).toBe(true);
    expect(fake.releases).toEqual([true]);
  });
});
