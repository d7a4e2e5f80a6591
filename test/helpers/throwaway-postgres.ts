import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { freePort } from '../../src/dev/temporal-server';

const run = promisify(execFile);

/**
 * A Postgres cluster of one test's own (Debian's pg_createcluster, as .ci/run makes the
 * second cluster), for a test that must change server settings (ssl, certificates): the
 * shared clusters on 5432 and 5433 are never reconfigured, so a test process that dies
 * mid-test leaves nothing that breaks the tests after it. Trust auth on 127.0.0.1, never
 * started at boot, dropped by drop(). Clusters left by a process that died are dropped by
 * the next createThrowawayCluster (their name carries the creating pid).
 */
export interface ThrowawayCluster {
  readonly version: string;
  readonly name: string;
  readonly port: number;
  /** Superuser URL (postgres, trust) to the `postgres` database. */
  readonly url: string;
  drop(): Promise<void>;
}

const PREFIX = 'reaper_test_';

/** The newest installed major version, as .ci/run picks it. */
function postgresVersion(): string {
  const versions = readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v));
  const newest = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (newest === undefined) throw new Error('no Postgres version under /etc/postgresql');
  return newest;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function dropCluster(version: string, name: string): Promise<void> {
  await run('pg_dropcluster', ['--stop', version, name]);
}

/**
 * Drops the throwaway clusters whose creating process is gone (a test that crashed before its
 * afterAll); those of live processes (another test run on this machine) are left alone.
 */
export async function dropLeftoverClusters(): Promise<string[]> {
  // Names are reaper_test_<label>_<pid>_<random>; the label is one [a-z0-9] word.
  const { stdout } = await run('pg_lsclusters', ['--no-header']);
  const dropped: string[] = [];
  for (const line of stdout.split('\n')) {
    const [version, name] = line.trim().split(/\s+/);
    const pid = name?.startsWith(PREFIX) ? Number(name.slice(PREFIX.length).split('_')[1]) : Number.NaN;
    if (version === undefined || name === undefined || !Number.isInteger(pid) || alive(pid)) continue;
    await dropCluster(version, name);
    dropped.push(`${version}/${name}`);
  }
  return dropped;
}

/**
 * Creates and starts a cluster on a free port with `settings` in its postgresql.conf (about
 * 3 s on a loaded 2-core machine, mostly initdb; dropping it takes a fraction of a second).
 * `label`: a short [a-z0-9] word naming the test.
 */
export async function createThrowawayCluster(
  label: string,
  settings: Readonly<Record<string, string>> = {},
  /** The process whose death makes the cluster a leftover: this one (a test may name another). */
  ownerPid = process.pid,
): Promise<ThrowawayCluster> {
  await dropLeftoverClusters();
  const version = postgresVersion();
  const name = `${PREFIX}${label}_${ownerPid}_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  // Values as `pg_createcluster -o` takes them: it quotes a path itself, not a bare word.
  // listen_addresses stays at its default, localhost.
  const options = Object.entries({
    // A throwaway: no durability needed, and as little memory and disk as will do.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '16MB',
    max_connections: '20',
    ...settings,
  }).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
  try {
    await run('pg_createcluster', [
      version,
      name,
      '--port',
      String(port),
      '--start-conf',
      'manual',
      ...options,
      '--start',
      '--',
      '--auth=trust',
      '--no-sync',
    ]);
  } catch (err) {
    await dropCluster(version, name).catch(() => undefined);
    throw err;
  }
  return {
    version,
    name,
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    drop: () => dropCluster(version, name),
  };
}
