import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../src/metrics';
import { dashboardExpressions, metricNamesInPromql, metricNamesInQueries } from '../helpers/metric-names';

const ROOT = path.resolve(__dirname, '..', '..');
const DASHBOARD_FILE = path.join(ROOT, 'deploy/grafana/dashboards/pool-reaper.json');
const RULES_FILE = path.join(ROOT, 'deploy/prometheus/rules/pool-reaper.rules.yml');

/**
 * What the Temporal TypeScript SDK 1.24 exports on its Prometheus endpoint
 * (Runtime.install telemetryOptions.metrics.prometheus, useSecondsForDurations) once a worker
 * has run a workflow with an activity; read off a live /metrics. Its counters carry no
 * `_total` suffix.
 */
const SDK_METRICS = new Set([
  'temporal_activity_execution_latency',
  'temporal_activity_schedule_to_start_latency',
  'temporal_activity_succeed_endtoend_latency',
  'temporal_activity_task_received',
  'temporal_long_request',
  'temporal_long_request_latency',
  'temporal_num_pollers',
  'temporal_request',
  'temporal_request_latency',
  'temporal_sticky_cache_hit',
  'temporal_sticky_cache_size',
  'temporal_worker_start',
  'temporal_worker_task_slots_available',
  'temporal_worker_task_slots_used',
  'temporal_workflow_completed',
  'temporal_workflow_endtoend_latency',
  'temporal_workflow_task_execution_latency',
  'temporal_workflow_task_queue_poll_succeed',
  'temporal_workflow_task_replay_latency',
  'temporal_workflow_task_schedule_to_start_latency',
]);
const SDK_HISTOGRAMS = [...SDK_METRICS].filter((n) => n.endsWith('_latency'));

/** Grafana's `${datasource}` variable, spelled so it is no template placeholder here. */
const DATASOURCE = { type: 'prometheus', uid: `\${datasource}` };

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: unknown;
  targets?: Array<{ datasource?: unknown; refId?: string; expr?: string }>;
  panels?: Panel[];
}

const REAPER_HISTOGRAMS: string[] = [METRIC_NAMES.passDuration];

/** Every name a scrape of the worker's two ports can show, series suffixes included. */
function exposedNames(): Set<string> {
  const names = new Set<string>([...Object.values(METRIC_NAMES), ...SDK_METRICS]);
  for (const h of [...REAPER_HISTOGRAMS, ...SDK_HISTOGRAMS]) {
    for (const suffix of ['_bucket', '_count', '_sum']) names.add(`${h}${suffix}`);
  }
  return names;
}

describe('metricNamesInPromql', () => {
  it('keeps metric names and drops functions, aggregations, label matchers and grouping', () => {
    expect(
      metricNamesInPromql(
        'sum(rate(instant_pool_reap_total{outcome=~"deprovision_err|delete_err"}[15m])) by (resource_type, outcome) > 0',
      ),
    ).toEqual(['instant_pool_reap_total']);
    expect(metricNamesInPromql('max by (resource_type, class) (instant_pool_assigned_items)')).toEqual([
      'instant_pool_assigned_items',
    ]);
    expect(
      metricNamesInPromql(
        'histogram_quantile(0.95, sum by (le) (rate(temporal_activity_schedule_to_start_latency_bucket{task_queue="pool-reaper"}[$__rate_interval])))',
      ),
    ).toEqual(['temporal_activity_schedule_to_start_latency_bucket']);
  });

  it('drops numbers, durations, offsets, keywords and Grafana variables', () => {
    expect(
      metricNamesInPromql(
        'time() - instant_pool_reap_last_pass_completed_timestamp_seconds offset 5m > bool 3 * 30 or absent(x_total) + on(job) group_left up2 == Inf',
      ),
    ).toEqual(['instant_pool_reap_last_pass_completed_timestamp_seconds', 'up2', 'x_total']);
    expect(
      metricNamesInPromql(`rate(a_total[\${__range}]) / rate(b_total[$interval:1m]) * $scale + 1e3 - 0x1f`),
    ).toEqual(['a_total', 'b_total']);
    expect(metricNamesInPromql('sum without (instance) (c_total @ start())')).toEqual(['c_total']);
  });

  it('ignores names inside strings and label values, and reads __name__ matchers', () => {
    expect(metricNamesInPromql('count_values("decoy_metric", d{label="e_metric"})')).toEqual(['d']);
    expect(metricNamesInPromql('{__name__="named_metric", job="x"}')).toEqual(['named_metric']);
  });

  it('keeps recording-rule style names with colons', () => {
    expect(metricNamesInPromql('job:instant_pool_reap_total:rate5m > 0')).toEqual([
      'job:instant_pool_reap_total:rate5m',
    ]);
  });
});

