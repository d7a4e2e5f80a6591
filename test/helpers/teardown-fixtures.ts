import { randomUUID } from 'node:crypto';
import net from 'node:net';
import Redis from 'ioredis';
import pg from 'pg';
import { newPoolToken, type ProvisionTargets } from '../../src/dev/seed';
import { createLogger, type Logger } from '../../src/logger';
import type { PoolItemRef } from '../../src/shared/types';
import { TEST_POSTGRES_URL, TEST_REDIS_URL } from './env';

/** The local test cluster as the registry's only cluster, `local:0`. */
export function testClusters(): {
  postgresClusters: Map<string, string>;
  redisClusters: Map<string, string>;
} {
  return {
    postgresClusters: new Map([['local:0', TEST_POSTGRES_URL]]),
    redisClusters: new Map([['local:0', TEST_REDIS_URL]]),
  };
}

export function itemRef(
  poolToken: string,
  resourceType: string,
  providerResourceId = 'local:0',
): PoolItemRef {
  return { id: randomUUID(), resourceType, poolToken, providerResourceId };
}

export type LogLine = Record<string, unknown> & { event?: string; msg?: string };

/** A real pino logger whose JSON lines land in `lines` (and optionally in a shared timeline). */
export function captureLog(onLine?: (line: LogLine) => void): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger(
    { level: 'debug', name: 'teardown-test' },
    {
      write(chunk: string) {
        for (const text of chunk.split('\n')) {
          if (text.trim() === '') continue;
          const line = JSON.parse(text) as LogLine;
          lines.push(line);
          onLine?.(line);
        }
      },
    },
  );
  return { log, lines };
}

export const eventsNamed = (lines: readonly LogLine[], event: string) =>
  lines.filter((l) => l.event === event);

/** A TCP server that counts accepted connections and hangs up at once. */
export async function countingServer(): Promise<{
  port: number;
  connections(): number;
  close(): Promise<void>;
}> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Admin pool + Redis client to provision items on the local test services. */
export function seedTargets(): ProvisionTargets & { close(): Promise<void> } {
  const admin = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 4 });
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
  return {
    admin,
    adminUrl: TEST_POSTGRES_URL,
    redis,
    redisUrl: TEST_REDIS_URL,
    async close() {
      await admin.end();
      redis.disconnect();
    },
  };
}

/** Removes whatever a test left of a token's infra, directly (not through the code under test). */
export async function cleanupToken(targets: ProvisionTargets, token: string): Promise<void> {
  const db = pg.escapeIdentifier(`db_${token}`);
  const role = pg.escapeIdentifier(`usr_${token}`);
  await targets.admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await targets.admin.query(`DROP ROLE IF EXISTS ${role}`);
  await targets.redis.call('ACL', 'DELUSER', `usr_${token}`);
  let cursor = '0';
  do {
    const [next, keys] = await targets.redis.scan(cursor, 'MATCH', `${token}:*`, 'COUNT', 500);
    if (keys.length) await targets.redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

export { newPoolToken };

/** One ordered record of log lines, SQL statements and Redis commands, across all connections. */
export interface TimelineEntry {
  readonly seq: number;
  readonly kind: 'log' | 'sql' | 'redis';
  readonly text: string;
  readonly line?: LogLine;
  /** Postgres backend pid of the connection that ran a statement. */
  readonly pid?: number;
  readonly phase?: 'start' | 'end';
}

/**
 * Records every pg statement (start and end, with the backend pid) and every Redis command
 * sent in this process into one list together with the audit lines, so tests can prove that
 * each destructive statement was announced before it reached a server.
 */
export function createTimeline(): {
  entries: TimelineEntry[];
  log: Logger;
  lines: LogLine[];
  restore(): void;
} {
  const entries: TimelineEntry[] = [];
  let seq = 0;
  const push = (entry: Omit<TimelineEntry, 'seq'>) => entries.push({ seq: seq++, ...entry });
  const { log, lines } = captureLog((line) =>
    push({ kind: 'log', text: String(line.event ?? line.msg), line }),
  );
  const originalQuery = pg.Client.prototype.query;
  const originalSend = Redis.prototype.sendCommand;
  // biome-ignore lint/suspicious/noExplicitAny: wrapping the driver's overloaded method
  (pg.Client.prototype as any).query = function (this: pg.Client & { processID?: number }, ...args: any[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : typeof first?.text === 'string' ? first.text : '';
    const pid = this.processID;
    push({ kind: 'sql', text, pid, phase: 'start' });
    // biome-ignore lint/suspicious/noExplicitAny: see above
    const result = (originalQuery as any).apply(this, args);
    if (result && typeof result.then === 'function') {
      result.then(
        () => push({ kind: 'sql', text, pid, phase: 'end' }),
        () => push({ kind: 'sql', text, pid, phase: 'end' }),
      );
    }
    return result;
  };
  // biome-ignore lint/suspicious/noExplicitAny: wrapping the driver's method
  (Redis.prototype as any).sendCommand = function (this: Redis, command: any, ...rest: any[]) {
    if (command?.name) {
      const args = (command.args ?? []).map((a: unknown) => String(a));
      push({ kind: 'redis', text: [String(command.name).toUpperCase(), ...args].join(' ') });
    }
    // biome-ignore lint/suspicious/noExplicitAny: see above
    return (originalSend as any).call(this, command, ...rest);
  };
  return {
    entries,
    log,
    lines,
    restore() {
      pg.Client.prototype.query = originalQuery;
      Redis.prototype.sendCommand = originalSend;
    },
  };
}
