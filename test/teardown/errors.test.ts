import { ReplyError } from 'ioredis';
import { DatabaseError } from 'pg';
import { describe, expect, it } from 'vitest';
import {
  BackendTeardownError,
  ClusterAccessError,
  ClusterUnreachableError,
  classifyPostgresError,
  classifyRedisError,
  DropRefusedError,
  ForceBlockedError,
  isPlainObjectInUse,
  RoleStillReferencedError,
  scrubSecrets,
  TeardownError,
  TransientTeardownError,
  UnknownClusterError,
  UnsupportedResourceTypeError,
} from '../../src/teardown/errors';

const context = { action: 'drop_database', target: 'db_pool-x', cluster: 'local:0' };

/** A pg DatabaseError as the driver builds it from an ErrorResponse. */
function pgError(code: string, message: string, detail?: string): DatabaseError {
  const err = new DatabaseError(message, message.length, 'error');
  err.code = code;
  if (detail !== undefined) err.detail = detail;
  return err;
}

function netError(code: string, message = `connect ${code} 127.0.0.1:5432`): Error {
  return Object.assign(new Error(message), { code, errno: -1, syscall: 'connect' });
}

describe('classifyPostgresError', () => {
  // Texts as PostgreSQL 15 words them (dbcommands.c / procarray.c).
  const forceBlocked: [string, string, string | undefined][] = [
    [
      'prepared transactions (FORCE)',
      'database "db_pool-x" is being used by prepared transactions',
      'There is 1 prepared transaction using the database.',
    ],
    [
      'prepared transactions (busy detail)',
      'database "db_pool-x" is being accessed by other users',
      'There are 2 prepared transactions using the database.',
    ],
    [
      'active logical replication slot',
      'database "db_pool-x" is used by an active logical replication slot',
      'There is 1 active slot.',
    ],
    [
      'subscription',
      'database "db_pool-x" is being used by logical replication subscription',
      'There is 1 subscription.',
    ],
  ];
  it.each(forceBlocked)(
    '55006 blocked by %s -> ForceBlockedError, not retryable',
    (_label, message, detail) => {
      const err = classifyPostgresError(pgError('55006', message, detail), context);
      expect(err).toBeInstanceOf(ForceBlockedError);
      expect(err.name).toBe('ForceBlockedError');
      expect(err.retryable).toBe(false);
      expect(err.category).toBe('operator');
      expect(err.code).toBe('55006');
      expect(isPlainObjectInUse(pgError('55006', message, detail))).toBe(false);
    },
  );

  it('plain 55006 object in use -> TransientTeardownError, retryable', () => {
    const raw = pgError(
      '55006',
      'database "db_pool-x" is being accessed by other users',
      'There is 1 other session using the database.',
    );
    const err = classifyPostgresError(raw, context);
    expect(err).toBeInstanceOf(TransientTeardownError);
    expect(err.name).toBe('TransientTeardownError');
    expect(err.retryable).toBe(true);
    expect(err.category).toBe('transient');
    expect(isPlainObjectInUse(raw)).toBe(true);
  });

  it('55006 on the currently open database is a configuration error', () => {
    const err = classifyPostgresError(pgError('55006', 'cannot drop the currently open database'), context);
    expect(err).toBeInstanceOf(BackendTeardownError);
    expect(err.retryable).toBe(false);
  });

  const cases: [string, unknown, new (...args: never[]) => TeardownError, boolean][] = [
    [
      '42501 must be owner',
      pgError('42501', 'must be owner of database db_pool-x'),
      ClusterAccessError,
      false,
    ],
    [
      // The admin login refused: cluster-wide, counted per cluster, never quarantined per item.
      '28P01 bad password',
      pgError('28P01', 'password authentication failed for user "x"'),
      ClusterAccessError,
      false,
    ],
    [
      '28000 login not allowed',
      pgError('28000', 'role "admin" is not permitted to log in'),
      ClusterAccessError,
      false,
    ],
    [
      '2BP01 dependent objects',
      pgError(
        '2BP01',
        'role "usr_pool-x" cannot be dropped because some objects depend on it',
        'privileges for database other',
      ),
      RoleStillReferencedError,
      false,
    ],
    [
      '57014 statement timeout',
      pgError('57014', 'canceling statement due to statement timeout'),
      TransientTeardownError,
      true,
    ],
    [
      '53300 too many connections',
      pgError('53300', 'sorry, too many clients already'),
      ClusterUnreachableError,
      true,
    ],
    [
      '57P01 admin shutdown',
      pgError('57P01', 'terminating connection due to administrator command'),
      ClusterUnreachableError,
      true,
    ],
    ['08006 connection failure', pgError('08006', 'connection failure'), ClusterUnreachableError, true],
    ['ECONNREFUSED', netError('ECONNREFUSED'), ClusterUnreachableError, true],
    ['ECONNRESET', netError('ECONNRESET', 'read ECONNRESET'), ClusterUnreachableError, true],
    ['ETIMEDOUT', netError('ETIMEDOUT'), ClusterUnreachableError, true],
    // Five capital letters, like a SQLSTATE, but a broken socket: read by origin, not by shape.
    ['EPIPE', netError('EPIPE', 'write EPIPE'), ClusterUnreachableError, true],
    [
      'EPIPE on a write (syscall only)',
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }),
      ClusterUnreachableError,
      true,
    ],
    [
      'AggregateError of refusals',
      Object.assign(new AggregateError([netError('ECONNREFUSED')], 'x'), {}),
      ClusterUnreachableError,
      true,
    ],
    [
      'pool checkout timeout',
      new Error('timeout exceeded when trying to connect'),
      ClusterUnreachableError,
      true,
    ],
    ['connection terminated', new Error('Connection terminated unexpectedly'), ClusterUnreachableError, true],
    [
      'self-signed certificate (TLS)',
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      ClusterAccessError,
      false,
    ],
    [
      'server without TLS',
      new Error('The server does not support SSL connections'),
      ClusterAccessError,
      false,
    ],
    [
      'a SQLSTATE-shaped code without a server answer',
      Object.assign(new Error('odd'), { code: 'XX000' }),
      BackendTeardownError,
      false,
    ],
    ['42P01 unexpected', pgError('42P01', 'relation "x" does not exist'), BackendTeardownError, false],
    ['plain Error', new Error('something odd'), BackendTeardownError, false],
    ['a string', 'weird', BackendTeardownError, false],
  ];
  it.each(cases)('%s', (_label, raw, type, retryable) => {
    const err = classifyPostgresError(raw, context);
    expect(err).toBeInstanceOf(type);
    expect(err.name).toBe(type.name);
    expect(err.retryable).toBe(retryable);
    expect(err.message).toContain('drop_database db_pool-x on local:0');
  });

  it('3D000 is the admin URL naming a missing database only at connect (cluster-scoped)', () => {
    const missing = pgError('3D000', 'database "admin_db" does not exist');
    expect(classifyPostgresError(missing, { ...context, action: 'connect' })).toBeInstanceOf(
      ClusterAccessError,
    );
    expect(classifyPostgresError(missing, context)).toBeInstanceOf(BackendTeardownError);
  });

  it('attaches the partial result and passes teardown errors through unchanged', () => {
    const partial = {
      resourceType: 'postgres',
      poolToken: 'pool-x',
      cluster: 'local:0',
      dropped: [],
      alreadyGone: [],
      remaining: ['database db_pool-x', 'role usr_pool-x'],
      kept: [],
      confirmedFreed: false,
    };
    const err = classifyPostgresError(pgError('42501', 'must be owner of database db_pool-x'), {
      ...context,
      partial,
    });
    expect(err.partial).toEqual(partial);
    const already = new ForceBlockedError('x');
    expect(classifyPostgresError(already, context)).toBe(already);
  });

  it('never carries a password from a driver message', () => {
    const raw = new Error(
      'could not connect to postgres://admin:s3cr3t@db.internal:5432/postgres (password=hunter2)',
    );
    const err = classifyPostgresError(raw, context);
    expect(err.message).not.toContain('s3cr3t');
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toContain('postgres://[redacted]@db.internal:5432/postgres');
  });
});

