import pg from 'pg';
import type { Logger } from '../logger';
import { clusterOf } from '../shared/clusters';
import type { PoolItemRef, TeardownResult } from '../shared/types';
import { auditFor, type DropAction, type ItemAudit } from './audit';
import type { PlannedObject, TeardownBackend } from './backend';
import { assertSafeToken, databaseNameFor, roleNameFor } from './drop-guard';
import {
  classifyPostgresError,
  isPlainObjectInUse,
  isRefusal,
  isSqlError,
  TeardownLedger,
  TransientTeardownError,
  UnknownClusterError,
} from './errors';

/**
 * Postgres teardown: database `db_<token>` and login role `usr_<token>` on the item's
 * cluster. Names are guarded before any pool exists; each teardown then holds ONE client
 * of its cluster's pool for its whole sequence, so concurrent teardowns run side by side on
 * separate connections (drops running together share a checkpoint).
 */

export interface TeardownCallOptions {
  /** Called between steps and on each retry wait (the activity heartbeats through it). */
  readonly onProgress?: (step: string) => void;
  /** Audit through this logger instead (the activity passes one carrying its workflow context). */
  readonly log?: Logger;
}

/** The part of pg.Pool this backend uses (tests may pass a fake). */
export interface PgPoolLike {
  connect(): Promise<pg.PoolClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface PostgresBackendOptions {
  /** Admin URL per cluster id (from `postgresClusters`). */
  readonly clusters: ReadonlyMap<string, string>;
  /** Teardowns expected at once per cluster; the pool holds one more connection than this. */
  readonly concurrency: number;
  readonly log: Logger;
  /** Server-side limit on any one statement (a drop waits for a checkpoint). Default 60 s. */
  readonly statementTimeoutMs?: number;
  /** Limit on opening a connection or waiting for a free one. Default 15 s. */
  readonly connectTimeoutMs?: number;
  /** Retries of DROP DATABASE on plain 55006 (object in use). Default 5 attempts, 100 ms doubling, at most 2 s. */
  readonly dropRetry?: {
    readonly attempts?: number;
    readonly baseDelayMs?: number;
    readonly maxDelayMs?: number;
  };
  /** Test seam: how a cluster's pool is made. */
  readonly createPool?: (config: pg.PoolConfig) => PgPoolLike;
}

export interface PostgresBackend extends TeardownBackend {
  decide(item: PoolItemRef): PostgresPlan;
  /** Pure checks (guard, cluster) that throw before any connection opens; audits a refusal. */
  preflight(item: PoolItemRef, options?: Pick<TeardownCallOptions, 'log'>): PostgresPlan;
}

export interface PostgresPlan {
  readonly cluster: string;
  readonly database: string;
  readonly role: string;
}

const quote = (name: string) => pg.escapeIdentifier(name);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** SQL errors leave the connection usable; anything else (socket, timeout) means it is not. */
const hasSqlState = isSqlError;

export function createPostgresBackend(options: PostgresBackendOptions): PostgresBackend {
  const { clusters, log } = options;
  const statementTimeoutMs = options.statementTimeoutMs ?? 60_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  const attempts = Math.max(1, options.dropRetry?.attempts ?? 5);
  const baseDelayMs = options.dropRetry?.baseDelayMs ?? 100;
  const maxDelayMs = options.dropRetry?.maxDelayMs ?? 2_000;
  const createPool = options.createPool ?? ((config: pg.PoolConfig) => new pg.Pool(config));
  const pools = new Map<string, PgPoolLike>();
  let closed = false;

  function poolFor(cluster: string, url: string): PgPoolLike {
    let pool = pools.get(cluster);
    if (!pool) {
      pool = createPool({
        connectionString: url,
        max: Math.max(1, options.concurrency) + 1,
        connectionTimeoutMillis: connectTimeoutMs,
        idleTimeoutMillis: 30_000,
        statement_timeout: statementTimeoutMs,
        // Client-side backstop for a server that stops answering altogether.
        query_timeout: statementTimeoutMs + 10_000,
        application_name: 'pool-reaper-teardown',
        keepAlive: true,
        allowExitOnIdle: true,
      });
      // An idle connection dropped by the server must not crash the process.
      pool.on('error', (err) => log.warn({ cluster, err: err.message }, 'idle teardown connection lost'));
      pools.set(cluster, pool);
    }
    return pool;
  }

  /** The guard and the cluster check, pure: throws the refusal, audits nothing. */
  function decide(item: PoolItemRef): PostgresPlan & { url: string } {
    assertSafeToken(item.poolToken);
    const database = databaseNameFor(item.poolToken);
    const role = roleNameFor(item.poolToken);
    const cluster = clusterOf(item.providerResourceId);
    const url = clusters.get(cluster);
    if (url === undefined) throw new UnknownClusterError(cluster, 'postgres');
    return { cluster, database, role, url };
  }

  function plan(item: PoolItemRef, audit: ItemAudit): PostgresPlan & { url: string } {
    try {
      return decide(item);
    } catch (err) {
      if (isRefusal(err)) audit.refused(err);
      throw err;
    }
  }

  /** Catalog reads only (pg_database, pg_roles): what a teardown would find. */
  async function inspect(item: PoolItemRef): Promise<PlannedObject[]> {
    const { cluster, database, role, url } = decide(item);
    if (closed) throw new TransientTeardownError('the postgres teardown backend is closed');
    const client = await poolFor(cluster, url).connect();
    try {
      const { rows } = await client.query<{ db: boolean; role: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS db,
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
        [database, role],
      );
      return [
        { kind: 'database', name: database, exists: rows[0]?.db === true },
        { kind: 'role', name: role, exists: rows[0]?.role === true },
      ];
    } finally {
      client.release();
    }
  }

  async function teardown(item: PoolItemRef, callOptions: TeardownCallOptions = {}): Promise<TeardownResult> {
    const audit = auditFor(callOptions.log ?? log, item);
    const { cluster, database, role, url } = plan(item, audit);
    if (closed) throw new TransientTeardownError('the postgres teardown backend is closed');
    const progress = callOptions.onProgress ?? (() => {});
    const ledger = new TeardownLedger(item.resourceType, item.poolToken, cluster);
    const dbObject = `database ${database}`;
    const roleObject = `role ${role}`;
    ledger.set(dbObject, 'unknown');
    ledger.set(roleObject, 'unknown');

    /** Classifies, audits and returns the error to throw; the partial result is the ledger so far. */
    const fail = (err: unknown, action: string, target: string) => {
      const error = classifyPostgresError(err, { action, target, cluster, partial: ledger.result(false) });
      audit.failed(action, target, error);
      return error;
    };

    progress('connect');
    let client: pg.PoolClient;
    try {
      client = await poolFor(cluster, url).connect();
    } catch (err) {
      throw fail(err, 'connect', cluster);
    }
    let broken = false;
    const onClientError = (err: Error) => {
      broken = true;
      log.warn({ cluster, err: err.message }, 'teardown connection lost');
    };
    client.on('error', onClientError);

    /** Runs one statement; non-SQL failures mark the connection unusable. */
    const run = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
      try {
        return await client.query<R>(sql, params);
      } catch (err) {
        if (!hasSqlState(err)) broken = true;
        throw err;
      }
    };

    /** A fence step: announced, attempted, and on a SQL error recorded and skipped. */
    const bestEffort = async (action: DropAction, target: string, sql: string, params: unknown[] = []) => {
      progress(action);
      audit.drop(action, target);
      try {
        await run(sql, params);
      } catch (err) {
        if (!hasSqlState(err)) throw fail(err, action, target);
        audit.failed(action, target, classifyPostgresError(err, { action, target, cluster }), 'ignored');
      }
    };

    const lookup = async () => {
      try {
        const { rows } = await run<{ db: boolean; db_invalid: boolean; role: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS db,
                  EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datconnlimit = -2) AS db_invalid,
                  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
          [database, role],
        );
        const row = rows[0];
        if (!row) throw new Error('catalog lookup returned no row');
        return row;
      } catch (err) {
        throw fail(err, 'lookup', database);
      }
    };

