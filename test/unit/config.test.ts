import { describe, expect, it } from 'vitest';
import { tickerSettingsFrom } from '../../src/client';
import { ConfigError, clusterOf, ENV_DEFAULTS, loadConfig } from '../../src/config';
import { isTickerSettings } from '../../src/shared/messages';

describe('loadConfig', () => {
  it('works with no environment at all, pointing at the local services', () => {
    const config = loadConfig({});
    expect(config.taskQueue).toBe('pool-reaper');
    expect(config.tickerWorkflowId).toBe('pool-reaper');
    expect(config.provisionerDatabaseUrl).toBe(ENV_DEFAULTS.PROVISIONER_DATABASE_URL);
    expect(config.postgresClusters.get('local:0')).toBe(ENV_DEFAULTS.POSTGRES_ADMIN_URL);
    expect(config.redisClusters.get('local:0')).toBe(ENV_DEFAULTS.REDIS_URL);
    expect(config.metricsPort).toBe(9464);
    expect(config.tickMs).toBe(30_000);
    expect(config.failedGraceMs).toBe(600_000);
    expect(config.stuckAssignedGraceMs).toBe(1_800_000);
    expect(config.batchLimit).toBe(50);
    expect(config.concurrency).toBe(8);
    expect(config.reclaimOrphans).toBe(false);
    expect(config.platformDatabaseUrl).toBeUndefined();
  });

  it('accepts durations like 30s, 10m, 1h and 500ms', () => {
    const config = loadConfig({
      REAPER_TICK: '500ms',
      REAPER_FAILED_GRACE: '1h',
      REAPER_STUCK_ASSIGNED_GRACE: '45m',
    });
    expect(config.tickMs).toBe(500);
    expect(config.failedGraceMs).toBe(3_600_000);
    expect(config.stuckAssignedGraceMs).toBe(2_700_000);
  });

  it('bounds the shared Redis keyspace walk: SCAN COUNT and a pause per step (0 allowed, at most 1s)', () => {
    const defaults = loadConfig({});
    expect(defaults.redisScanCount).toBe(1000);
    expect(defaults.redisScanPauseMs).toBe(1);
    const set = loadConfig({ REAPER_REDIS_SCAN_COUNT: '5000', REAPER_REDIS_SCAN_PAUSE: '5ms' });
    expect(set.redisScanCount).toBe(5000);
    expect(set.redisScanPauseMs).toBe(5);
    expect(loadConfig({ REAPER_REDIS_SCAN_PAUSE: '0' }).redisScanPauseMs).toBe(0);
    expect(() => loadConfig({ REAPER_REDIS_SCAN_PAUSE: '2s' })).toThrow(/REAPER_REDIS_SCAN_PAUSE/);
    expect(() => loadConfig({ REAPER_REDIS_SCAN_PAUSE: '5' })).toThrow(ConfigError);
    expect(() => loadConfig({ REAPER_REDIS_SCAN_COUNT: '1' })).toThrow(/REAPER_REDIS_SCAN_COUNT/);
  });

  it('lets Redis clusters run more teardowns at once than Postgres ones, within REAPER_CONCURRENCY', () => {
    const defaults = loadConfig({});
    expect(defaults.clusterConcurrency).toBe(4);
    expect(defaults.redisClusterConcurrency).toBe(defaults.concurrency);
    expect(
      loadConfig({ REAPER_CONCURRENCY: '16', REAPER_REDIS_CLUSTER_CONCURRENCY: '6' }).redisClusterConcurrency,
    ).toBe(6);
    expect(
      loadConfig({ REAPER_CONCURRENCY: '4', REAPER_REDIS_CLUSTER_CONCURRENCY: '32' }).redisClusterConcurrency,
    ).toBe(4);
    expect(() => loadConfig({ REAPER_REDIS_CLUSTER_CONCURRENCY: '0' })).toThrow(
      /^REAPER_REDIS_CLUSTER_CONCURRENCY: expected an integer from 1 to 64/,
    );
  });

  it('accepts orphan reclamation with a platform database', () => {
    const config = loadConfig({
      REAPER_RECLAIM_ORPHANS: 'true',
      PLATFORM_DATABASE_URL: 'postgres://ro@platform/db',
    });
    expect(config.reclaimOrphans).toBe(true);
    expect(config.platformDatabaseUrl).toBe('postgres://ro@platform/db');
  });

  it('reads extra clusters as local:<n>=<url> pairs', () => {
    const config = loadConfig({
      POSTGRES_ADMIN_URLS: 'local:1=postgres://a@h1/postgres, local:2=postgres://b@h2/postgres',
      REDIS_URLS: 'local:1=redis://h3:6379',
    });
    expect([...config.postgresClusters.keys()]).toEqual(['local:0', 'local:1', 'local:2']);
    expect(config.postgresClusters.get('local:2')).toBe('postgres://b@h2/postgres');
    expect(config.redisClusters.get('local:1')).toBe('redis://h3:6379');
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['REAPER_TICK', { REAPER_TICK: 'soon' }, /^REAPER_TICK: expected a positive duration/],
    ['REAPER_TICK', { REAPER_TICK: '30' }, /^REAPER_TICK: expected a positive duration.*"30"/],
    ['REAPER_FAILED_GRACE', { REAPER_FAILED_GRACE: '-5m' }, /^REAPER_FAILED_GRACE: /],
    [
      'REAPER_BATCH_LIMIT',
      { REAPER_BATCH_LIMIT: '0' },
      /^REAPER_BATCH_LIMIT: expected an integer from 1 to 500/,
    ],
    ['REAPER_BATCH_LIMIT', { REAPER_BATCH_LIMIT: '12abc' }, /^REAPER_BATCH_LIMIT: /],
    [
      'REAPER_CONCURRENCY',
      { REAPER_CONCURRENCY: '1000' },
      /^REAPER_CONCURRENCY: expected an integer from 1 to 64/,
    ],
    ['METRICS_PORT', { METRICS_PORT: 'http' }, /^METRICS_PORT: /],
    [
      'PROVISIONER_DATABASE_URL',
      { PROVISIONER_DATABASE_URL: 'mysql://x/y' },
      /^PROVISIONER_DATABASE_URL: .*mysql:/,
    ],
    ['POSTGRES_ADMIN_URL', { POSTGRES_ADMIN_URL: 'not a url' }, /^POSTGRES_ADMIN_URL: /],
    ['REDIS_URL', { REDIS_URL: 'postgres://x' }, /^REDIS_URL: /],
    ['POSTGRES_ADMIN_URLS', { POSTGRES_ADMIN_URLS: 'cluster9=postgres://x/y' }, /^POSTGRES_ADMIN_URLS: /],
    [
      'POSTGRES_ADMIN_URLS',
      { POSTGRES_ADMIN_URLS: 'local:0=postgres://x/y' },
      /^POSTGRES_ADMIN_URLS: .*local:0 twice/,
    ],
    ['REAPER_RECLAIM_ORPHANS', { REAPER_RECLAIM_ORPHANS: 'maybe' }, /^REAPER_RECLAIM_ORPHANS: /],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, /^LOG_LEVEL: /],
    [
      'REAPER_RECLAIM_ORPHANS',
      { REAPER_RECLAIM_ORPHANS: 'true' },
      /^REAPER_RECLAIM_ORPHANS: .*PLATFORM_DATABASE_URL/,
    ],
    ['TEMPORAL_TASK_QUEUE', { TEMPORAL_TASK_QUEUE: 'a queue' }, /^TEMPORAL_TASK_QUEUE: /],
    // Longer would break the ticker (a next-tick time no Date holds, a timer Temporal refuses).
    [
      'REAPER_TICK',
      { REAPER_TICK: '1000y' },
      /^REAPER_TICK: expected a positive duration of at most 365d, got "1000y"$/,
    ],
    ['REAPER_PASS_TIMEOUT', { REAPER_PASS_TIMEOUT: '400d' }, /^REAPER_PASS_TIMEOUT: expected .*at most 365d/],
  ];
  it.each(bad)('refuses a bad %s with one line naming it', (variable, env, message) => {
    let caught: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.variable.startsWith(variable)).toBe(true);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('\n');
  });

  it('never echoes a URL that may carry a password', () => {
    expect(() => loadConfig({ POSTGRES_ADMIN_URL: 'ftp://admin:hunter2@db/x' })).toThrow(ConfigError);
    try {
      loadConfig({ POSTGRES_ADMIN_URL: 'ftp://admin:hunter2@db/x' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('loadConfig with orphan reclamation on (issue 13, item 8)', () => {
  // Reclamation DROPs assigned items: a grace is all that stands between a just-claimed item
  // (its platform binding is written after the provisioning call returns) and its teardown.
  const reclaim = { REAPER_RECLAIM_ORPHANS: 'true', PLATFORM_DATABASE_URL: 'postgres://ro@platform/db' };
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      return err;
    }
    return undefined;
  };

  const tooShort: [string, Record<string, string>, RegExp][] = [
    [
      'REAPER_ORPHAN_GRACE',
      { REAPER_ORPHAN_GRACE: '10m' },
      /^REAPER_ORPHAN_GRACE: expected at least 1h while REAPER_RECLAIM_ORPHANS=true$/,
    ],
    [
      'REAPER_STUCK_ASSIGNED_GRACE',
      { REAPER_STUCK_ASSIGNED_GRACE: '1m' },
      /^REAPER_STUCK_ASSIGNED_GRACE: expected at least 5m while REAPER_RECLAIM_ORPHANS=true$/,
    ],
    [
      'REAPER_ORPHAN_GRACE',
      { REAPER_STUCK_ASSIGNED_GRACE: '3h', REAPER_ORPHAN_GRACE: '2h' },
      /^REAPER_ORPHAN_GRACE: expected at least REAPER_STUCK_ASSIGNED_GRACE while REAPER_RECLAIM_ORPHANS=true$/,
    ],
  ];
  it.each(tooShort)('stops on a %s below its floor with one line naming it', (variable, env, message) => {
    const error = refusal({ ...reclaim, ...env });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toMatch(message);
  });

  it('accepts graces at their floors, and any grace while reclamation is off', () => {
    const atFloors = loadConfig({ ...reclaim, REAPER_STUCK_ASSIGNED_GRACE: '5m', REAPER_ORPHAN_GRACE: '1h' });
    expect(atFloors).toMatchObject({
      reclaimOrphans: true,
      stuckAssignedGraceMs: 300_000,
      orphanGraceMs: 3_600_000,
    });
    // Without reclamation nothing assigned is ever dropped: a short grace only tunes a gauge.
    const off = loadConfig({ REAPER_STUCK_ASSIGNED_GRACE: '1m', REAPER_ORPHAN_GRACE: '10m' });
    expect(off).toMatchObject({
      reclaimOrphans: false,
      stuckAssignedGraceMs: 60_000,
      orphanGraceMs: 600_000,
    });
  });
});

describe('clusterOf', () => {
  it('reads the cluster from provider_resource_id, empty meaning local:0', () => {
    expect(clusterOf('')).toBe('local:0');
    expect(clusterOf('local:3')).toBe('local:3');
    expect(clusterOf('local:1;pooltok:pool-x')).toBe('local:1');
  });
});

describe('REAPER_PASS_SHARDS (issue 18, item 4)', () => {
  it('defaults to one pass per tick, and then the ticker settings carry no shards at all', () => {
    const config = loadConfig({});
    expect(config.passShards).toBe(1);
    expect('passShards' in tickerSettingsFrom(config)).toBe(false);
  });

  it('accepts 1 to 64 and carries more than 1 in the ticker settings the configure validator accepts', () => {
    for (const n of [2, 4, 64]) {
      const settings = tickerSettingsFrom(loadConfig({ REAPER_PASS_SHARDS: String(n) }));
      expect(settings.passShards).toBe(n);
      expect(isTickerSettings(settings)).toBe(true);
    }
    const settings = tickerSettingsFrom(loadConfig({ REAPER_PASS_SHARDS: '4' }));
    for (const bad of [0, 65, 2.5, '4'])
      expect(isTickerSettings({ ...settings, passShards: bad })).toBe(false);
    // A shard is the ticker's to give each pass, never part of the settings.
    expect(isTickerSettings({ ...settings, pass: { ...settings.pass, shard: { index: 0, count: 4 } } })).toBe(
      false,
    );
  });

  it('refuses anything else in one line naming the variable', () => {
    for (const raw of ['0', '65', '2.5', 'four', '-1']) {
      expect(() => loadConfig({ REAPER_PASS_SHARDS: raw })).toThrow(ConfigError);
      expect(() => loadConfig({ REAPER_PASS_SHARDS: raw })).toThrow(
        `REAPER_PASS_SHARDS: expected an integer from 1 to 64, got "${raw}"`,
      );
    }
    expect(() => loadConfig({ REAPER_PASS_SHARDS: '2', REAPER_TRIGGER: 'schedule' })).toThrow(
      /^REAPER_PASS_SHARDS: .*REAPER_TRIGGER=schedule/,
    );
  });
});