describe('classifyRedisError', () => {
  const redisContext = { action: 'acl_deluser', target: 'usr_pool-x', cluster: 'local:0' };
  const cases: [string, unknown, new (...args: never[]) => TeardownError, boolean][] = [
    [
      'NOPERM',
      new ReplyError("NOPERM this user has no permissions to run the 'acl|deluser' command"),
      ClusterAccessError,
      false,
    ],
    [
      'LOADING',
      new ReplyError('LOADING Redis is loading the dataset in memory'),
      ClusterUnreachableError,
      true,
    ],
    [
      'READONLY',
      new ReplyError("READONLY You can't write against a read only replica."),
      ClusterUnreachableError,
      true,
    ],
    ['unknown reply', new ReplyError('ERR unknown command'), BackendTeardownError, false],
    [
      'max retries',
      Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
        name: 'MaxRetriesPerRequestError',
      }),
      ClusterUnreachableError,
      true,
    ],
    ['connection closed', new Error('Connection is closed.'), ClusterUnreachableError, true],
    ['command timeout', new Error('Command timed out'), ClusterUnreachableError, true],
    [
      'ECONNREFUSED',
      netError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6379'),
      ClusterUnreachableError,
      true,
    ],
    ['EPIPE', netError('EPIPE', 'write EPIPE'), ClusterUnreachableError, true],
    ['plain Error', new Error('odd'), BackendTeardownError, false],
  ];
  it.each(cases)('%s', (_label, raw, type, retryable) => {
    const err = classifyRedisError(raw, redisContext);
    expect(err).toBeInstanceOf(type);
    expect(err.name).toBe(type.name);
    expect(err.retryable).toBe(retryable);
  });

  it('scrubs redis URLs with credentials', () => {
    const err = classifyRedisError(
      new Error('Connection is closed: redis://usr:pa55@10.0.0.1:6379'),
      redisContext,
    );
    expect(err.message).not.toContain('pa55');
  });
});

