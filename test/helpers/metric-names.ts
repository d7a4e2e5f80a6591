import { parse as parseYaml } from 'yaml';

/**
 * Metric names a Grafana dashboard's panel queries and a Prometheus rules file's expressions
 * read, spelled exactly as a target exposes them on /metrics (`x_bucket`, `x_count`, `x_sum`
 * stay as written; their base name `x` is listed too, as it appears in `# TYPE x histogram`).
 *
 * Left out, because no target exposes them: series Prometheus makes itself (`up`, `scrape_*`,
 * `ALERTS`, `ALERTS_FOR_STATE`) and the names the rules file records (`record:`).
 * Pure: takes the file contents (text or already parsed), returns a sorted list.
 */
export function metricNamesInQueries(dashboardJson: unknown, rulesYaml: unknown): string[] {
  const dashboard = typeof dashboardJson === 'string' ? JSON.parse(dashboardJson) : dashboardJson;
  const rules = typeof rulesYaml === 'string' ? parseYaml(rulesYaml) : rulesYaml;
  const { exprs: ruleExprs, recorded } = ruleExpressions(rules);
  const names = new Set<string>();
  for (const expr of [...dashboardExpressions(dashboard), ...ruleExprs]) {
    for (const name of metricNamesInPromql(expr)) {
      if (recorded.has(name) || isPrometheusSynthetic(name)) continue;
      names.add(name);
      const base = baseName(name);
      if (base) names.add(base);
    }
  }
  return [...names].sort();
}

/** The `expr` of every target of every panel, rows' nested panels included. */
export function dashboardExpressions(dashboard: unknown): string[] {
  const exprs: string[] = [];
  const visit = (panels: unknown) => {
    if (!Array.isArray(panels)) return;
    for (const panel of panels) {
      if (!isObject(panel)) continue;
      if (Array.isArray(panel['targets'])) {
        for (const target of panel['targets']) {
          if (isObject(target) && typeof target['expr'] === 'string' && target['expr'].trim() !== '') {
            exprs.push(target['expr']);
          }
        }
      }
      visit(panel['panels']);
    }
  };
  if (isObject(dashboard)) {
    // Either a dashboard, or the { dashboard: ... } envelope of Grafana's HTTP API.
    const root = isObject(dashboard['dashboard']) ? dashboard['dashboard'] : dashboard;
    visit(root['panels']);
  }
  return exprs;
}

/** Every rule's `expr` (alerting and recording), and the names that recording rules produce. */
export function ruleExpressions(rules: unknown): { exprs: string[]; recorded: Set<string> } {
  const exprs: string[] = [];
  const recorded = new Set<string>();
  const groups = isObject(rules) && Array.isArray(rules['groups']) ? rules['groups'] : [];
  for (const group of groups) {
    if (!isObject(group) || !Array.isArray(group['rules'])) continue;
    for (const rule of group['rules']) {
      if (!isObject(rule)) continue;
      if (typeof rule['expr'] === 'string') exprs.push(rule['expr']);
      else if (typeof rule['expr'] === 'number') exprs.push(String(rule['expr']));
      if (typeof rule['record'] === 'string') recorded.add(rule['record']);
    }
  }
  return { exprs, recorded };
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

const SYNTHETIC = new Set([
  'up',
  'ALERTS',
  'ALERTS_FOR_STATE',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
  'scrape_timeout_seconds',
  'scrape_sample_limit',
  'scrape_body_size_bytes',
]);

function isPrometheusSynthetic(name: string): boolean {
  return SYNTHETIC.has(name);
}

const SUFFIXES = ['_bucket', '_count', '_sum'] as const;

function baseName(name: string): string | undefined {
  for (const suffix of SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/**
 * The metric names one PromQL expression selects: identifiers left once string literals,
 * label matchers, ranges, grouping clauses, Grafana variables, numbers, durations, functions,
 * aggregations and keywords are gone. `{__name__="x"}` selects `x`.
 */
export function metricNamesInPromql(expr: string): string[] {
  const names = new Set<string>();
  // Names given as __name__ matchers, before the strings that hold them are dropped.
  for (const m of expr.matchAll(/__name__\s*=\s*(["'`])([a-zA-Z_:][a-zA-Z0-9_:]*)\1/g)) names.add(m[2]!);
  let rest = expr
    // Comments, then string literals (label values, regexes: "deprovision_err|delete_err").
    .replace(/#[^\n]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    // Label matchers, range and subquery selectors ([15m], [$__rate_interval], [1h:5m]).
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    // Grouping and vector-matching label lists.
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Grafana variables: $var, ${var}, ${var:fmt}, [[var]], $__interval.
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]/g, ' ');
  // Numbers and durations (0.95, 1e3, 0x1f, 5m, 1h30m) are one token each, so `5m` never yields `m`.
  rest = rest.replace(/(?<![A-Za-z0-9_:])\d[A-Za-z0-9_.]*(?:[eE][+-]?\d+)?/g, ' ');
  for (const m of rest.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const token = m[0];
    const after = rest.slice((m.index ?? 0) + token.length);
    if (/^\s*\(/.test(after)) continue; // function or aggregation: sum(...), histogram_quantile(...)
    if (KEYWORDS.has(token.toLowerCase())) continue;
    names.add(token);
  }
  return [...names].sort();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
