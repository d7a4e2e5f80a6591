/**
 * The drop guard's rules exactly as ../shared/docs/domain.md states them, written out here on
 * purpose instead of imported from src/teardown/drop-guard.ts: the tests compare the guard
 * against this independent copy, so a change to the guard's own lists is caught.
 */
export const SPEC_RESERVED_TOKENS = [
  'postgres',
  'template0',
  'template1',
  'admin',
  'default',
  'root',
  'instant_customers',
  'instant_platform',
  'instant_cust',
  'instanode_admin',
  'doadmin',
] as const;

export const SPEC_SYSTEM_DATABASES = [
  'postgres',
  'template0',
  'template1',
  'instant_customers',
  'instant_platform',
  'admin',
  'local',
  'config',
] as const;

export const SPEC_SYSTEM_ROLES = [
  'postgres',
  'instant_cust',
  'instanode_admin',
  'doadmin',
  'admin',
  'root',
  'default',
  'replication',
] as const;

export const SPEC_DATABASE_PREFIXES = ['dedicated_db_', 'db_'] as const;
export const SPEC_USER_PREFIXES = ['dedicated_usr_', 'usr_', 'ded_'] as const;
export const SPEC_TOKEN_CHARS = /^[A-Za-z0-9._-]+$/;
