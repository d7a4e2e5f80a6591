import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ENV_DEFAULTS, loadConfig, parseDuration } from '../../src/config';
import { SECRET_VARIABLES } from '../../src/config/secrets-from-files';

const ROOT = path.resolve(__dirname, '..', '..');
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field below
type Manifest = any;

/** `kubectl kustomize <dir>` (offline: no cluster involved), parsed. */
function render(dir: string): Manifest[] {
  const result = spawnSync(KUBECTL, ['kustomize', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (result.error) {
    throw new Error(
      (result.error as NodeJS.ErrnoException).code === 'ENOENT'
        ? `kubectl not found (${KUBECTL}): install it with \`apt-get install -y kubectl\`, or set KUBECTL=/path/to/kubectl`
        : result.error.message,
    );
  }
  expect(result.status, result.stderr).toBe(0);
  return parseAllDocuments(result.stdout).map((d) => d.toJS());
}

/** The kubernetes-models class per kind: each validates against the upstream OpenAPI schema. */
const MODELS: Record<string, new (data: Manifest) => { validate(): void }> = {
  Deployment,
  Job,
  PodDisruptionBudget,
  ConfigMap,
  Service,
  ServiceAccount,
  ServiceMonitor,
  PrometheusRule,
};

const one = (objects: Manifest[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};
const seconds = (duration: string) => parseDuration('duration', duration) / 1000;
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Temporal's own variables (envconfig) and libpq's, which the reaper reads besides ENV_DEFAULTS. */
const OTHER_VARIABLES = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'PGSSLMODE', 'PGSSLROOTCERT'];

describe.each(['deploy/kubernetes/base', 'deploy/kubernetes/overlays/production'])('kustomize %s', (dir) => {
  const objects = render(dir);
  const deployment = one(objects, 'Deployment');
  const job = one(objects, 'Job');
  const configMap = one(objects, 'ConfigMap');
  const pod = deployment.spec.template.spec;
  const worker = pod.containers[0];

  it('renders only known kinds, each valid against its schema (kubernetes-models)', () => {
    for (const object of objects) {
      const Model = MODELS[object.kind];
      expect(Model, `${object.kind} has no model here`).toBeDefined();
      expect(
        () => new (Model as NonNullable<typeof Model>)(object).validate(),
        `${object.kind}/${object.metadata.name}`,
      ).not.toThrow();
    }
    // Secrets are referenced, never rendered with values.
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  it('runs two replicas with probes on the metrics port, a grace above REAPER_SHUTDOWN_GRACE, and requests', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const port = worker.ports.find((p: Manifest) => p.name === 'metrics');
    expect(String(port.containerPort)).toBe(configMap.data.METRICS_PORT);
    expect(worker.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(worker.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(worker.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(seconds(configMap.data.REAPER_SHUTDOWN_GRACE));
    expect(worker.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(worker.resources.limits.memory).toBeDefined();
    expect(worker.args).toEqual(['worker']);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(worker.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  it('pins the image to a version, never latest', () => {
    for (const c of [worker, job.spec.template.spec.containers[0]]) {
      expect(c.image).toMatch(/:\d+\.\d+\.\d+$/);
    }
  });

  it('passes every secret as a file from a mounted Secret, and the names are the ones the config reads', () => {
    for (const spec of [pod, job.spec.template.spec]) {
      const container = spec.containers[0];
      const env: { name: string; value?: string; valueFrom?: unknown }[] = container.env ?? [];
      for (const e of env) {
        // No URL (with or without a password) as a plain value, no secretKeyRef into the environment.
        expect(e.valueFrom, e.name).toBeUndefined();
        expect(SECRET_VARIABLES as readonly string[], e.name).not.toContain(e.name);
        if (!e.name.endsWith('_FILE')) continue;
        expect(SECRET_VARIABLES as readonly string[]).toContain(e.name.replace(/_FILE$/, ''));
        const mount = container.volumeMounts.find((m: Manifest) =>
          String(e.value).startsWith(`${m.mountPath}/`),
        );
        expect(mount, `${e.name} is under no mount`).toBeDefined();
        const volume = spec.volumes.find((v: Manifest) => v.name === mount.name);
        expect(volume.secret.secretName).toBeDefined();
        expect(volume.secret.items.map((i: Manifest) => i.path)).toContain(path.basename(String(e.value)));
      }
    }
    for (const name of Object.keys(configMap.data)) {
      expect([...Object.keys(ENV_DEFAULTS), ...OTHER_VARIABLES], name).toContain(name);
      expect(SECRET_VARIABLES as readonly string[], name).not.toContain(name);
    }
  });

  it('the rendered environment loads: ConfigMap plus the secret files start a valid configuration', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-k8s-'));
    try {
      const env: Record<string, string> = { ...configMap.data };
      const ca = path.join(tmp, 'ca.crt');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
      env['PGSSLROOTCERT'] = ca;
      env['REDIS_TLS_CA_FILE'] = ca;
      const urls: Record<string, string> = {
        PROVISIONER_DATABASE_URL: 'postgres://pool_reaper:pw@db:5432/pool_provisioner',
        MIGRATE_DATABASE_URL: 'postgres://pool_reaper_migrate:pw@db:5432/pool_provisioner',
        POSTGRES_ADMIN_URL: 'postgres://pool_reaper_admin:pw@tenants:5432/postgres',
        REDIS_URL: 'rediss://pool-reaper:pw@redis:6380',
      };
      for (const e of [...(worker.env ?? []), ...(job.spec.template.spec.containers[0].env ?? [])]) {
        const name = e.name.replace(/_FILE$/, '');
        const file = path.join(tmp, name);
        writeFileSync(file, `${urls[name]}\n`);
        env[e.name] = file;
      }
      const cfg = loadConfig(env);
      expect(cfg.provisionerDatabaseUrl).toContain('sslmode=verify-full');
      expect(cfg.metricsPort).toBe(Number(configMap.data.METRICS_PORT));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('runs migrate as a Job with the migrate role', () => {
    const container = job.spec.template.spec.containers[0];
    expect(container.args).toEqual(['migrate']);
    expect(container.env.map((e: Manifest) => e.name)).toContain('MIGRATE_DATABASE_URL_FILE');
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
  });

  it('a PodDisruptionBudget, a Service and a ServiceMonitor that select the worker pods', () => {
    const labels = deployment.spec.template.metadata.labels;
    const pdb = one(objects, 'PodDisruptionBudget');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(matches(pdb.spec.selector.matchLabels, labels)).toBe(true);
    const service = one(objects, 'Service');
    expect(matches(service.spec.selector, labels)).toBe(true);
    const monitor = one(objects, 'ServiceMonitor');
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.endpoints.map((e: Manifest) => e.port)).toEqual(['metrics', 'sdk-metrics']);
    // The job label the rules and the dashboard expect.
    expect(monitor.spec.endpoints[0].relabelings).toContainEqual({
      targetLabel: 'job',
      replacement: 'pool-reaper',
    });
  });

  it('carries exactly the promtool-tested rules in its PrometheusRule', () => {
    const rules = parseYaml(
      readFileSync(path.join(ROOT, 'deploy/prometheus/rules/pool-reaper.rules.yml'), 'utf8'),
    );
    expect(one(objects, 'PrometheusRule').spec.groups).toEqual(rules.groups);
  });
});

describe('the production overlay', () => {
  it('sets its namespace on every object and its own image', () => {
    const objects = render('deploy/kubernetes/overlays/production');
    for (const o of objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('pool-reaper');
    expect(one(objects, 'Deployment').spec.template.spec.containers[0].image).toBe(
      'registry.example.com/platform/pool-reaper:0.1.0',
    );
  });
});
