import { afterEach, describe, expect, it } from 'vitest';
import { newPoolToken } from '../../src/dev/seed';

const UUID_TOKEN = /^pool-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newPoolToken and the test tag (POOL_TOKEN_TAG)', () => {
  const saved = process.env['POOL_TOKEN_TAG'];
  afterEach(() => {
    if (saved === undefined) delete process.env['POOL_TOKEN_TAG'];
    else process.env['POOL_TOKEN_TAG'] = saved;
  });

  it('is a random pool-<uuid v4> without a tag', () => {
    delete process.env['POOL_TOKEN_TAG'];
    const [a, b] = [newPoolToken(), newPoolToken()];
    expect(a).toMatch(UUID_TOKEN);
    expect(b).toMatch(UUID_TOKEN);
    expect(a).not.toBe(b);
  });

  it('ends with the tag, keeping the shape and length of a uuid token', () => {
    process.env['POOL_TOKEN_TAG'] = '0123456789ab';
    const [a, b] = [newPoolToken(), newPoolToken()];
    expect(a).toMatch(UUID_TOKEN);
    expect(a.endsWith('-0123456789ab')).toBe(true);
    expect(a).toHaveLength('pool-'.length + 36);
    expect(a).not.toBe(b);
    process.env['POOL_TOKEN_TAG'] = 'beef';
    expect(newPoolToken()).toMatch(/^pool-[0-9a-f-]{27}[0-9a-f]{5}beef$/);
  });

  it('refuses a tag that would break the token shape, naming the variable', () => {
    for (const bad of ['XYZ', '0123456789abc', 'ab-cd', 'AB']) {
      process.env['POOL_TOKEN_TAG'] = bad;
      expect(() => newPoolToken()).toThrow(
        `POOL_TOKEN_TAG: expected 1 to 12 lowercase hex digits, got ${JSON.stringify(bad)}`,
      );
    }
  });
});
