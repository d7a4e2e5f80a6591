import { describe, expect, it } from 'vitest';
import {
  assertDroppableDatabase,
  assertDroppableRole,
  assertSafeToken,
  DATABASE_PREFIXES,
  databaseNameFor,
  legacyRedisUserFor,
  RESERVED_TOKENS,
  redisUserFor,
  roleNameFor,
  SYSTEM_DATABASES,
  SYSTEM_ROLES,
  USER_PREFIXES,
} from '../../src/teardown/drop-guard';
import { DropRefusedError } from '../../src/teardown/errors';
import {
  SPEC_DATABASE_PREFIXES,
  SPEC_RESERVED_TOKENS,
  SPEC_SYSTEM_DATABASES,
  SPEC_SYSTEM_ROLES,
  SPEC_USER_PREFIXES,
} from '../helpers/domain-spec';

const TOKEN = 'pool-0b5c3f3e-8c1a-4b7e-9d2f-1a2b3c4d5e6f';

function refusal(fn: () => unknown): DropRefusedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DropRefusedError);
    const e = err as DropRefusedError;
    expect(e.name).toBe('DropRefusedError');
    expect(e.retryable).toBe(false);
    expect(e.category).toBe('operator');
    return e;
  }
  throw new Error('expected a DropRefusedError, nothing was thrown');
}

describe('drop guard tables', () => {
  it('hold exactly the documented names', () => {
    const sorted = (list: readonly string[]) => [...list].sort();
    expect(sorted(RESERVED_TOKENS)).toEqual(sorted(SPEC_RESERVED_TOKENS));
    expect(sorted(SYSTEM_DATABASES)).toEqual(sorted(SPEC_SYSTEM_DATABASES));
    expect(sorted(SYSTEM_ROLES)).toEqual(sorted(SPEC_SYSTEM_ROLES));
    expect(sorted(DATABASE_PREFIXES)).toEqual(sorted(SPEC_DATABASE_PREFIXES));
    expect(sorted(USER_PREFIXES)).toEqual(sorted(SPEC_USER_PREFIXES));
  });
});

describe('derived names', () => {
  it('derive db_/usr_ names from a real pool token', () => {
    expect(databaseNameFor(TOKEN)).toBe(`db_${TOKEN}`);
    expect(roleNameFor(TOKEN)).toBe(`usr_${TOKEN}`);
    expect(redisUserFor(TOKEN)).toBe(`usr_${TOKEN}`);
    expect(legacyRedisUserFor(TOKEN)).toBe('usr_pool-0b5');
  });

  it('accept the longest tokens whose names still fit in 63 bytes, and refuse one byte more', () => {
    expect(databaseNameFor('a'.repeat(60))).toBe(`db_${'a'.repeat(60)}`);
    expect(roleNameFor('a'.repeat(59))).toBe(`usr_${'a'.repeat(59)}`);
    expect(refusal(() => databaseNameFor('a'.repeat(61)))).toMatchObject({
      site: 'database_name',
      reason: 'name_too_long',
    });
    expect(refusal(() => roleNameFor('a'.repeat(60)))).toMatchObject({
      site: 'role_name',
      reason: 'name_too_long',
    });
    expect(refusal(() => redisUserFor('a'.repeat(60)))).toMatchObject({
      site: 'redis_user',
      reason: 'name_too_long',
    });
  });

  it('uses the token itself as legacy name when it is 8 characters or fewer', () => {
    expect(legacyRedisUserFor('abc')).toBe('usr_abc');
    expect(legacyRedisUserFor('abcdefgh')).toBe('usr_abcdefgh');
  });

  it('refuses a legacy user whose 8-character stem is reserved, even though the token is not', () => {
    assertSafeToken('postgres-1234');
    expect(refusal(() => legacyRedisUserFor('postgres-1234'))).toMatchObject({
      site: 'redis_user',
      reason: 'reserved',
    });
    expect(refusal(() => legacyRedisUserFor('POSTGRES-1234'))).toMatchObject({ reason: 'reserved' });
  });
});

