/** One scrape of a worker's /metrics. */
export async function scrape(port: number | undefined): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

/** The value of one series on /metrics, 0 when absent. */
export function seriesValue(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
