import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { METRIC_NAMES } from './metrics';

export interface BuildInfo {
  /** package.json's version: also what a Worker Deployment build id would be taken from. */
  readonly version: string;
  readonly node: string;
  readonly temporalSdk: string;
}

/** The nearest package.json above `from` whose name is `name` (src/ when unbuilt, dist/src/ when built). */
function packageVersion(name: string, from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

export function buildInfo(): BuildInfo {
  let temporalSdk = 'unknown';
  try {
    temporalSdk = packageVersion('@temporalio/worker', path.dirname(require.resolve('@temporalio/worker')));
  } catch {
    // Never fatal: the gauge then says unknown.
  }
  return { version: packageVersion('pool-reaper', __dirname), node: process.versions.node, temporalSdk };
}

/**
 * `instant_pool_reaper_build_info{version,node_version,temporal_sdk_version} 1`: which build
 * each replica runs, so a dashboard shows a rollout and an alert can be joined on version.
 */
export function registerBuildInfo(registry: Registry, info: BuildInfo = buildInfo()): BuildInfo {
  new Gauge({
    name: METRIC_NAMES.buildInfo,
    help: 'Always 1; the labels name the pool-reaper version, Node.js version and Temporal SDK version.',
    labelNames: ['version', 'node_version', 'temporal_sdk_version'] as const,
    registers: [registry],
  }).set({ version: info.version, node_version: info.node, temporal_sdk_version: info.temporalSdk }, 1);
  return info;
}
