import { randomBytes } from 'node:crypto';
import { afterAll, inject } from 'vitest';
import { countTagged, describeTagged, sweepTag } from '../helpers/cleanup';

/**
 * Runs in each test file's process before the file (vitest `setupFiles`). It gives the file
 * its tag, the run's id followed by 4 random hex digits, as POOL_TOKEN_TAG: every pool token
 * the file creates ends with it, and every uniqueSuffix() starts with it. After the file's
 * own hooks, whatever still carries the tag (databases, roles, subscriptions and prepared
 * transactions on both clusters, Redis keys and ACL users) is removed with plain SQL and
 * Redis commands, however the file ended. Reported, so a leak in a passing file is seen.
 */
const tag = `${inject('testRunId')}${randomBytes(2).toString('hex')}`;
process.env['POOL_TOKEN_TAG'] = tag;

// biome-ignore lint/correctness/noEmptyPattern: vitest requires a destructuring pattern for the (unused) context
afterAll(async ({}, suite) => {
  const { found, problems } = await sweepTag(tag);
  const file = suite.file?.name ?? suite.name;
  if (countTagged(found) > 0) {
    console.log(`[cleanup] ${file} (tag ${tag}) left, now removed: ${describeTagged(found)}`);
  }
  if (problems.length > 0) {
    throw new Error(`[cleanup] ${file}: could not remove ${problems.join('; ')}`);
  }
}, 120_000);
