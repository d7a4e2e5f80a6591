import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** The SDK modules a built module loads when `require`d alone, as a fresh process sees them. */
async function temporalPackagesLoadedBy(builtModule: string): Promise<string[]> {
  const script =
    `require(${JSON.stringify(path.resolve(process.cwd(), builtModule))});` +
    'const names = Object.keys(require.cache).map((f) => /@temporalio\\/([a-z-]+)/.exec(f)?.[1]).filter(Boolean);' +
    'console.log(JSON.stringify([...new Set(names)].sort()));';
  const { stdout } = await run(process.execPath, ['-e', script]);
  return JSON.parse(stdout) as string[];
}

/**
 * Every CLI command but `worker` talks to Temporal through the client only; loading the SDK's
 * worker (its native bridge and the workflow bundler's dependencies) cost each `status`,
 * `reap-now` or `plan` 0.1–0.2 s of CPU (0.50 -> 0.37 s user for `--help`). Checked on the built CLI (`npm run build`).
 */
describe('CLI start-up', () => {
  it('does not load @temporalio/worker until the worker command runs', async () => {
    const cli = await temporalPackagesLoadedBy('dist/src/cli.js');
    expect(cli).toContain('client');
    expect(cli).not.toContain('worker');
  });

  it('the check sees the worker package where it is loaded (the worker module itself)', async () => {
    expect(await temporalPackagesLoadedBy('dist/src/worker.js')).toContain('worker');
  });
});
