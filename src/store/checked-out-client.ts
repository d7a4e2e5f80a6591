import type pg from 'pg';

/**
 * Runs `fn` on a client checked out of `pool`, guarding it while it is out: a connection the
 * server closes under us (failover, pg_terminate_backend, idle-in-transaction timeout) emits
 * `error` on the client, which would crash the process without a listener. The failure
 * surfaces through the pending query instead, and the broken client is destroyed, not reused.
 */
export async function withCheckedOutClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, markBroken: () => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  const markBroken = () => {
    broken = true;
  };
  client.on('error', markBroken);
  try {
    return await fn(client, markBroken);
  } finally {
    client.off('error', markBroken);
    client.release(broken ? true : undefined);
  }
}

/** BEGIN … COMMIT on a guarded client; ROLLBACK (or discarding the client) on any error. */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  return withCheckedOutClient(pool, async (client, markBroken) => {
    await client.query(begin);
    try {
      const value = await fn(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch(markBroken);
      throw err;
    }
  });
}
