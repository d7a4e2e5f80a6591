import { describe, expect, it } from 'vitest';
import {
  checkPlausible,
  classifyItems,
  classOf,
  type PlatformInventory,
  TERMINAL_STATUSES,
} from '../../src/platform/classify';
import { platformErrorReason } from '../../src/platform/platform-store';

const item = (poolToken: string, resourceType = 'postgres') => ({ poolToken, resourceType });

function inventory(
  bindings: Record<string, string[]>,
  flags: Partial<PlatformInventory> = {},
): PlatformInventory {
  return {
    hasResources: true,
    hasBindings: true,
    bindings: new Map(Object.entries(bindings)),
    ...flags,
  };
}

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

describe('classifyItems', () => {
  const items = [
    item('pool-live-1'),
    item('pool-live-2', 'redis'),
    item('pool-terminal'),
    item('pool-orphan-1'),
    item('pool-orphan-2', 'redis'),
    item('pool-orphan-3', 'queue'),
  ];
  const inv = inventory({
    'pool-live-1': ['active'],
    'pool-live-2': ['paused', 'deleted'],
    'pool-terminal': ['reaped'],
  });

  it('counts every class per type, and the stuck gauge counts only orphans', () => {
    const result = classifyItems(items, inv);
    expect(result.failure).toBeUndefined();
    expect(result.classes['postgres']).toEqual({ bound_live: 1, bound_terminal: 1, orphan: 1, unknown: 0 });
    expect(result.classes['redis']).toEqual({ bound_live: 1, bound_terminal: 0, orphan: 1, unknown: 0 });
    expect(result.classes['queue']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 1, unknown: 0 });
    // Known types with nothing stuck are exported as 0.
    expect(result.classes['mongodb']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 0, unknown: 0 });
    expect(result.stuck).toEqual({ postgres: 1, redis: 1, queue: 1, mongodb: 0 });
    expect(result.orphans.map((o) => o.poolToken)).toEqual([
      'pool-orphan-1',
      'pool-orphan-2',
      'pool-orphan-3',
    ]);
  });

  it('keeps types it does not know', () => {
    const result = classifyItems([item('pool-x', 'nats')], inventory({}, {}));
    expect(result.classes['nats']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 1, unknown: 0 });
  });

  it('looks bindings up by the exact token', () => {
    const result = classifyItems(
      [item('pool-abc'), item('pool-abcd')],
      inventory({ 'pool-abcd': ['active'] }),
    );
    expect(result.orphans.map((o) => o.poolToken)).toEqual(['pool-abc']);
  });

  it('fails closed on an implausible inventory: nothing is an orphan, all unknown, stuck counts everything', () => {
    for (const flags of [{ hasResources: false, hasBindings: false }, { hasBindings: false }]) {
      const result = classifyItems(items, inventory({}, flags));
      expect(result.failure?.reason).toMatch(/empty_inventory|no_bindings/);
      expect(result.orphans).toEqual([]);
      expect(result.classes['postgres']).toEqual({ bound_live: 0, bound_terminal: 0, orphan: 0, unknown: 3 });
      expect(result.stuck).toEqual({ postgres: 3, redis: 2, queue: 1, mongodb: 0 });
    }
  });

  it('fails closed on a read failure', () => {
    const result = classifyItems(items, { reason: 'connection', message: 'ECONNREFUSED' });
    expect(result.failure).toEqual({ reason: 'connection', message: 'ECONNREFUSED' });
    expect(result.orphans).toEqual([]);
    expect(result.classes['redis']?.unknown).toBe(2);
  });

  it('with nothing stuck, reports zeros and no failure, whatever the inventory', () => {
    const result = classifyItems([], inventory({}, { hasResources: false, hasBindings: false }));
    expect(result.failure).toBeUndefined();
    expect(result.stuck).toEqual({ postgres: 0, redis: 0, queue: 0, mongodb: 0 });
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
