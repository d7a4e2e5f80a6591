import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ENV_DEFAULTS, loadConfig, parseDuration } from '../../src/config';
import { SEARCH_ATTRIBUTE_TYPES } from '../../src/shared/search-attributes';

// Docker cannot run here, so these are static checks of the compose stack: names, ports,
// commands, and every file the containers mount and load.

const ROOT = path.resolve(__dirname, '..', '..');
const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'));
const services: Record<string, Service> = compose.services;

interface Service {
  image?: string;
  build?: unknown;
  entrypoint?: string | string[];
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | number | { target: number; published?: number | string }>;
  volumes?: Array<string | { type?: string; source?: string; target: string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  stop_grace_period?: string;
}

/** Temporal's own connection variables (@temporalio/envconfig), read by the worker and the CLI. */
const TEMPORAL_VARS = new Set([
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_PROFILE',
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
]);

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

function envOf(s: Service): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const eq = entry.indexOf('=');
      env[eq < 0 ? entry : entry.slice(0, eq)] = eq < 0 ? '' : entry.slice(eq + 1);
    }
  } else {
    for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = v === null ? '' : String(v);
  }
  return env;
}

/** Published host port -> container port, for short ("8080:80", "127.0.0.1:8080:80/tcp") and long syntax. */
function portsOf(s: Service): Map<number, number> {
  const ports = new Map<number, number>();
  for (const p of s.ports ?? []) {
    if (typeof p === 'object') {
      ports.set(Number(p.published ?? p.target), Number(p.target));
      continue;
    }
    const parts = String(p)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    const target = Number(parts.at(-1));
    ports.set(parts.length > 1 ? Number(parts.at(-2)) : target, target);
  }
  return ports;
}

/** Maps a path inside the container to the repo file a bind mount puts there. */
function hostPath(s: Service, containerPath: string): string | undefined {
  for (const v of s.volumes ?? []) {
    const [source, target] =
      typeof v === 'string'
        ? v.split(':')
        : v.type === 'bind'
          ? [v.source, v.target]
          : [undefined, undefined];
    if (!source || !target || !/^\.{1,2}\//.test(source)) continue;
    const rel = path.posix.relative(target, containerPath);
    if (rel === '' || (!rel.startsWith('..') && !path.posix.isAbsolute(rel))) {
      return path.join(ROOT, source, rel);
    }
  }
  return undefined;
}

function dependsOn(s: Service): Record<string, string | undefined> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']));
  return Object.fromEntries(
    Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition ?? 'service_started']),
  );
}

/** The final stage's exec-form ENTRYPOINT and CMD; a shell form would put /bin/sh between Docker and node. */
function dockerfileArgv(): { entrypoint: string[]; cmd: string[]; text: string } {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const finalStage = text.split(/^FROM /m).at(-1) ?? '';
  const execForm = (instruction: string): string[] => {
    const line = [...finalStage.matchAll(new RegExp(`^${instruction}\\s+(.*)$`, 'gm'))].at(-1)?.[1];
    if (!line) return [];
    expect(line.trim().startsWith('['), `Dockerfile ${instruction} must use the exec (JSON) form`).toBe(true);
    return JSON.parse(line);
  };
  return { entrypoint: execForm('ENTRYPOINT'), cmd: execForm('CMD'), text };
}

/** What the container runs: compose entrypoint/command, else the image's. */
function argvOf(s: Service): string[] {
  const image = dockerfileArgv();
  for (const field of [s.entrypoint, s.command]) {
    if (field !== undefined) expect(Array.isArray(field), 'entrypoint/command must be YAML lists').toBe(true);
  }
  const entrypoint = (s.entrypoint as string[] | undefined) ?? image.entrypoint;
  const command = (s.command as string[] | undefined) ?? (s.entrypoint === undefined ? image.cmd : []);
  return [...entrypoint, ...command];
}

