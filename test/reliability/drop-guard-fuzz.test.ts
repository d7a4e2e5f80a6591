import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken } from '../../src/dev/seed';
import { createLogger } from '../../src/logger';
import {
  assertDroppableDatabase,
  assertDroppableRole,
  databaseNameFor,
  legacyRedisUserFor,
  redisUserFor,
  roleNameFor,
} from '../../src/teardown/drop-guard';
import { DropRefusedError } from '../../src/teardown/errors';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import {
  SPEC_DATABASE_PREFIXES,
  SPEC_RESERVED_TOKENS,
  SPEC_SYSTEM_DATABASES,
  SPEC_SYSTEM_ROLES,
  SPEC_TOKEN_CHARS,
  SPEC_USER_PREFIXES,
} from '../helpers/domain-spec';
import { seedFor } from '../helpers/prng';
import { recordFigures } from '../helpers/results';
import { countingServer, itemRef } from '../helpers/teardown-fixtures';

/**
 * Fuzzing the drop guard with fast-check (more than 10,000 generated cases in all). Whatever
 * the token or name, an accepted one yields a name with a tenant prefix, at most 63 bytes, and
 * nothing from the reserved or system lists; and every refusal is a DropRefusedError raised
 * before a connection opens: the registry points at a local TCP server that counts accepted
 * connections, and the count stays 0 until the control case at the end.
 */

const RESERVED_TOKENS: readonly string[] = SPEC_RESERVED_TOKENS;
const SYSTEM_DATABASES: readonly string[] = SPEC_SYSTEM_DATABASES;
const SYSTEM_ROLES: readonly string[] = SPEC_SYSTEM_ROLES;
const DATABASE_PREFIXES: readonly string[] = SPEC_DATABASE_PREFIXES;
const USER_PREFIXES: readonly string[] = SPEC_USER_PREFIXES;
const TOKEN_CHARS = SPEC_TOKEN_CHARS;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const inList = (list: readonly string[], s: string) => list.includes(s.toLowerCase());

/** Everything wrong with an accepted name; empty when it is a legitimate tenant name. */
function problemsWithAccepted(
  name: unknown,
  prefixes: readonly string[],
  system: readonly string[],
): string[] {
  if (typeof name !== 'string') return [`not a string: ${String(name)}`];
  const problems: string[] = [];
  const prefix = prefixes.find((p) => name.startsWith(p));
  if (prefix === undefined) problems.push('no tenant prefix');
  if (bytes(name) > 63) problems.push(`${bytes(name)} bytes`);
  if (inList(system, name)) problems.push('a system name');
  const tenant = prefix === undefined ? name : name.slice(prefix.length);
  if (tenant === '') problems.push('empty tenant part');
  if (!TOKEN_CHARS.test(tenant)) problems.push('tenant part outside [A-Za-z0-9._-]');
  if (inList(RESERVED_TOKENS, tenant)) problems.push('tenant part reserved');
  return problems;
}

const mixedCaseOf = (words: readonly string[]) =>
  fc.constantFrom(...words).chain((w) => fc.mixedCase(fc.constant(w)));
const ALL_PREFIXES = [...DATABASE_PREFIXES, ...USER_PREFIXES];

/** Tokens: arbitrary strings, charset-valid strings around the limits, reserved words, injections. */
const tokenArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9._-]{0,70}$/),
  fc.integer({ min: 50, max: 70 }).map((n) => `pool-${randomUUID()}`.padEnd(n, 'x')),
  mixedCaseOf(RESERVED_TOKENS),
  fc.tuple(mixedCaseOf(ALL_PREFIXES), mixedCaseOf(RESERVED_TOKENS)).map(([p, w]) => p + w),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9-]{0,20}$/),
      fc.constantFrom(
        '"',
        "'",
        ';',
        ' ',
        '*',
        '?',
        '[',
        ']',
        '\\',
        '%',
        ':',
        '/',
        '\n',
        '\u0000',
        'é',
        '\u200b',
        '😀',
      ),
      fc.stringMatching(/^[a-z0-9-]{0,20}$/),
    )
    .map(([a, special, b]) => a + special + b),
);