describe('error classes', () => {
  it('name themselves after their class and say whether a retry can help', () => {
    const samples: [TeardownError, string, boolean, string][] = [
      [new TransientTeardownError('x'), 'TransientTeardownError', true, 'transient'],
      [new DropRefusedError('token', 'empty', 'x'), 'DropRefusedError', false, 'operator'],
      [new UnsupportedResourceTypeError('mongodb', 'x'), 'UnsupportedResourceTypeError', false, 'operator'],
      [new UnknownClusterError('local:7', 'postgres'), 'UnknownClusterError', false, 'cluster'],
      [new ForceBlockedError('x'), 'ForceBlockedError', false, 'operator'],
      [new ClusterAccessError('x'), 'ClusterAccessError', false, 'cluster'],
      [new ClusterUnreachableError('x'), 'ClusterUnreachableError', true, 'cluster'],
      [new RoleStillReferencedError('x'), 'RoleStillReferencedError', false, 'operator'],
      [new BackendTeardownError('x'), 'BackendTeardownError', false, 'operator'],
    ];
    for (const [err, name, retryable, category] of samples) {
      expect(err).toBeInstanceOf(TeardownError);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe(name);
      expect(err.constructor.name).toBe(name);
      expect(err.retryable).toBe(retryable);
      expect(err.category).toBe(category);
    }
  });

  it('scrubSecrets keeps the host but not the user info', () => {
    expect(scrubSecrets('at rediss://default:abc@h:6380/0 and postgresql://u@h/db')).toBe(
      'at rediss://[redacted]@h:6380/0 and postgresql://[redacted]@h/db',
    );
  });
});
