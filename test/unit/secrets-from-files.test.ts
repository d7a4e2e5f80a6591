import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config';
import { resolveSecretFiles, SECRET_VARIABLES } from '../../src/config/secrets-from-files';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-secret-files-'));
const file = (name: string, content: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
};
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('<NAME>_FILE (issue 19)', () => {
  it('reads every URL variable from its file, dropping one trailing newline', () => {
    const cfg = loadConfig({
      PROVISIONER_DATABASE_URL_FILE: file('p', 'postgres://reaper:s3cret@db:5432/pool_provisioner\n'),
      MIGRATE_DATABASE_URL_FILE: file('m', 'postgres://migrate:s3cret@db:5432/pool_provisioner'),
      POSTGRES_ADMIN_URL_FILE: file('a', 'postgres://admin:s3cret@t0:5432/postgres\r\n'),
      POSTGRES_ADMIN_URLS_FILE: file('as', 'local:1=postgres://admin:s3cret@t1:5432/postgres\n'),
      REDIS_URL_FILE: file('r', 'redis://reaper:s3cret@r0:6379\n'),
      REDIS_URLS_FILE: file('rs', 'local:1=rediss://reaper:s3cret@r1:6380\n'),
      PLATFORM_DATABASE_URL_FILE: file('pl', 'postgres://ro:s3cret@platform:5432/platform\n'),
    });
    expect(cfg.provisionerDatabaseUrl).toBe('postgres://reaper:s3cret@db:5432/pool_provisioner');
    expect(cfg.migrateDatabaseUrl).toBe('postgres://migrate:s3cret@db:5432/pool_provisioner');
    expect([...cfg.postgresClusters]).toEqual([
      ['local:0', 'postgres://admin:s3cret@t0:5432/postgres'],
      ['local:1', 'postgres://admin:s3cret@t1:5432/postgres'],
    ]);
    expect([...cfg.redisClusters]).toEqual([
      ['local:0', 'redis://reaper:s3cret@r0:6379'],
      ['local:1', 'rediss://reaper:s3cret@r1:6380'],
    ]);
    expect(cfg.platformDatabaseUrl).toBe('postgres://ro:s3cret@platform:5432/platform');
  });

  it.each(SECRET_VARIABLES)('setting both %s and %s_FILE stops with one line naming it', (name) => {
    const env = { [name]: 'redis://x', [`${name}_FILE`]: file(`both-${name}`, 'redis://y') };
    expect(() => resolveSecretFiles(env)).toThrow(
      new ConfigError(name, `either ${name} or ${name}_FILE, not both (both are set)`),
    );
  });

  it('names the file variable and path, never the content, for a missing or empty file', () => {
    const missing = path.join(dir, 'nope');
    expect(() => loadConfig({ REDIS_URL_FILE: missing })).toThrow(
      `REDIS_URL_FILE: expected a readable file, got ENOENT for ${missing}`,
    );
    const empty = file('empty', '\n');
    expect(() => loadConfig({ REDIS_URL_FILE: empty })).toThrow(
      `REDIS_URL_FILE: expected a file with a value, got an empty file ${empty}`,
    );
    const bad = file('bad', 'not a url with password hunter2\n');
    let message = '';
    try {
      loadConfig({ PROVISIONER_DATABASE_URL_FILE: bad });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^PROVISIONER_DATABASE_URL: expected a postgres: or postgresql: URL/);
    expect(message).not.toContain('hunter2');
  });

  it('an empty X with X_FILE set is not "both" (compose and Kubernetes often set X to "")', () => {
    const cfg = loadConfig({ REDIS_URL: '', REDIS_URL_FILE: file('r2', 'redis://r:6379\n') });
    expect(cfg.redisClusters.get('local:0')).toBe('redis://r:6379');
  });
});

describe('Postgres TLS variables (issue 19)', () => {
  it('adds PGSSLMODE and PGSSLROOTCERT to every Postgres URL that leaves them out; the URL wins', () => {
    const ca = file('ca.crt', '-----BEGIN CERTIFICATE-----\n');
    const cfg = loadConfig({
      PROVISIONER_DATABASE_URL: 'postgres://u@db/p',
      POSTGRES_ADMIN_URL: 'postgres://u@t0/postgres?sslmode=disable',
      POSTGRES_ADMIN_URLS: 'local:1=postgres://u@t1/postgres',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: ca,
    });
    expect(new URL(cfg.provisionerDatabaseUrl).searchParams.get('sslmode')).toBe('verify-full');
    expect(new URL(cfg.provisionerDatabaseUrl).searchParams.get('sslrootcert')).toBe(ca);
    expect(new URL(cfg.postgresClusters.get('local:0') ?? '').searchParams.get('sslmode')).toBe('disable');
    expect(new URL(cfg.postgresClusters.get('local:1') ?? '').searchParams.get('sslmode')).toBe(
      'verify-full',
    );
  });

  it('leaves a URL without TLS settings byte for byte as it was', () => {
    const url = 'postgres://postgres@127.0.0.1:5432/pool_provisioner';
    expect(loadConfig({ PROVISIONER_DATABASE_URL: url }).provisionerDatabaseUrl).toBe(url);
  });
});
