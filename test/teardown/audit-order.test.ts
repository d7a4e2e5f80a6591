import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newPoolToken, provisionItem } from '../../src/dev/seed';
import { createTeardownRegistry, type TeardownRegistry } from '../../src/teardown/registry';
import {
  cleanupToken,
  createTimeline,
  itemRef,
  seedTargets,
  type TimelineEntry,
  testClusters,
} from '../helpers/teardown-fixtures';

/** Recognises a destructive statement on the wire and says which announce it needs. */
function destructive(entry: TimelineEntry): { action: string; target: string } | undefined {
  const text = entry.text.replace(/\s+/g, ' ').trim();
  const ident = (m: RegExpMatchArray | null) => m?.[1]?.replace(/""/g, '"');
  if (entry.kind === 'sql' && entry.phase === 'start') {
    let m = text.match(/^REVOKE CONNECT ON DATABASE "((?:[^"]|"")+)"/i);
    if (m) return { action: 'revoke_connect', target: ident(m) as string };
    m = text.match(/^ALTER ROLE "((?:[^"]|"")+)" NOLOGIN/i);
    if (m) return { action: 'disable_login', target: ident(m) as string };
    m = text.match(/^DROP DATABASE (?:IF EXISTS )?"((?:[^"]|"")+)"/i);
    if (m) return { action: 'drop_database', target: ident(m) as string };
    m = text.match(/^DROP ROLE (?:IF EXISTS )?"((?:[^"]|"")+)"/i);
    if (m) return { action: 'drop_role', target: ident(m) as string };
    if (/pg_terminate_backend/i.test(text)) return { action: 'terminate_backends', target: '?' };
    if (/^(DROP|ALTER|REVOKE|DELETE|TRUNCATE)\b/i.test(text)) return { action: 'unrecognised', target: text };
  }
  if (entry.kind === 'redis') {
    const [cmd, sub, arg] = text.split(' ');
    if (cmd === 'ACL' && sub?.toUpperCase() === 'DELUSER')
      return { action: 'acl_deluser', target: arg ?? '' };
    if (cmd === 'UNLINK' || cmd === 'DEL' || cmd === 'FLUSHDB' || cmd === 'FLUSHALL') {
      return { action: cmd === 'UNLINK' ? 'unlink_keys' : 'unrecognised', target: text };
    }
  }
  return undefined;
}

/**
 * Walks the timeline: every destructive statement must consume an earlier, unconsumed
 * `provisioner.drop` with its action (and target), and no announce may be left unused.
 */
function matchAnnounces(entries: readonly TimelineEntry[], token: string): string[] {
  const pending: TimelineEntry[] = [];
  const order: string[] = [];
  for (const entry of entries) {
    if (entry.kind === 'log' && entry.line?.event === 'provisioner.drop' && entry.line.token === token) {
      pending.push(entry);
      continue;
    }
    const needs = destructive(entry);
    if (!needs) continue;
    expect(needs.action, `unannounced destructive statement: ${entry.text}`).not.toBe('unrecognised');
    const index = pending.findIndex(
      (p) =>
        p.line?.action === needs.action &&
        (needs.target === '?' || needs.action === 'unlink_keys' || p.line?.target === needs.target),
    );
    expect(index, `no provisioner.drop before: ${entry.text}`).toBeGreaterThanOrEqual(0);
    const [announce] = pending.splice(index, 1);
    expect(announce && announce.seq < entry.seq).toBe(true);
    if (needs.action === 'unlink_keys') {
      // The announce says how many keys this UNLINK carries.
      expect(Number(announce?.line?.keys)).toBe(entry.text.split(' ').length - 1);
    }
    order.push(needs.action);
  }
  expect(pending.map((p) => p.text)).toEqual([]);
  return order;
}

const targets = seedTargets();
const tokens: string[] = [];
let timeline: ReturnType<typeof createTimeline>;
let registry: TeardownRegistry;

beforeAll(() => {
  timeline = createTimeline();
  registry = createTeardownRegistry({ ...testClusters(), concurrency: 2, log: timeline.log });
});

afterEach(async () => {
  for (const token of tokens.splice(0)) await cleanupToken(targets, token);
});

afterAll(async () => {
  timeline.restore();
  await registry.close();
  await targets.close();
});

describe('audit events precede the statements they announce', () => {
  it('postgres: every destructive statement has its provisioner.drop first; database before role', async () => {
    const token = newPoolToken();
    tokens.push(token);
    await provisionItem(targets, { resourceType: 'postgres', token });
    const from = timeline.entries.length;
    await registry.teardown(itemRef(token, 'postgres'));
    const entries = timeline.entries.slice(from);

    const order = matchAnnounces(entries, token);
    expect(order).toEqual([
      'revoke_connect',
      'disable_login',
      'terminate_backends',
      'drop_database',
      'drop_role',
    ]);

    const announceOf = (action: string) =>
      entries.find(
        (e) => e.kind === 'log' && e.line?.event === 'provisioner.drop' && e.line.action === action,
      );
    const sqlOf = (re: RegExp, phase: 'start' | 'end') =>
      entries.find((e) => e.kind === 'sql' && e.phase === phase && re.test(e.text));
    const dbAnnounce = announceOf('drop_database');
    const roleAnnounce = announceOf('drop_role');
    expect(dbAnnounce?.line).toMatchObject({
      event: 'provisioner.drop',
      msg: 'provisioner.drop',
      token,
      target: `db_${token}`,
      resource_type: 'RESOURCE_TYPE_POSTGRES',
      backend: 'shared',
      caller: 'pool_reaper',
      provider_resource_id: 'local:0',
    });
    expect(roleAnnounce?.line).toMatchObject({ target: `usr_${token}` });
    expect(dbAnnounce!.seq).toBeLessThan(roleAnnounce!.seq);
    // The role is dropped only after the database drop finished.
    const dbDropEnd = sqlOf(/^DROP DATABASE/, 'end');
    const roleDropStart = sqlOf(/^DROP ROLE/, 'start');
    expect(dbDropEnd!.seq).toBeLessThan(roleAnnounce!.seq);
    expect(roleAnnounce!.seq).toBeLessThan(roleDropStart!.seq);
    // One connection carried the whole sequence.
    const pids = new Set(entries.filter((e) => e.kind === 'sql' && e.pid !== undefined).map((e) => e.pid));
    expect(pids.size).toBe(1);
  });

  it('redis: ACL DELUSER and every UNLINK batch are announced first; users before keys', async () => {
    const token = newPoolToken();
    tokens.push(token);
    await provisionItem(targets, { resourceType: 'redis', token, keys: 20 });
    const from = timeline.entries.length;
    await registry.teardown(itemRef(token, 'redis'));
    const entries = timeline.entries.slice(from);
    const order = matchAnnounces(entries, token);
    expect(order[0]).toBe('acl_deluser');
    expect(order.slice(1).every((a) => a === 'unlink_keys')).toBe(true);
    expect(order.length).toBeGreaterThanOrEqual(2);
    expect(entries.some((e) => e.kind === 'redis' && e.text.startsWith('ACL DELUSER default'))).toBe(false);
  });

  it('the checker itself catches a statement with no announce', () => {
    const token = 'pool-x';
    const fake: TimelineEntry[] = [
      { seq: 0, kind: 'sql', phase: 'start', text: 'DROP DATABASE IF EXISTS "db_pool-x" WITH (FORCE)' },
    ];
    expect(() => matchAnnounces(fake, token)).toThrow(/no provisioner.drop before/);
  });
});
