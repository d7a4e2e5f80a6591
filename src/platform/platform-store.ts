import pg from 'pg';
import type { Logger } from '../logger';
import { scrubSecrets } from '../shared/secrets';
import type { PlatformCheckFailureReason } from '../shared/types';
import { inTransaction } from '../store/checked-out-client';
import { boundTokensOf } from './bindings';
import type { PlatformInventory } from './classify';

/** One slice of `resources`, in id order, with the bindings its rows carry. */
export interface ResourcesSlice {
  /** Rows read (bound or not); fewer than asked means the end of the table. */
  readonly rows: number;
  /** The id of the last row read: the next slice starts after it. */
  readonly lastId: string | undefined;
  /** Every `pooltok:` segment of those rows: the token as written, and its resource's status. */
  readonly bindings: readonly { readonly token: string; readonly status: string }[];
}

/** What the activities need from the platform database; tests may wrap it. */
export interface PlatformLookup {
  /**
   * Reads, in one read-only snapshot, whether `resources` has rows and any pooltok binding,
   * and the statuses of the resources rows bound to each token. Throws on any error.
   * One sequential read of `resources` per call: for a few tokens (a re-check) only.
   */
  inventory(poolTokens: readonly string[]): Promise<PlatformInventory>;
  /** Whether `resources` has any row; also proves the database answers. Throws on error or after `timeoutMs`. */
  hasResources(timeoutMs: number): Promise<boolean>;
  /**
   * Up to `limit` rows of `resources` after id `after` (from the start when undefined), in
   * id order (the primary key's index, so each slice costs its own rows, never the table),
   * with their bindings. Throws on error or after `timeoutMs`.
   */
  readResources(after: string | undefined, limit: number, timeoutMs: number): Promise<ResourcesSlice>;
}

/** The platform did not answer within the time the caller could give it. */
export class PlatformTimeoutError extends Error {
  override readonly name = 'PlatformTimeoutError';
}

/**
 * Resolves with `work`, or rejects with PlatformTimeoutError after `ms`. The server also
 * cancels the statement (statement_timeout); this covers a connection that hangs.
 */
async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PlatformTimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
    // A read that lost the race still settles later: nobody waits for it any more.
    work.catch(() => undefined);
  }
}

/**
 * A slice of `resources` by primary key: an index range scan, whatever the table's size.
 * `ORDER BY r.id`, the uuid column: ordering by the text alias would sort the whole table.
 */
const RESOURCES_FIRST_SLICE_SQL = `
SELECT r.id::text AS row_id, r.status, r.provider_resource_id FROM resources r ORDER BY r.id LIMIT $1`;
const RESOURCES_NEXT_SLICE_SQL = `
SELECT r.id::text AS row_id, r.status, r.provider_resource_id FROM resources r
 WHERE r.id > $2::uuid ORDER BY r.id LIMIT $1`;

/** Tokens per statement: bounds each statement's parameter and run time. */
const TOKENS_PER_QUERY = 5000;

/**
 * The plausibility flags. `has_bindings` uses the same segment rule as BINDINGS_SQL, with
 * any token (`pooltok:` followed by at least one character).
 */
export const INVENTORY_FLAGS_SQL = `
SELECT EXISTS (SELECT 1 FROM resources) AS has_resources,
       EXISTS (SELECT 1
                 FROM resources r
                CROSS JOIN LATERAL unnest(string_to_array(r.provider_resource_id, ';')) AS s(segment)
                WHERE r.provider_resource_id ILIKE '%pooltok:%'
                  AND lower(btrim(s.segment, E' \\t\\r\\n')) LIKE 'pooltok:_%') AS has_bindings`;

/**
 * Exact segment match: provider_resource_id is split on `;`, each segment trimmed of
 * whitespace, and compared whole (case-insensitively: a pool token is a UUID) with
 * `pooltok:<token>`. `pooltok:pool-abc` never matches `pooltok:pool-abcd`. A NULL
 * provider_resource_id has no segments. The ILIKE only prefilters rows.
 */
export const BINDINGS_SQL = `
SELECT w.token, b.status
  FROM unnest($1::text[]) AS w(token)
  JOIN (SELECT r.status, lower(btrim(s.segment, E' \\t\\r\\n')) AS segment
          FROM resources r
         CROSS JOIN LATERAL unnest(string_to_array(r.provider_resource_id, ';')) AS s(segment)
         WHERE r.provider_resource_id ILIKE '%pooltok:%') AS b
    ON b.segment = 'pooltok:' || lower(w.token)`;