    try {
      progress('lookup');
      const before = await lookup();
      // An invalid database (datconnlimit = -2, an interrupted drop) is still present: drop it again.
      ledger.set(dbObject, before.db ? 'present' : 'absent');
      ledger.set(roleObject, before.role ? 'present' : 'absent');

      // (1) Fence: nobody new connects, the role can no longer log in.
      if (before.db) {
        const grantees = before.role ? `PUBLIC, ${quote(role)}` : 'PUBLIC';
        await bestEffort(
          'revoke_connect',
          database,
          `REVOKE CONNECT ON DATABASE ${quote(database)} FROM ${grantees}`,
        );
      }
      if (before.role) {
        await bestEffort('disable_login', role, `ALTER ROLE ${quote(role)} NOLOGIN`);
      }
      // (2) End the sessions already inside (FORCE would too; doing it first makes the drop quick).
      if (before.db || before.role) {
        await bestEffort(
          'terminate_backends',
          database,
          `SELECT count(pg_terminate_backend(pid)) AS terminated FROM pg_stat_activity
            WHERE (datname = $1 OR usename = $2) AND pid <> pg_backend_pid()`,
          [database, role],
        );
      }

      // (3) Drop the database, retrying only a plain "object in use".
      if (before.db) {
        for (let attempt = 1; ; attempt++) {
          progress(attempt === 1 ? 'drop_database' : `drop_database attempt ${attempt}/${attempts}`);
          audit.drop('drop_database', database, { attempt, ...(before.db_invalid ? { invalid: true } : {}) });
          try {
            await run(`DROP DATABASE IF EXISTS ${quote(database)} WITH (FORCE)`);
            break;
          } catch (err) {
            if (isPlainObjectInUse(err) && attempt < attempts) {
              const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
              audit.failed(
                'drop_database',
                database,
                classifyPostgresError(err, { action: 'drop_database', target: database, cluster }),
                'retrying',
              );
              progress(`drop_database: object in use, retry ${attempt + 1}/${attempts} in ${delay}ms`);
              await sleep(delay);
              continue;
            }
            // The role is not attempted: it still holds privileges on the database.
            throw fail(err, 'drop_database', database);
          }
        }
      }

      // The role goes only once the database is confirmed gone.
      progress('confirm_database');
      const between = await lookup();
      if (between.db) {
        throw fail(
          new TransientTeardownError(
            `database ${database} on ${cluster} is still present after DROP DATABASE`,
            {
              partial: ledger.result(false),
            },
          ),
          'confirm',
          database,
        );
      }
      if (before.db) ledger.set(dbObject, 'dropped');

      // (4) Drop the role.
      if (between.role) {
        progress('drop_role');
        audit.drop('drop_role', role);
        try {
          await run(`DROP ROLE IF EXISTS ${quote(role)}`);
        } catch (err) {
          throw fail(err, 'drop_role', role);
        }
      }

      // (5) Confirm both absent.
      progress('confirm');
      const after = await lookup();
      ledger.set(roleObject, after.role ? 'present' : between.role ? 'dropped' : 'absent');
      if (after.db) ledger.set(dbObject, 'present');
      if (after.db || after.role) {
        const left = [after.db ? database : '', after.role ? role : ''].filter(Boolean).join(' and ');
        throw fail(
          new TransientTeardownError(`teardown of ${item.poolToken} on ${cluster} left ${left} behind`, {
            partial: ledger.result(false),
          }),
          'confirm',
          database,
        );
      }
      return ledger.result(true);
    } finally {
      client.off('error', onClientError);
      // A connection that failed below SQL level is discarded, not handed to the next teardown.
      client.release(broken ? true : undefined);
    }
  }

  return {
    resourceType: 'postgres',
    decide(item) {
      const { cluster, database, role } = decide(item);
      return { cluster, database, role };
    },
    preflight(item, callOptions = {}) {
      const { cluster, database, role } = plan(item, auditFor(callOptions.log ?? log, item));
      return { cluster, database, role };
    },
    inspect,
    teardown,
    async close() {
      closed = true;
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((pool) => pool.end()));
    },
  };
}
