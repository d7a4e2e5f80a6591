/**
 * The Temporal SDK's own metrics (Core's Prometheus exporter), read around a measured pass:
 * workflow tasks and their execution time, activity and local-activity counts, and the
 * worker's RPCs to the server by operation (heartbeats, task completions).
 */
export type MetricSnapshot = Map<string, number>;

/** Sums each series over its labels except `operation` (kept: it names the RPC). */
export async function scrapeSdkMetrics(port: number): Promise<MetricSnapshot> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: MetricSnapshot = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([^\s]+)/.exec(line);
    if (!match) continue;
    const [, name, labels = '', value] = match;
    if (name?.endsWith('_bucket')) continue;
    const operation = /operation="([^"]+)"/.exec(labels)?.[1];
    const key = operation ? `${name}{${operation}}` : (name ?? '');
    out.set(key, (out.get(key) ?? 0) + Number(value));
  }
  return out;
}

/** What changed between two snapshots, only the series that moved. */
export function metricDelta(before: MetricSnapshot, after: MetricSnapshot): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, value] of after) {
    const d = value - (before.get(key) ?? 0);
    if (d !== 0) delta[key] = Math.round(d * 1000) / 1000;
  }
  return delta;
}

/** The handful of figures per item the docs quote, from a delta. */
export function perItemFigures(delta: Record<string, number>, items: number): Record<string, number> {
  // Durations are exported in milliseconds unless the runtime asked for seconds (`_seconds`).
  const pick = (base: string, suffix: string) =>
    Object.entries(delta)
      .filter(([k]) => k.startsWith(base) && k.endsWith(suffix))
      .reduce((sum, [k, v]) => sum + (suffix === '_sum' && k.includes('_seconds') ? v * 1000 : v), 0);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const wftCount = pick('temporal_workflow_task_execution_latency', '_count');
  const wftMs = pick('temporal_workflow_task_execution_latency', '_sum');
  const rpc = Object.fromEntries(
    Object.entries(delta)
      .filter(([k]) => k.startsWith('temporal_request{'))
      .map(([k, v]) => [`rpc ${k.slice('temporal_request{'.length, -1)} per item`, round(v / items)]),
  );
  return {
    'workflow tasks per item': round(wftCount / items),
    'workflow task execution ms (mean)': round(wftCount ? wftMs / wftCount : 0),
    'workflow task execution ms per item': round(wftMs / items),
    'activity executions per item': round(pick('temporal_activity_execution_latency', '_count') / items),
    'local activity executions per item': round(
      pick('temporal_local_activity_execution_latency', '_count') / items,
    ),
    ...rpc,
  };
}
