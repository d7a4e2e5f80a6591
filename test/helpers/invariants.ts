import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import Redis from 'ioredis';
import pg from 'pg';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, uniqueSuffix } from './env';
import { activityRecords } from './history';

/**
 * The two invariants, checked from the outside against the real services:
 *  (A) no row is deleted while its infra is alive;
 *  (B) no infra is dropped that is not a stale `failed` item's.
 *
 * `snapshot()` records the pool_items rows (status, assigned_at, which are stale failed), the
 * databases, roles, Redis keys and ACL users derived from their tokens, and the canaries. It
 * also installs a row log (a trigger on the test's own pool_items, never the reaper's code) so
 * that every row change made afterwards, by the reaper or by a racing "provisioner", is known
 * with its time. `check()` then compares the present with that record, the `provisioner.drop`
 * audit events and the workflow histories, and returns every violation as a sentence.
 */

/** Names that must exist on every test cluster; never created or dropped by the tests. */
export const SYSTEM_OBJECTS = {
  databases: ['postgres', 'template0', 'template1'],
  roles: ['postgres'],
  aclUsers: ['default'],
} as const;

export interface Canaries {
  readonly databases: readonly string[];
  readonly roles: readonly string[];
  readonly aclUsers: readonly string[];
  readonly keys: readonly string[];
}

export interface OwnedCanaries extends Canaries {
  cleanup(): Promise<void>;
}

interface Targets {
  readonly adminUrl: string;
  readonly redisUrl: string;
}