/** Whole names, as if read from a row: prefixes with reserved, system or arbitrary tails. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(mixedCaseOf(ALL_PREFIXES), tokenArb).map(([p, t]) => p + t),
  mixedCaseOf([...SYSTEM_DATABASES, ...SYSTEM_ROLES]),
  fc
    .tuple(fc.constantFrom(...ALL_PREFIXES), mixedCaseOf([...SYSTEM_DATABASES, ...SYSTEM_ROLES]))
    .map(([p, s]) => p + s),
  tokenArb,
);

function outcome(
  fn: () => unknown,
): { accepted: true; value: unknown } | { accepted: false; error: unknown } {
  try {
    return { accepted: true, value: fn() };
  } catch (error) {
    return { accepted: false, error };
  }
}

describe('fuzzing the drop guard', () => {
  let server: Awaited<ReturnType<typeof countingServer>>;
  let registry: TeardownRegistry;
  let seed: number;
  const startedAt = Date.now();
  /** Filled by each test when it finishes; the results file gets only these. */
  const measured: {
    tokens?: { cases: number; accepted: number; refused: number };
    names?: { cases: number };
    refusals?: { cases: number; connections: number };
    controlConnections?: number;
  } = {};

  beforeAll(async () => {
    seed = seedFor('drop-guard fuzz');
    server = await countingServer();
    const discard = new Writable({ write: (_chunk, _enc, done) => done() });
    registry = createTeardownRegistry({
      postgresClusters: new Map([['local:0', `postgres://admin:pw@127.0.0.1:${server.port}/postgres`]]),
      redisClusters: new Map([['local:0', `redis://127.0.0.1:${server.port}`]]),
      concurrency: 2,
      log: createLogger({ level: 'debug' }, discard),
      postgres: { connectTimeoutMs: 2_000 },
      redis: { connectTimeoutMs: 1_000, commandTimeoutMs: 2_000 },
    });
  });

  afterAll(async () => {
    await registry?.close();
    await server?.close();
    // Only what was measured: a part whose test did not finish is null, never a zero.
    const { tokens, names, refusals } = measured;
    const counted = [tokens?.cases, names?.cases, refusals?.cases].filter(
      (n): n is number => n !== undefined,
    );
    const total = counted.reduce((a, b) => a + b, 0);
    recordFigures({
      scenario: 'drop-guard fuzz',
      runs: total,
      items: total,
      faults: `${tokens?.cases ?? 'unmeasured'} tokens x 4 derivations, ${names?.cases ?? 'unmeasured'} names x 2 checks, ${refusals?.cases ?? 'unmeasured'} refused teardowns`,
      // A refused name that reached the server would be the fuzz's wrongful drop.
      wrongfulDrops: refusals?.connections ?? null,
      leaks: null,
      rowsLost: null,
      durationMs: Date.now() - startedAt,
      accepted: tokens?.accepted ?? null,
      refused: tokens?.refused ?? null,
      connectionsDuringRefusals: refusals?.connections ?? null,
      controlConnections: measured.controlConnections ?? null,
      finished: Object.keys(measured).sort(),
    });
  });

  it('an accepted token always derives a prefixed, short, unreserved name; a refused one throws DropRefusedError', () => {
    const derivations = [
      { fn: databaseNameFor, prefixes: DATABASE_PREFIXES, system: SYSTEM_DATABASES },
      { fn: roleNameFor, prefixes: USER_PREFIXES, system: SYSTEM_ROLES },
      { fn: redisUserFor, prefixes: USER_PREFIXES, system: SYSTEM_ROLES },
      { fn: legacyRedisUserFor, prefixes: USER_PREFIXES, system: SYSTEM_ROLES },
    ];
    const cases = { cases: 0, accepted: 0, refused: 0 };
    fc.assert(
      fc.property(tokenArb, (token) => {
        cases.cases++;
        for (const { fn, prefixes, system } of derivations) {
          const result = outcome(() => fn(token));
          if (result.accepted) {
            cases.accepted++;
            expect(
              problemsWithAccepted(result.value, prefixes, system),
              `${fn.name}(${JSON.stringify(token)})`,
            ).toEqual([]);
            // The token itself obeys the rules (the legacy user uses only its first 8 characters).
            expect(
              problemsWithAccepted(`usr_${token}`, USER_PREFIXES, SYSTEM_ROLES).filter(
                (p) => !/bytes/.test(p),
              ),
            ).toEqual([]);
          } else {
            cases.refused++;
            expect(result.error, `${fn.name}(${JSON.stringify(token)})`).toBeInstanceOf(DropRefusedError);
            expect((result.error as DropRefusedError).retryable).toBe(false);
          }
        }
      }),
      { numRuns: 10_000, seed },
    );
    expect(cases.cases).toBe(10_000);
    measured.tokens = cases;
  });

  it('an accepted database or role name is prefixed, short, not a system name and not reserved', () => {
    let cases = 0;
    fc.assert(
      fc.property(nameArb, (name) => {
        cases++;
        for (const [check, prefixes, system] of [
          [assertDroppableDatabase, DATABASE_PREFIXES, SYSTEM_DATABASES],
          [assertDroppableRole, USER_PREFIXES, SYSTEM_ROLES],
        ] as const) {
          const result = outcome(() => check(name));
          if (result.accepted) {
            expect(
              problemsWithAccepted(name, prefixes, system),
              `${check.name}(${JSON.stringify(name)})`,
            ).toEqual([]);
          } else {
            expect(result.error, `${check.name}(${JSON.stringify(name)})`).toBeInstanceOf(DropRefusedError);
          }
        }
      }),
      { numRuns: 5_000, seed: seed + 1 },
    );
    expect(cases).toBe(5_000);
    measured.names = { cases };
  });

  it('every refusal happens before a connection opens (teardown and preflight, postgres and redis)', async () => {
    // Counted from here: the control case below may have connected already (any test order).
    const before = server.connections();
    let cases = 0;
    const refusedTokens = tokenArb.filter(
      (token) =>
        outcome(() => databaseNameFor(token)).accepted === false ||
        outcome(() => legacyRedisUserFor(token)).accepted === false,
    );
    await fc.assert(
      fc.asyncProperty(refusedTokens, fc.constantFrom('postgres', 'redis'), async (token, type) => {
        // Only tokens this type refuses: a token the type accepts would (rightly) connect. A
        // refused legacy alias alone (`postgres-…` gives `usr_postgres`) refuses only that name:
        // the item's own user and keys are still freed (issue 13, item 3).
        const refusedHere =
          type === 'postgres'
            ? !outcome(() => databaseNameFor(token)).accepted || !outcome(() => roleNameFor(token)).accepted
            : !outcome(() => redisUserFor(token)).accepted;
        fc.pre(refusedHere);
        cases++;
        const item = itemRef(token, type);
        expect(() => registry.preflight(item)).toThrow(DropRefusedError);
        await expect(registry.teardown(item)).rejects.toBeInstanceOf(DropRefusedError);
        expect(server.connections() - before).toBe(0);
      }),
      { numRuns: 5_000, seed: seed + 2 },
    );
    expect(cases).toBe(5_000);
    measured.refusals = { cases, connections: server.connections() - before };
    expect(measured.refusals.connections).toBe(0);
  });

  it('control: a valid token does connect, so the zero above was measured by a counter that counts', async () => {
    const before = server.connections();
    await registry.teardown(itemRef(newPoolToken(), 'postgres')).catch(() => undefined);
    measured.controlConnections = server.connections() - before;
    expect(measured.controlConnections).toBeGreaterThan(0);
  });
});