/** Read-only access to the platform database's `resources` table. */
export class PlatformStore implements PlatformLookup {
  constructor(readonly pool: pg.Pool) {}

  static connect(url: string, options: { max?: number; log?: Logger } = {}): PlatformStore {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 4,
      application_name: 'pool-reaper',
      connectionTimeoutMillis: 5_000,
      statement_timeout: 15_000,
      // Client side too: a hung server must not hang the activity.
      query_timeout: 20_000,
      idle_in_transaction_session_timeout: 30_000,
    });
    // An idle connection dropped by a platform restart must not crash the worker.
    pool.on('error', (err) =>
      options.log?.warn({ err: scrubSecrets(err.message) }, 'platform database connection error'),
    );
    return new PlatformStore(pool);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async hasResources(timeoutMs: number): Promise<boolean> {
    const ms = Math.max(1, Math.round(timeoutMs));
    return withDeadline(
      inTransaction(
        this.pool,
        async (client) => {
          await client.query(`SET LOCAL statement_timeout = ${ms}`);
          const { rows } = await client.query<{ has: boolean }>(
            'SELECT EXISTS (SELECT 1 FROM resources) AS has',
          );
          return rows[0]?.has === true;
        },
        'BEGIN TRANSACTION READ ONLY',
      ),
      ms,
      'platform check',
    );
  }

  async readResources(after: string | undefined, limit: number, timeoutMs: number): Promise<ResourcesSlice> {
    const ms = Math.max(1, Math.round(timeoutMs));
    return withDeadline(
      inTransaction(
        this.pool,
        async (client) => {
          await client.query(`SET LOCAL statement_timeout = ${ms}`);
          const { rows } = await client.query<{
            row_id: string;
            status: string | null;
            provider_resource_id: string | null;
          }>(
            after === undefined ? RESOURCES_FIRST_SLICE_SQL : RESOURCES_NEXT_SLICE_SQL,
            after === undefined ? [limit] : [limit, after],
          );
          const bindings: { token: string; status: string }[] = [];
          for (const row of rows) {
            for (const token of boundTokensOf(row.provider_resource_id)) {
              bindings.push({ token, status: row.status ?? '' });
            }
          }
          return { rows: rows.length, lastId: rows.at(-1)?.row_id, bindings };
        },
        'BEGIN TRANSACTION READ ONLY',
      ),
      ms,
      'platform resources read',
    );
  }

  async inventory(poolTokens: readonly string[]): Promise<PlatformInventory> {
    // One snapshot for the flags and every chunk; READ ONLY: this reaper never writes here.
    return inTransaction(
      this.pool,
      async (client) => {
        const { rows: flags } = await client.query<{ has_resources: boolean; has_bindings: boolean }>(
          INVENTORY_FLAGS_SQL,
        );
        const bindings = new Map<string, string[]>();
        const tokens = [...new Set(poolTokens)];
        for (let i = 0; i < tokens.length; i += TOKENS_PER_QUERY) {
          const { rows } = await client.query<{ token: string; status: string | null }>(BINDINGS_SQL, [
            tokens.slice(i, i + TOKENS_PER_QUERY),
          ]);
          for (const row of rows) {
            const list = bindings.get(row.token) ?? [];
            list.push(row.status ?? '');
            bindings.set(row.token, list);
          }
        }
        return {
          hasResources: flags[0]?.has_resources === true,
          hasBindings: flags[0]?.has_bindings === true,
          bindings,
        };
      },
      'BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
    );
  }
}

/** Connection trouble, a timeout, or a query the platform database rejected (e.g. no `resources`). */
export function platformErrorReason(err: unknown): PlatformCheckFailureReason {
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    if (code === '57014') return 'timeout';
    // 08: connection exception; 57P: operator intervention (shutdown); 53: insufficient resources.
    if (/^(08|57P|53)/.test(code)) return 'connection';
    return 'query';
  }
  if (err instanceof PlatformTimeoutError) return 'timeout';
  const message = err instanceof Error ? err.message : String(err);
  if (/timeout|timed out/i.test(message)) return 'timeout';
  return 'connection';
}

export function platformErrorMessage(err: unknown): string {
  return scrubSecrets(err instanceof Error ? err.message : String(err));
}
