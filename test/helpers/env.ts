import { randomBytes } from 'node:crypto';

/** Where the tests find the machine's services; local defaults match the dev machines and CI. */
export const TEST_POSTGRES_URL =
  process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The machine's second Postgres cluster: checked for leftovers, never required by a test. */
export const TEST_POSTGRES_URL_2 =
  process.env['TEST_POSTGRES_URL_2'] ?? 'postgres://postgres@127.0.0.1:5433/postgres';
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Outside a test run (a script importing the helpers), one random tag per process. */
const processTag = randomBytes(6).toString('hex');

/**
 * The tag of this test file in this run: 8 hex digits of run id, then 4 of file id (set by
 * test/setup/file-tag.ts as POOL_TOKEN_TAG, which also ends every pool token). Everything a
 * file creates carries it, so its leftovers are found by name and nobody else's are touched.
 */
export function testTag(): string {
  const tag = process.env['POOL_TOKEN_TAG'];
  return tag === undefined || tag === '' ? processTag : tag;
}

/** A short unique suffix carrying the file's tag, so names never collide across files, forks or re-runs. */
export function uniqueSuffix(): string {
  return `${testTag()}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}
