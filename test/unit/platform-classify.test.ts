import { describe, expect, it } from 'vitest';
import { boundTokensOf } from '../../src/platform/bindings';
import { checkPlausible, classOf, TERMINAL_STATUSES, tallyAssigned } from '../../src/platform/classify';
import { platformErrorReason } from '../../src/platform/platform-store';

describe('classOf', () => {
  it('no binding is an orphan', () => {
    expect(classOf(undefined)).toBe('orphan');
    expect(classOf([])).toBe('orphan');
  });

  it('a live binding is bound_live; only terminal bindings are bound_terminal', () => {
    for (const status of ['pending', 'active', 'paused', 'suspended'])
      expect(classOf([status])).toBe('bound_live');
    for (const status of TERMINAL_STATUSES) expect(classOf([status])).toBe('bound_terminal');
    expect(classOf(['deleted', 'active'])).toBe('bound_live');
    expect(classOf(['deleted', 'expired'])).toBe('bound_terminal');
    expect(classOf([' Deleted '])).toBe('bound_terminal');
  });

  it('an unrecognised (or empty) status counts as live: never an orphan, never terminal', () => {
    expect(classOf(['migrating'])).toBe('bound_live');
    expect(classOf([''])).toBe('bound_live');
  });
});

describe('checkPlausible', () => {
  it('accepts an inventory with rows and bindings', () => {
    expect(checkPlausible({ hasResources: true, hasBindings: true }, 3)).toBeUndefined();
  });

  it('refuses an empty resources table while items need classifying', () => {
    expect(checkPlausible({ hasResources: false, hasBindings: false }, 1)?.reason).toBe('empty_inventory');
  });

  it('refuses a table with no pooltok binding at all while items need classifying', () => {
    expect(checkPlausible({ hasResources: true, hasBindings: false }, 2)?.reason).toBe('no_bindings');
  });

  it('has nothing to distrust when there is nothing to classify', () => {
    expect(checkPlausible({ hasResources: false, hasBindings: false }, 0)).toBeUndefined();
  });
});

describe('tallyAssigned', () => {
  const rows = [
    { resourceType: 'postgres', cls: 'bound_live', n: 1 },
    { resourceType: 'postgres', cls: 'bound_terminal', n: 1 },
    { resourceType: 'postgres', cls: 'orphan', n: 1 },
    { resourceType: 'redis', cls: 'bound_live', n: 1 },
    { resourceType: 'redis', cls: 'orphan', n: 1 },
    { resourceType: 'redis', cls: 'unknown', n: 4 },
    { resourceType: 'queue', cls: 'orphan', n: 1 },
  ];

  it('counts every class per type, and the stuck gauge counts only orphans', () => {
    const result = tallyAssigned(rows, false);
    expect(result.classes['postgres']).toEqual({ bound_live: 1, bound_terminal: 1, orphan: 1, unknown: 0 });
    expect(result.classes['redis']).toEqual({ bound_live: 1, bound_terminal: 0, orphan: 1, unknown: 4 });
    expect(result.classes['queue']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 1, unknown: 0 });
    // Known types with nothing stuck are exported as 0.
    expect(result.classes['mongodb']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 0, unknown: 0 });
    expect(result.stuck).toEqual({ postgres: 1, redis: 1, queue: 1, mongodb: 0 });
    expect(result.orphans).toBe(3);
  });

  it('keeps types it does not know, and counts a class it does not know as unknown', () => {
    const result = tallyAssigned(
      [
        { resourceType: 'nats', cls: 'orphan', n: 2 },
        { resourceType: 'nats', cls: 'weird', n: 1 },
      ],
      false,
    );
    expect(result.classes['nats']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 2, unknown: 1 });
    expect(result.stuck['nats']).toBe(2);
  });

  it('fails closed: no orphan (earlier orphan verdicts become unknown), bound stays bound, no stuck series', () => {
    const result = tallyAssigned(rows, true);
    expect(result.classes['postgres']).toEqual({ bound_live: 1, bound_terminal: 1, orphan: 0, unknown: 1 });
    expect(result.classes['redis']).toEqual({ bound_live: 1, bound_terminal: 0, orphan: 0, unknown: 5 });
    expect(result.orphans).toBe(0);
    expect(Object.keys(result.stuck)).toEqual([]);
  });

  it('with nothing stuck, reports zeros', () => {
    expect(tallyAssigned([], false).stuck).toEqual({ postgres: 0, redis: 0, queue: 0, mongodb: 0 });
  });
});

describe('boundTokensOf (the segment rule of BINDINGS_SQL)', () => {
  it('reads whole `;`-separated segments, trimmed, prefix in any case, token as written', () => {
    expect(boundTokensOf('local:0;pooltok:pool-a')).toEqual(['pool-a']);
    expect(boundTokensOf('pooltok:pool-a')).toEqual(['pool-a']);
    expect(boundTokensOf('local:0; pooltok:pool-a \t')).toEqual(['pool-a']);
    expect(boundTokensOf('local:0;POOLTOK:POOL-A;replica:2')).toEqual(['POOL-A']);
    expect(boundTokensOf('pooltok:a;pooltok:b')).toEqual(['a', 'b']);
  });

  it('binds nothing else', () => {
    for (const id of [
      null,
      undefined,
      '',
      'local:0',
      'pooltok:',
      'xpooltok:a',
      'local:0,pooltok:a',
      'pool-a',
    ]) {
      expect(boundTokensOf(id), String(id)).toEqual([]);
    }
    // A longer segment is another token, never a prefix match.
    expect(boundTokensOf('pooltok:pool-a:1')).toEqual(['pool-a:1']);
    // Only spaces, tabs, CR and LF are trimmed, as btrim(E' \t\r\n') does.
    expect(boundTokensOf('\u00a0pooltok:a')).toEqual([]);
  });
});

describe('platformErrorReason', () => {
  it('reads connection trouble and timeouts from errors without a SQLSTATE', () => {
    expect(
      platformErrorReason(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      ),
    ).toBe('connection');
    expect(platformErrorReason(new Error('timeout exceeded when trying to connect'))).toBe('timeout');
  });
});