const defaultTargets = (): Targets => ({ adminUrl: TEST_POSTGRES_URL, redisUrl: TEST_REDIS_URL });

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function withRedis<T>(redisUrl: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/**
 * A customer-like database `db_canary_<rand>` and role `usr_canary_<rand>` that are in no
 * pool_items row, with a Redis ACL user and keys of the same stem: whatever the reaper does,
 * they must survive. (System names such as `postgres` are checked, never created.)
 */
export async function createCanaries(targets: Targets = defaultTargets()): Promise<OwnedCanaries> {
  const stem = `canary_${uniqueSuffix()}`;
  const database = `db_${stem}`;
  const role = `usr_${stem}`;
  const keys = [1, 2, 3].map((n) => `${stem}:k${n}`);
  await withAdmin(targets.adminUrl, async (admin) => {
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} NOLOGIN`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  });
  await withRedis(targets.redisUrl, async (redis) => {
    await redis.call('ACL', 'SETUSER', role, 'off', `~${stem}:*`, '+@read');
    for (const key of keys) await redis.set(key, 'canary');
  });
  return {
    databases: [database],
    roles: [role],
    aclUsers: [role],
    keys,
    async cleanup() {
      await withAdmin(targets.adminUrl, async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
        await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
      });
      await withRedis(targets.redisUrl, async (redis) => {
        await redis.call('ACL', 'DELUSER', role);
        await redis.del(...keys);
      });
    },
  };
}

/**
 * Keys that look like an item's but belong to someone else (`<token>x:…`, `other:<token>:…`):
 * the domain says they must survive the item's teardown. Returned as canary key names.
 */
export async function createNeighbourKeys(
  tokens: readonly string[],
  targets: Targets = defaultTargets(),
): Promise<string[]> {
  const keys = tokens.flatMap((t) => [`${t}x:neighbour`, `other:${t}:neighbour`]);
  if (keys.length === 0) return keys;
  await withRedis(targets.redisUrl, async (redis) => {
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.set(key, 'not the item');
    await pipeline.exec();
  });
  return keys;
}

export async function removeKeys(
  keys: readonly string[],
  targets: Targets = defaultTargets(),
): Promise<void> {
  if (keys.length === 0) return;
  await withRedis(targets.redisUrl, async (redis) => {
    await redis.del(...keys);
  });
}

interface RowState {
  readonly id: string;
  readonly resourceType: string;
  readonly poolToken: string;
  readonly status: string;
  readonly assignedAtMs: number | null;
}

interface RowLogEntry extends RowState {
  readonly seq: number;
  readonly op: 'INSERT' | 'UPDATE' | 'DELETE';
  readonly atMs: number;
  readonly app: string;
}

/** One `provisioner.drop` audit event: the reaper announced a destructive statement on `token`'s infra. */
export interface DropEvent {
  readonly token: string;
  readonly atMs: number;
  readonly action: string;
  readonly target: string;
}

/** The `provisioner.drop` events among JSON log lines (the worker's stdout or a CapturedLog). */
export function dropEventsFrom(lines: readonly Record<string, unknown>[]): DropEvent[] {
  const events: DropEvent[] = [];
  for (const line of lines) {
    if (line['event'] !== 'provisioner.drop' || typeof line['token'] !== 'string') continue;
    const time = line['time'];
    const atMs = typeof time === 'number' ? time : Date.parse(String(time));
    if (!Number.isFinite(atMs)) continue;
    events.push({
      token: line['token'],
      atMs,
      action: String(line['action'] ?? ''),
      target: String(line['target'] ?? ''),
    });
  }
  return events;
}

export interface HistoryCheck {
  readonly violations: string[];
  /** Workflow histories read (passes and their children; the ticker is skipped). */
  readonly workflows: number;
  readonly deprovisionsFreed: number;
  readonly deletes: number;
}

/**
 * Every `deleteItem` in a history (an activity, or a local activity's marker) must come
 * after a completed `deprovision` of the same item whose result says it freed the infra.
 */
export function checkItemHistory(
  workflowId: string,
  history: temporal.api.history.v1.IHistory,
): HistoryCheck {
  const outcomes = new Map<number, string | undefined>();
  for (const event of history.events ?? []) {
    const completed = event.activityTaskCompletedEventAttributes;
    if (!completed) continue;
    const payload = completed.result?.payloads?.[0];
    const result = payload
      ? (defaultPayloadConverter.fromPayload(payload) as { outcome?: string })
      : undefined;
    outcomes.set(Number(event.eventId), result?.outcome);
  }
  const records = activityRecords(history);
  const freed = records.filter(
    (r) =>
      r.activity === 'deprovision' &&
      r.completedEventId !== undefined &&
      outcomes.get(r.completedEventId) === 'freed',
  );
  const violations: string[] = [];
  let deletes = 0;
  for (const del of records.filter((r) => r.activity === 'deleteItem')) {
    deletes++;
    // A failed local activity records no result, so no item: it deleted nothing (the row log says).
    if (del.itemId === undefined && del.completedEventId === undefined) continue;
    const freedBefore = freed.some(
      (d) =>
        d.itemId === del.itemId && (d.completedEventId ?? Number.POSITIVE_INFINITY) < del.scheduledEventId,
    );
    if (!freedBefore) {
      violations.push(
        `history ${workflowId}: deleteItem of item ${del.itemId} (event ${del.scheduledEventId}) is not preceded by a completed deprovision that freed it`,
      );
    }
  }
  return { violations, workflows: 1, deprovisionsFreed: freed.length, deletes };
}

/**
 * Reads every workflow started on `taskQueue` since `sinceMs` (the passes, and whatever
 * children they start: the check does not depend on how a pass is split) and checks the
 * order of deprovision and deleteItem in each history.
 */
export async function checkHistories(
  client: Client,
  taskQueue: string,
  sinceMs: number,
): Promise<HistoryCheck> {
  const since = new Date(sinceMs - 1000).toISOString();
  const query = `TaskQueue = '${taskQueue}' AND StartTime >= '${since}'`;
  const total = { violations: [] as string[], workflows: 0, deprovisionsFreed: 0, deletes: 0 };
  for await (const wf of client.workflow.list({ query })) {
    if (wf.type === 'poolReaper') continue;
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    const one = checkItemHistory(wf.workflowId, history);
    total.violations.push(...one.violations);
    total.workflows += 1;
    total.deprovisionsFreed += one.deprovisionsFreed;
    total.deletes += one.deletes;
  }
  return total;
}

type ObjectKind = 'database' | 'role' | 'acl user' | 'key';

interface ObservedObject {
  readonly kind: ObjectKind;
  readonly name: string;
}

const label = (o: ObservedObject) => `${o.kind} ${o.name}`;

/** Which of these names exist now, and every key that starts with `<token>:` of a watched token. */
async function observe(
  targets: Targets,
  names: { databases: string[]; roles: string[]; aclUsers: string[]; keys: string[] },
  tokens: ReadonlySet<string>,
): Promise<Map<string, ObservedObject>> {
  const present = new Map<string, ObservedObject>();
  const add = (o: ObservedObject) => present.set(label(o), o);
  await withAdmin(targets.adminUrl, async (admin) => {
    // An invalid database (datconnlimit = -2, an interrupted drop) is still present.
    const dbs = await admin.query<{ n: string }>(
      'SELECT datname AS n FROM pg_database WHERE datname = ANY($1::text[])',
      [names.databases],
    );
    for (const r of dbs.rows) add({ kind: 'database', name: r.n });
    const roles = await admin.query<{ n: string }>(
      'SELECT rolname AS n FROM pg_roles WHERE rolname = ANY($1::text[])',
      [names.roles],
    );
    for (const r of roles.rows) add({ kind: 'role', name: r.n });
  });
  await withRedis(targets.redisUrl, async (redis) => {
    const users = new Set((await redis.call('ACL', 'USERS')) as string[]);
    for (const user of names.aclUsers) if (users.has(user)) add({ kind: 'acl user', name: user });
    const wantedKeys = new Set(names.keys);
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) {
        if (wantedKeys.has(key) || ownersOfKey(key, tokens).length > 0) add({ kind: 'key', name: key });
      }
    } while (cursor !== '0');
  });
  return present;
}

/** Tokens T (from `tokens`) such that `key` starts with `T:`. */
function ownersOfKey(key: string, tokens: ReadonlySet<string>): string[] {
  const owners: string[] = [];
  for (let i = key.indexOf(':'); i > 0; i = key.indexOf(':', i + 1)) {
    const candidate = key.slice(0, i);
    if (tokens.has(candidate)) owners.push(candidate);
  }
  return owners;
}

/** The tokens whose derived names an object carries. */
function ownersOf(o: ObservedObject, tokens: ReadonlySet<string>): string[] {
  if (o.kind === 'key') return ownersOfKey(o.name, tokens);
  const prefix = o.kind === 'database' ? 'db_' : 'usr_';
  if (!o.name.startsWith(prefix)) return [];
  const token = o.name.slice(prefix.length);
  return tokens.has(token) ? [token] : [];
}

export interface InvariantReport {
  readonly violations: string[];
  /** Objects dropped that were not a stale failed item's (canaries included), plus drops announced for such items. */
  readonly wrongfulDrops: number;
  /** Rows deleted while some of their infra still exists: infra nobody can ever reap again. */
  readonly leaks: number;
  /** Rows deleted that were not failed when deleted, or that vanished without a logged delete. */
  readonly rowsLost: number;
  /** Objects that disappeared without a `provisioner.drop` event for their token. */
  readonly unannouncedDrops: number;
  readonly historyViolations: number;
  /** Rows of the snapshot (or added since) that are gone. */
  readonly rowsDeleted: number;
  /** Objects present at the snapshot that are gone. */
  readonly objectsDropped: number;
  /** Stale failed rows still present (not a violation: the next pass will reap them). */
  readonly staleFailedLeft: readonly { id: string; poolToken: string; resourceType: string }[];
  /** Rows now ready/assigned whose infra was dropped while they were stale failed (reclaimed afterwards). */
  readonly notes: readonly string[];
  readonly history?: HistoryCheck;
}

export interface CheckerOptions {
  /** The provisioner database holding pool_items. */
  readonly pool: pg.Pool;
  readonly failedGraceMs: number;
  readonly canaries?: Canaries;
  readonly targets?: Targets;
}

export interface CheckOptions {
  /** `provisioner.drop` events; required for the "announced before dropped" check. */
  readonly dropEvents: readonly DropEvent[];
  /** Histories of the workflows on this task queue started since the snapshot (passes and children). */
  readonly temporal?: { readonly client: Client; readonly taskQueue: string };
}

const ROW_LOG_DDL = [
  `CREATE TABLE IF NOT EXISTS reliability_row_log (
     seq bigserial PRIMARY KEY,
     op text NOT NULL,
     id uuid NOT NULL,
     resource_type text NOT NULL,
     pool_token text NOT NULL,
     status text NOT NULL,
     assigned_at timestamptz,
     at timestamptz NOT NULL DEFAULT clock_timestamp(),
     app text NOT NULL DEFAULT current_setting('application_name'))`,
  `CREATE OR REPLACE FUNCTION reliability_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'DELETE' THEN
       INSERT INTO reliability_row_log (op, id, resource_type, pool_token, status, assigned_at)
       VALUES (TG_OP, OLD.id, OLD.resource_type, OLD.pool_token, OLD.status, OLD.assigned_at);
       RETURN OLD;
     END IF;
     INSERT INTO reliability_row_log (op, id, resource_type, pool_token, status, assigned_at)
     VALUES (TG_OP, NEW.id, NEW.resource_type, NEW.pool_token, NEW.status, NEW.assigned_at);
     RETURN NEW;
   END $$`,
  `CREATE OR REPLACE TRIGGER reliability_row_log AFTER INSERT OR UPDATE OR DELETE ON pool_items
     FOR EACH ROW EXECUTE FUNCTION reliability_log_row()`,
];

const msOf = (v: unknown): number | null =>
  v === null || v === undefined ? null : new Date(v as string).getTime();

export class InvariantChecker {
  private snapshotAtMs = 0;
  private logSeq = 0;
  private readonly baseRows = new Map<string, RowState>();
  /** Objects that existed when first seen, by label, with the time they were first seen. */
  private readonly tracked = new Map<string, ObservedObject & { seenAtMs: number }>();
  private readonly targets: Targets;

  constructor(private readonly options: CheckerOptions) {
    this.targets = options.targets ?? defaultTargets();
  }

  get takenAt(): number {
    return this.snapshotAtMs;
  }

  /** Rows as they are now, and the infra of their tokens and of the canaries. */
  async snapshot(): Promise<{ rows: number; staleFailed: number; objects: number }> {
    for (const sql of ROW_LOG_DDL) await this.options.pool.query(sql);
    const { rows: seq } = await this.options.pool.query<{ s: string | null }>(
      'SELECT max(seq) AS s FROM reliability_row_log',
    );
    this.logSeq = Number(seq[0]?.s ?? 0);
    this.snapshotAtMs = Date.now();
    this.baseRows.clear();
    for (const row of await this.readRows()) this.baseRows.set(row.id, row);
    this.tracked.clear();
    await this.trackNewObjects();
    return {
      rows: this.baseRows.size,
      staleFailed: [...this.baseRows.values()].filter((r) => this.eligible(r, this.snapshotAtMs)).length,
      objects: this.tracked.size,
    };
  }

  /** Starts watching the infra of rows inserted since the snapshot (call after inserting them). */
  async trackNewObjects(): Promise<void> {
    const tokens = await this.allTokens();
    const present = await observe(this.targets, this.namesFor(tokens), tokens);
    const now = Date.now();
    for (const [key, o] of present)
      if (!this.tracked.has(key)) this.tracked.set(key, { ...o, seenAtMs: now });
  }

  /** The labels of `token`'s infra that exist now (e.g. "is this canary item's database still there"). */
  async infraOf(token: string): Promise<string[]> {
    const tokens = new Set([token]);
    const present = await observe(this.targets, this.namesFor(tokens, false), tokens);
    return [...present.keys()];
  }

  async check(options: CheckOptions): Promise<InvariantReport> {
    const violations: string[] = [];
    const notes: string[] = [];
    const now = Date.now();
    const log = await this.readLog();
    const current = new Map((await this.readRows()).map((r) => [r.id, r]));
    const knownRows = new Map<string, RowState>(this.baseRows);
    for (const entry of log) if (!knownRows.has(entry.id)) knownRows.set(entry.id, entry);
    const tokens = new Set([...knownRows.values()].map((r) => r.poolToken).filter((t) => t !== ''));
    for (const r of current.values()) if (r.poolToken !== '') tokens.add(r.poolToken);
    const present = await observe(this.targets, this.namesFor(tokens), tokens);
    const rowsByToken = (token: string) => [...knownRows.values()].filter((r) => r.poolToken === token);
    const drops = options.dropEvents.filter((e) => e.atMs >= this.snapshotAtMs - 1);

    // (B) Every drop announced since the snapshot was aimed at a stale failed item, at that moment.
    const badAnnouncements = new Set<string>();
    for (const drop of drops) {
      const owners = rowsByToken(drop.token);
      if (owners.length === 0) {
        badAnnouncements.add(
          `${drop.action} ${drop.target} announced for token ${drop.token} that no row carries`,
        );
        continue;
      }
      for (const owner of owners) {
        const state = this.stateAt(owner.id, drop.atMs, log);
        if (!this.eligible(state, drop.atMs)) {
          badAnnouncements.add(
            `${drop.action} ${drop.target} at ${new Date(drop.atMs).toISOString()} although row ${owner.id} (${drop.token}) was ${describeRow(state, drop.atMs)}`,
          );
        }
      }
    }
    violations.push(...badAnnouncements);

    // (B) Every object gone since it was first seen belonged to a stale failed item, and was announced.
    let wrongfulObjects = 0;
    let unannounced = 0;
    let objectsDropped = 0;
    for (const [key, o] of this.tracked) {
      if (present.has(key)) continue;
      objectsDropped++;
      const owners = ownersOf(o, tokens);
      if (owners.length === 0) {
        wrongfulObjects++;
        violations.push(`canary ${key} was dropped (it belongs to no pool item)`);
        continue;
      }
      const announced = drops.filter((d) => owners.includes(d.token));
      if (announced.length === 0) {
        unannounced++;
        violations.push(`${key} disappeared without a provisioner.drop event for its token`);
        const at = Math.max(o.seenAtMs, this.snapshotAtMs);
        for (const owner of owners.flatMap(rowsByToken)) {
          if (!this.eligible(this.stateAt(owner.id, at, log), at)) {
            wrongfulObjects++;
            violations.push(`${key} dropped although row ${owner.id} was not a stale failed item`);
          }
        }
      }
    }

    // (A) A deleted row leaves no infra behind; only failed rows are ever deleted.
    let leaks = 0;
    let rowsLost = 0;
    let rowsDeleted = 0;
    for (const row of knownRows.values()) {
      if (current.has(row.id)) continue;
      rowsDeleted++;
      const deletion = log.find((e) => e.id === row.id && e.op === 'DELETE');
      if (!deletion) {
        rowsLost++;
        violations.push(
          `row ${row.id} (${row.resourceType} ${row.poolToken}) vanished without a logged DELETE`,
        );
      } else if (deletion.status !== 'failed') {
        rowsLost++;
        violations.push(
          `row ${row.id} (${row.resourceType} ${row.poolToken}) was deleted while ${deletion.status} (by ${deletion.app || 'unnamed connection'})`,
        );
      }
      const stillOwned = [...current.values()].some((r) => r.poolToken === row.poolToken);
      if (row.poolToken === '' || stillOwned) continue;
      const alive = [...present.values()].filter((o) => ownersOf(o, tokens).includes(row.poolToken));
      if (alive.length > 0) {
        leaks++;
        violations.push(
          `row ${row.id} (${row.resourceType} ${row.poolToken}) was deleted while ${alive.map(label).join(', ')} still exist`,
        );
      }
    }

    // System objects are never dropped.
    const system = await observe(
      this.targets,
      {
        databases: [...SYSTEM_OBJECTS.databases],
        roles: [...SYSTEM_OBJECTS.roles],
        aclUsers: [...SYSTEM_OBJECTS.aclUsers],
        keys: [],
      },
      new Set(),
    );
    for (const [kind, names] of [
      ['database', SYSTEM_OBJECTS.databases],
      ['role', SYSTEM_OBJECTS.roles],
      ['acl user', SYSTEM_OBJECTS.aclUsers],
    ] as const) {
      for (const name of names) {
        if (!system.has(`${kind} ${name}`)) {
          wrongfulObjects++;
          violations.push(`system ${kind} ${name} is missing`);
        }
      }
    }

    // Rows reclaimed after their teardown: allowed by (A) and (B), but worth knowing.
    for (const row of current.values()) {
      if (row.status === 'failed' || row.poolToken === '') continue;
      const dropped = [...this.tracked.entries()].filter(
        ([key, o]) => !present.has(key) && ownersOf(o, tokens).includes(row.poolToken),
      );
      if (dropped.length > 0) {
        notes.push(
          `row ${row.id} is ${row.status} but ${dropped.map(([k]) => k).join(', ')} were dropped while it was stale failed`,
        );
      }
    }

    let history: HistoryCheck | undefined;
    if (options.temporal) {
      history = await checkHistories(options.temporal.client, options.temporal.taskQueue, this.snapshotAtMs);
      violations.push(...history.violations);
    }

    const staleFailedLeft = [...current.values()]
      .filter((r) => this.eligible(r, now))
      .map((r) => ({ id: r.id, poolToken: r.poolToken, resourceType: r.resourceType }));
    return {
      violations,
      wrongfulDrops: wrongfulObjects + badAnnouncements.size,
      leaks,
      rowsLost,
      unannouncedDrops: unannounced,
      historyViolations: history?.violations.length ?? 0,
      rowsDeleted,
      objectsDropped,
      staleFailedLeft,
      notes,
      ...(history ? { history } : {}),
    };
  }

  private eligible(state: RowState | undefined, atMs: number): boolean {
    return (
      state !== undefined &&
      state.status === 'failed' &&
      state.assignedAtMs !== null &&
      state.assignedAtMs < atMs - this.options.failedGraceMs
    );
  }

  /**
   * The row as it was at `atMs`: the snapshot, then every logged change made before that
   * millisecond. A change in the same millisecond counts as after it (the lenient side: an
   * audit line carries millisecond time, a real conflict is always several milliseconds apart).
   */
  private stateAt(id: string, atMs: number, log: readonly RowLogEntry[]): RowState | undefined {
    let state: RowState | undefined = this.baseRows.get(id);
    for (const entry of log) {
      if (entry.id !== id || entry.atMs >= Math.floor(atMs)) continue;
      state = entry.op === 'DELETE' ? undefined : entry;
    }
    return state;
  }

  private namesFor(tokens: ReadonlySet<string>, withCanaries = true) {
    const canaries = withCanaries ? this.options.canaries : undefined;
    const list = [...tokens];
    return {
      databases: [...list.map((t) => `db_${t}`), ...(canaries?.databases ?? [])],
      roles: [...list.map((t) => `usr_${t}`), ...(canaries?.roles ?? [])],
      aclUsers: [...list.map((t) => `usr_${t}`), ...(canaries?.aclUsers ?? [])],
      keys: [...(canaries?.keys ?? [])],
    };
  }

  private async allTokens(): Promise<Set<string>> {
    const tokens = new Set<string>();
    for (const r of this.baseRows.values()) if (r.poolToken !== '') tokens.add(r.poolToken);
    for (const r of await this.readRows()) if (r.poolToken !== '') tokens.add(r.poolToken);
    return tokens;
  }

  private async readRows(): Promise<RowState[]> {
    const { rows } = await this.options.pool.query(
      'SELECT id, resource_type, pool_token, status, assigned_at FROM pool_items',
    );
    return rows.map((r) => ({
      id: r.id,
      resourceType: r.resource_type,
      poolToken: r.pool_token,
      status: r.status,
      assignedAtMs: msOf(r.assigned_at),
    }));
  }

  private async readLog(): Promise<RowLogEntry[]> {
    const { rows } = await this.options.pool.query(
      `SELECT seq, op, id, resource_type, pool_token, status, assigned_at,
              extract(epoch FROM at) * 1000 AS at_ms, app
         FROM reliability_row_log WHERE seq > $1 ORDER BY seq`,
      [this.logSeq],
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      op: r.op,
      id: r.id,
      resourceType: r.resource_type,
      poolToken: r.pool_token,
      status: r.status,
      assignedAtMs: msOf(r.assigned_at),
      atMs: Number(r.at_ms),
      app: r.app,
    }));
  }
}

function describeRow(state: RowState | undefined, atMs: number): string {
  if (!state) return 'absent';
  const age =
    state.assignedAtMs === null
      ? 'no assigned_at'
      : `assigned ${Math.round((atMs - state.assignedAtMs) / 1000)}s before`;
  return `${state.status} (${age})`;
}
