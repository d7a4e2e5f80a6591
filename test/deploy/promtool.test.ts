import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { dashboardExpressions } from '../helpers/metric-names';

const ROOT = path.resolve(__dirname, '..', '..');
const RULES = 'deploy/prometheus/rules/pool-reaper.rules.yml';
const RULE_TESTS = 'deploy/prometheus/tests/pool-reaper.rules.test.yml';
const PROMETHEUS_CONFIG = 'deploy/prometheus/prometheus.yml';
const DASHBOARD = 'deploy/grafana/dashboards/pool-reaper.json';

const PROMTOOL = process.env['PROMTOOL'] ?? 'promtool';

/** Runs promtool from the repo root; a missing binary is a failure that says how to install it. */
function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `promtool not found (${PROMTOOL}): install it with \`apt-get install -y prometheus\` (Debian/Ubuntu; ` +
            'stop the server it starts) or from https://prometheus.io/download/, or set PROMTOOL=/path/to/promtool'
        : `promtool failed to run: ${result.error.message}`,
    );
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules: AlertRule[] = parseYaml(readFileSync(path.join(ROOT, RULES), 'utf8')).groups.flatMap(
  (g: { rules: AlertRule[] }) => g.rules,
);
const alerts = rules.filter((r) => r.alert);

describe('promtool', () => {
  it('checks the rules file', () => {
    const { status, output } = promtool('check', 'rules', RULES);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status, output).toBe(0);
  });

  it('passes the alert unit tests', () => {
    const { status, output } = promtool('test', 'rules', RULE_TESTS);
    expect(output).toContain('SUCCESS');
    expect(output).not.toContain('FAILED');
    expect(status, output).toBe(0);
  });

  it('checks the Prometheus config of the compose stack (and the rules it loads)', () => {
    const { status, output } = promtool('check', 'config', PROMETHEUS_CONFIG);
    expect(output).toContain('SUCCESS: 1 rule files found');
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status, output).toBe(0);
  });

  describe('dashboard queries', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-dashboard-promql-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('all parse as PromQL', () => {
      const exprs = dashboardExpressions(JSON.parse(readFileSync(path.join(ROOT, DASHBOARD), 'utf8')));
      expect(exprs.length).toBeGreaterThan(0);
      // Grafana's own variables, as Grafana would substitute them.
      const substituted = exprs.map((e) =>
        e
          .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '1m')
          .replace(/\$__interval|\$\{__interval\}/g, '15s')
          .replace(/\$__range|\$\{__range\}/g, '6h'),
      );
      expect(substituted.filter((e) => e.includes('$'))).toEqual([]);
      const file = path.join(dir, 'dashboard.rules.yml');
      writeFileSync(
        file,
        stringifyYaml({
          groups: [
            {
              name: 'dashboard',
              rules: substituted.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })),
            },
          ],
        }),
      );
      const { status, output } = promtool('check', 'rules', file);
      expect(output).toContain(`SUCCESS: ${exprs.length} rules found`);
      expect(status, output).toBe(0);
    });
  });
});

describe('the alert rules', () => {
  it('keep the expressions and durations the operators already use', () => {
    const byName = new Map(alerts.map((a) => [a.alert, a]));
    expect(byName.get('PoolReapErrors')).toMatchObject({
      expr: 'sum(rate(instant_pool_reap_total{outcome=~"deprovision_err|delete_err"}[15m])) by (resource_type, outcome) > 0',
      for: '30m',
    });
    expect(byName.get('PoolStuckAssigned')).toMatchObject({
      expr: 'max(instant_pool_stuck_assigned) by (resource_type) > 0',
      for: '1h',
    });
    expect(byName.get('ReaperStalled')?.expr).toMatch(
      /time\(\) - instant_pool_reap_last_pass_completed_timestamp_seconds > 3 \* 30\s+or absent\(instant_pool_reap_last_pass_completed_timestamp_seconds\)/,
    );
    expect(byName.get('PoolItemsQuarantined')?.expr).toBe(
      'max(instant_pool_quarantined_items) by (resource_type) > 0',
    );
    expect(byName.get('PoolPlatformCheckFailing')).toMatchObject({
      expr: 'sum(increase(instant_pool_platform_check_failures_total[15m])) > 0',
      for: '30m',
    });
    expect(byName.get('PoolReapPassFailing')).toMatchObject({
      expr: 'sum by (reason) (increase(instant_pool_reap_pass_failures_total[30m])) >= 2',
      for: '5m',
    });
    expect(byName.get('PoolClusterDown')).toMatchObject({
      expr: 'max by (resource_type, cluster) (instant_pool_cluster_down) > 0',
      for: '10m',
    });
    expect([...byName.keys()].sort()).toEqual([
      'PoolClusterDown',
      'PoolItemsQuarantined',
      'PoolPlatformCheckFailing',
      'PoolReapErrors',
      'PoolReapPassFailing',
      'PoolStuckAssigned',
      'ReaperStalled',
    ]);
  });

  it('each carry a severity, a summary and a runbook_url naming a runbook that exists', () => {
    for (const alert of alerts) {
      expect(['warning', 'critical'], alert.alert).toContain(alert.labels?.['severity']);
      expect(alert.annotations?.['summary'], alert.alert).toBeTruthy();
      const url = alert.annotations?.['runbook_url'];
      expect(url, alert.alert).toBe(`docs/runbooks/${alert.alert}.md`);
      expect(existsSync(path.join(ROOT, url!)), `${url} exists`).toBe(true);
      // The runbook index lists it, so a reader browsing docs/runbooks/ finds it too.
      expect(readFileSync(path.join(ROOT, 'docs/runbooks/README.md'), 'utf8')).toContain(
        `(${alert.alert}.md)`,
      );
    }
  });

  it('are each unit-tested both firing (with labels and annotations) and quiet', () => {
    const suite = parseYaml(readFileSync(path.join(ROOT, RULE_TESTS), 'utf8'));
    type Case = {
      eval_time: string;
      alertname: string;
      exp_alerts: Array<{ exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }>;
    };
    const cases: Case[] = suite.tests.flatMap((t: { alert_rule_test?: Case[] }) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert.alert);
      const firing = mine.filter((c) => c.exp_alerts.length > 0);
      expect(firing.length, `${alert.alert}: no firing case`).toBeGreaterThan(0);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert.alert}: no quiet case`,
      ).toBe(true);
      for (const c of firing) {
        for (const exp of c.exp_alerts) {
          expect(exp.exp_labels?.['severity'], `${alert.alert} at ${c.eval_time}`).toBe(
            alert.labels?.['severity'],
          );
          expect(Object.keys(exp.exp_annotations ?? {}).sort(), `${alert.alert} at ${c.eval_time}`).toEqual(
            Object.keys(alert.annotations ?? {}).sort(),
          );
        }
      }
    }
  });
});