describe('metricNamesInQueries', () => {
  const dashboard = {
    panels: [
      { type: 'stat', targets: [{ expr: 'sum(increase(p_seconds_count[1h]))' }, { expr: '' }] },
      {
        type: 'row',
        panels: [
          {
            type: 'timeseries',
            targets: [
              { expr: 'histogram_quantile(0.5, sum by (le) (rate(p_seconds_bucket[5m])))' },
              { expr: 'sum(rate(p_seconds_sum[5m])) / sum(rate(p_seconds_count[5m]))' },
            ],
          },
        ],
      },
      { type: 'text', options: { content: 'no targets' } },
      { type: 'timeseries', targets: [{ expr: 'max(g) and up == 1' }, { refId: 'no expr' }] },
    ],
  };
  const rules = [
    'groups:',
    '  - name: g',
    '    rules:',
    '      - record: job:c_total:rate5m',
    '        expr: sum by (job) (rate(c_total[5m]))',
    '      - alert: A',
    '        expr: job:c_total:rate5m > 0 or absent(g)',
    '        for: 5m',
    '      - alert: B',
    '        expr: max(h_count) by (x) > 0',
  ].join('\n');

  it('lists every name once, sorted, with the base name of _bucket/_count/_sum series', () => {
    expect(metricNamesInQueries(JSON.stringify(dashboard), rules)).toEqual([
      'c_total',
      'g',
      'h',
      'h_count',
      'p_seconds',
      'p_seconds_bucket',
      'p_seconds_count',
      'p_seconds_sum',
    ]);
  });

  it('leaves out recorded series and series Prometheus makes itself', () => {
    const names = metricNamesInQueries(dashboard, rules);
    expect(names).not.toContain('job:c_total:rate5m');
    expect(names).not.toContain('up');
  });

  it('accepts parsed objects and the { dashboard } envelope of the Grafana API', () => {
    expect(metricNamesInQueries({ dashboard }, { groups: [] })).toEqual(
      metricNamesInQueries(dashboard, 'groups: []'),
    );
    expect(metricNamesInQueries({}, '')).toEqual([]);
  });
});

describe('the shipped dashboard', () => {
  const text = readFileSync(DASHBOARD_FILE, 'utf8');
  const dashboard = JSON.parse(text);
  const panels: Panel[] = dashboard.panels.flatMap((p: Panel) => [p, ...(p.panels ?? [])]);
  const queryPanels = panels.filter((p) => p.type !== 'row');

  it('is a provisionable dashboard with a Prometheus data source variable', () => {
    expect(dashboard.uid).toBe('pool-reaper');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const variable = dashboard.templating.list.find(
      (v: Record<string, unknown>) => v['name'] === 'datasource',
    );
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('points every panel and target at the datasource variable', () => {
    expect(queryPanels.length).toBeGreaterThan(0);
    for (const panel of queryPanels) {
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource, `${panel.title} ${target.refId}`).toEqual(DATASOURCE);
      }
    }
  });

  it('lays panels out without overlaps on the 24-column grid', () => {
    const cells = new Map<string, string>();
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          const key = `${row},${col}`;
          expect(cells.get(key), `${panel.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, panel.title);
        }
      }
    }
  });

  it('has the panels operators need', () => {
    const exprs = dashboardExpressions(dashboard);
    const has = (pattern: RegExp) =>
      expect(
        exprs.some((e) => pattern.test(e)),
        String(pattern),
      ).toBe(true);
    // Reaper series carry the dashboard's job/instance selector: {job=~"$job",instance=~"$instance"}.
    const sel = String.raw`(\{job=~"\$job",instance=~"\$instance"\})?`;
    has(new RegExp(String.raw`increase\(instant_pool_reap_pass_duration_seconds_count${sel}\[1h\]\)`));
    has(new RegExp(String.raw`rate\(instant_pool_reap_total${sel}\[`));
    has(/instant_pool_stuck_assigned/);
    has(new RegExp(String.raw`by \(resource_type, class\) \(instant_pool_assigned_items${sel}\)`));
    has(/instant_pool_quarantined_items/);
    has(/histogram_quantile\(0\.\d+, .*instant_pool_reap_pass_duration_seconds_bucket/);
    has(/time\(\) - .*instant_pool_reap_last_pass_completed_timestamp_seconds/);
    has(/instant_pool_stale_failed_items/);
    has(/instant_pool_reaper_build_info/);
    has(/temporal_worker_task_slots_available/);
    has(/temporal_worker_task_slots_used/);
    has(/histogram_quantile\(0\.\d+, .*temporal_activity_schedule_to_start_latency_bucket/);
  });

  it('reads only metrics the worker exports, spelled as on /metrics', () => {
    const names = metricNamesInQueries(text, readFileSync(RULES_FILE, 'utf8'));
    const exposed = exposedNames();
    expect(names.filter((n) => !exposed.has(n))).toEqual([]);
    // Every reaper metric is on the dashboard or in an alert.
    expect(Object.values(METRIC_NAMES).filter((n) => !names.includes(n))).toEqual([]);
    expect(names).toContain('instant_pool_reap_pass_duration_seconds_bucket');
    expect(names).toContain('temporal_activity_schedule_to_start_latency_bucket');
  });
});