describe('token rules', () => {
  const cases: [string, unknown, string][] = [
    ['empty', '', 'empty'],
    ['64 bytes', 'a'.repeat(64), 'too_long'],
    ['64 bytes of multi-byte letters', 'é'.repeat(32), 'too_long'],
    ['double quote', 'pool-"x', 'invalid_characters'],
    ['single quote', "pool-'x", 'invalid_characters'],
    ['semicolon', 'a;b', 'invalid_characters'],
    ['space', 'pool x', 'invalid_characters'],
    ['star', 'pool-*', 'invalid_characters'],
    ['percent', '%', 'invalid_characters'],
    ['question mark', 'pool-?', 'invalid_characters'],
    ['bracket', 'pool-[a]', 'invalid_characters'],
    ['colon', 'pool:1', 'invalid_characters'],
    ['slash', '../x', 'invalid_characters'],
    ['backslash', 'pool\\x', 'invalid_characters'],
    ['newline', 'pool-1\n', 'invalid_characters'],
    ['NUL', 'pool\u00001', 'invalid_characters'],
    ['unicode', 'pööl-1', 'invalid_characters'],
    ['cyrillic look-alike', 'p\u043eol-1', 'invalid_characters'],
    ['postgres', 'postgres', 'reserved'],
    ['Template0', 'Template0', 'reserved'],
    ['TEMPLATE1', 'TEMPLATE1', 'reserved'],
    ['default', 'default', 'reserved'],
    ['Root', 'Root', 'reserved'],
    ['admin', 'admin', 'reserved'],
    ['instant_customers', 'instant_customers', 'reserved'],
    ['doadmin', 'DoAdmin', 'reserved'],
    ['prefixed reserved DB_POSTGRES', 'DB_POSTGRES', 'reserved_after_prefix'],
    ['prefixed reserved usr_root', 'usr_root', 'reserved_after_prefix'],
    ['prefixed reserved dedicated_db_template1', 'dedicated_db_template1', 'reserved_after_prefix'],
    ['not a string', undefined, 'not_a_string'],
    ['null', null, 'not_a_string'],
  ];
  it.each(cases)('refuses %s', (_label, token, reason) => {
    const err = refusal(() => assertSafeToken(token as string));
    expect(err.site).toBe('token');
    expect(err.reason).toBe(reason);
    // Every derivation refuses at the token check too.
    expect(refusal(() => databaseNameFor(token as string)).site).toBe('token');
    expect(refusal(() => roleNameFor(token as string)).site).toBe('token');
    expect(refusal(() => redisUserFor(token as string)).site).toBe('token');
    expect(refusal(() => legacyRedisUserFor(token as string)).site).toBe('token');
  });

  it('accepts ordinary tokens with dots, dashes and underscores', () => {
    for (const token of [TOKEN, 'a', 'A.b_c-1', 'postgres1', 'defaults', 'db_tenant', 'x'.repeat(63)]) {
      expect(() => assertSafeToken(token)).not.toThrow();
    }
  });

  it('shows refused values quoted so control characters stay visible', () => {
    const err = refusal(() => assertSafeToken('bad\nline'));
    expect(err.message).toContain('"bad\\nline"');
    expect(err.message).not.toContain('\n');
  });
});

describe('assertDroppableDatabase', () => {
  it('accepts tenant databases with either prefix', () => {
    expect(() => assertDroppableDatabase(`db_${TOKEN}`)).not.toThrow();
    expect(() => assertDroppableDatabase('dedicated_db_abc')).not.toThrow();
  });
  const cases: [string, string][] = [
    ['postgres', 'system_database'],
    ['Postgres', 'system_database'],
    ['TEMPLATE0', 'system_database'],
    ['template1', 'system_database'],
    ['instant_customers', 'system_database'],
    ['instant_platform', 'system_database'],
    ['admin', 'system_database'],
    ['local', 'system_database'],
    ['Config', 'system_database'],
    ['customer_db', 'missing_prefix'],
    ['DB_tenant', 'missing_prefix'],
    ['usr_tenant', 'missing_prefix'],
    ['db_', 'empty'],
    ['dedicated_db_', 'empty'],
    ['db_postgres', 'reserved'],
    ['db_Template1', 'reserved'],
    ['db_a b', 'invalid_characters'],
    ['db_x"; DROP DATABASE postgres; --', 'invalid_characters'],
    [`db_${'a'.repeat(61)}`, 'name_too_long'],
  ];
  it.each(cases)('refuses %j (%s)', (name, reason) => {
    const err = refusal(() => assertDroppableDatabase(name));
    expect(err).toMatchObject({ site: 'database_name', reason });
  });
});

describe('assertDroppableRole', () => {
  it('accepts tenant roles with any of the three prefixes', () => {
    for (const name of [`usr_${TOKEN}`, 'dedicated_usr_abc', 'ded_abc']) {
      expect(() => assertDroppableRole(name)).not.toThrow();
    }
  });
  const cases: [string, string][] = [
    ['postgres', 'system_role'],
    ['Default', 'system_role'],
    ['default', 'system_role'],
    ['replication', 'system_role'],
    ['ROOT', 'system_role'],
    ['doadmin', 'system_role'],
    ['instanode_admin', 'system_role'],
    ['instant_cust', 'system_role'],
    ['admin', 'system_role'],
    ['app_user', 'missing_prefix'],
    ['USR_x', 'missing_prefix'],
    ['db_x', 'missing_prefix'],
    ['usr_', 'empty'],
    ['usr_default', 'reserved'],
    ['ded_ROOT', 'reserved'],
    ['usr_x*', 'invalid_characters'],
    [`usr_${'a'.repeat(60)}`, 'name_too_long'],
  ];
  it.each(cases)('refuses %j (%s)', (name, reason) => {
    expect(refusal(() => assertDroppableRole(name))).toMatchObject({ site: 'role_name', reason });
    expect(refusal(() => assertDroppableRole(name, 'redis_user'))).toMatchObject({
      site: 'redis_user',
      reason,
    });
  });
});