describe('docker-compose.yml', () => {
  it('has the whole stack', () => {
    for (const name of ['temporal', 'postgres', 'redis', 'migrate', 'worker', 'prometheus', 'grafana']) {
      expect(services, name).toHaveProperty(name);
    }
  });

  it('pins every image to a release tag (never latest, never a bare major)', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.image === undefined || s.build !== undefined) continue;
      expect(s.image, name).toMatch(/:v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$/);
    }
  });

  it('publishes the ports the docs promise', () => {
    const expected: Record<string, number[]> = {
      temporal: [7233, 8233],
      postgres: [5432],
      redis: [6379],
      worker: [9464, 9465],
      prometheus: [9090],
      grafana: [3000],
    };
    for (const [name, list] of Object.entries(expected)) {
      const ports = portsOf(service(name));
      for (const port of list) expect(ports.get(port), `${name} publishes ${port}`).toBe(port);
    }
  });

  it('runs the official Temporal CLI dev server with SQLite persistence and the reaper search attribute', () => {
    const temporal = service('temporal');
    expect(temporal.image).toMatch(/^temporalio\/temporal(:|$)/);
    const command = temporal.command as string[];
    expect(command.slice(0, 2)).toEqual(['server', 'start-dev']);
    const flag = (name: string) => command.filter((_, i) => command[i - 1] === name);
    expect(flag('--ip')).toEqual(['0.0.0.0']);
    expect(flag('--db-filename')).toEqual(['/data/temporal.db']);
    expect(flag('--search-attribute').sort()).toEqual(
      Object.entries(SEARCH_ATTRIBUTE_TYPES)
        .map(([k, v]) => `${k}=${v}`)
        .sort(),
    );
    expect(temporal.volumes?.some((v) => typeof v === 'string' && v.endsWith(':/data'))).toBe(true);
  });

  it('gives the worker and migrate only variables the reaper or Temporal reads', () => {
    for (const name of ['worker', 'migrate']) {
      const unknown = Object.keys(envOf(service(name))).filter(
        (k) => !(k in ENV_DEFAULTS) && !TEMPORAL_VARS.has(k) && !k.startsWith('TEMPORAL_GRPC_META_'),
      );
      expect(unknown, `${name}: variables nothing reads (typo?)`).toEqual([]);
    }
  });

  it('wires the worker to the compose services, with values the config accepts', () => {
    const env = envOf(service('worker'));
    for (const k of [
      'PROVISIONER_DATABASE_URL',
      'POSTGRES_ADMIN_URL',
      'REDIS_URL',
      'METRICS_PORT',
      'TEMPORAL_METRICS_PORT',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
    ]) {
      expect(env[k], k).toBeTruthy();
    }
    const config = loadConfig(env);
    expect(new URL(config.provisionerDatabaseUrl).hostname).toBe('postgres');
    expect(new URL(config.postgresClusters.get('local:0')!).hostname).toBe('postgres');
    expect(new URL(config.redisClusters.get('local:0')!).hostname).toBe('redis');
    expect(env['TEMPORAL_ADDRESS']).toBe('temporal:7233');
    expect(config.metricsPort).toBe(9464);
    expect(config.temporalMetricsPort).toBe(9465);
    const ports = portsOf(service('worker'));
    expect([...ports.values()]).toEqual(
      expect.arrayContaining([config.metricsPort, config.temporalMetricsPort]),
    );
    // The migration must create the same database the worker uses.
    expect(envOf(service('migrate'))['PROVISIONER_DATABASE_URL']).toBe(env['PROVISIONER_DATABASE_URL']);
  });

  it('runs node directly, not through npm or a shell, so SIGTERM reaches it', () => {
    const forbidden = ['npm', 'npx', 'sh', '/bin/sh', 'bash', '/bin/bash', 'yarn', 'pnpm'];
    const worker = argvOf(service('worker'));
    expect(worker).toEqual(['node', 'dist/src/cli.js', 'worker']);
    expect(argvOf(service('migrate'))).toEqual(['node', 'dist/src/cli.js', 'migrate', '--create-database']);
    const image = dockerfileArgv();
    expect([...image.entrypoint, ...image.cmd]).toEqual(['node', 'dist/src/cli.js', 'worker']);
    for (const argv of [worker, image.entrypoint])
      expect(argv.filter((a) => forbidden.includes(a))).toEqual([]);
  });

  it('builds a non-root node:24-bookworm-slim image (the Node.js LTS) exposing both metrics ports', () => {
    const { text } = dockerfileArgv();
    const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(new Set(froms)).toEqual(new Set(['node:24-bookworm-slim']));
    expect(text).toMatch(/^RUN npm ci\b/m);
    expect(text).toMatch(/npm run build/);
    expect(text).toMatch(/npm prune --omit=dev/);
    const user = [...text.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    const exposed = [...text.matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining(['9464', '9465']));
    expect(existsSync(path.join(ROOT, '.dockerignore'))).toBe(true);
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist']));
  });

  it('starts the worker after the schema exists and the services answer, and lets it drain on stop', () => {
    const worker = service('worker');
    expect(dependsOn(worker)).toMatchObject({
      migrate: 'service_completed_successfully',
      temporal: 'service_healthy',
      postgres: 'service_healthy',
      redis: 'service_healthy',
    });
    expect(dependsOn(service('migrate'))).toMatchObject({ postgres: 'service_healthy' });
    const grace = parseDuration(
      'REAPER_SHUTDOWN_GRACE',
      envOf(worker)['REAPER_SHUTDOWN_GRACE'] ?? ENV_DEFAULTS.REAPER_SHUTDOWN_GRACE,
    );
    expect(worker.stop_grace_period, 'docker would SIGKILL before in-flight work drains').toBeDefined();
    expect(parseDuration('stop_grace_period', worker.stop_grace_period!)).toBeGreaterThan(grace);
  });

  it('loads a Prometheus config that scrapes both worker ports and loads the shipped rules', () => {
    const prometheus = service('prometheus');
    const configArg = (prometheus.command as string[]).find((a) => a.startsWith('--config.file='));
    expect(configArg).toBeDefined();
    const containerConfig = configArg!.slice('--config.file='.length);
    const file = hostPath(prometheus, containerConfig);
    expect(file, `${containerConfig} is not mounted from the repo`).toBeDefined();
    expect(existsSync(file!), file).toBe(true);
    const config = parseYaml(readFileSync(file!, 'utf8'));

    const ruleFiles = (config.rule_files as string[]).map((f) =>
      path.isAbsolute(f) ? hostPath(prometheus, f) : path.resolve(path.dirname(file!), f),
    );
    const shippedRules = path.join(ROOT, 'deploy/prometheus/rules/pool-reaper.rules.yml');
    expect(ruleFiles).toContain(shippedRules);
    expect(existsSync(shippedRules)).toBe(true);

    const targets = (
      config.scrape_configs as Array<{ static_configs?: Array<{ targets: string[] }> }>
    ).flatMap((j) => (j.static_configs ?? []).flatMap((s) => s.targets));
    const env = envOf(service('worker'));
    expect(targets).toEqual(
      expect.arrayContaining([`worker:${env['METRICS_PORT']}`, `worker:${env['TEMPORAL_METRICS_PORT']}`]),
    );
  });

  it('provisions Grafana with the Prometheus data source and the shipped dashboard', () => {
    const grafana = service('grafana');
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning');
    expect(provisioning, '/etc/grafana/provisioning is not mounted from the repo').toBeDefined();
    const yamlIn = (dir: string) =>
      existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => /\.ya?ml$/.test(f))
            .map((f) => parseYaml(readFileSync(path.join(dir, f), 'utf8')))
        : [];

    const datasources = yamlIn(path.join(provisioning!, 'datasources')).flatMap((d) => d.datasources ?? []);
    const prom = datasources.find((d: { type: string }) => d.type === 'prometheus');
    expect(prom, 'a provisioned prometheus data source').toBeDefined();
    const url = new URL(prom.url);
    expect(url.hostname).toBe('prometheus');
    expect(portsOf(service('prometheus')).get(Number(url.port))).toBe(Number(url.port));

    const providers = yamlIn(path.join(provisioning!, 'dashboards')).flatMap((d) => d.providers ?? []);
    expect(providers.length).toBeGreaterThan(0);
    const dashboardFiles = providers.flatMap((p: { options: { path: string } }) => {
      const dir = hostPath(grafana, p.options.path);
      expect(dir, `${p.options.path} is not mounted from the repo`).toBeDefined();
      return readdirSync(dir!).map((f) => path.join(dir!, f));
    });
    const shipped = path.join(ROOT, 'deploy/grafana/dashboards/pool-reaper.json');
    expect(dashboardFiles).toContain(shipped);
    expect(statSync(shipped).isFile()).toBe(true);
    const dashboard = JSON.parse(readFileSync(shipped, 'utf8'));
    expect(dashboard.title).toBe('pool-reaper');

    const home = envOf(grafana)['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'];
    expect(home).toBeDefined();
    expect(hostPath(grafana, home!)).toBe(shipped);
  });
});
