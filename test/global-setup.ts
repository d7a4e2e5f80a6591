import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findTemporalCli } from '../src/dev/temporal-cli';
import { type DevServer, startDevServer } from '../src/dev/temporal-server';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCliPath: string;
    workflowBundlePath: string;
  }
}

/** One Temporal dev server (headless, in memory, free ports) and one workflow bundle per test run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cliPath = await findTemporalCli({ log: (line) => console.log(line) });
  const server: DevServer = await startDevServer({
    cliPath,
    uiPort: false,
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pool-reaper-test-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const { bundleWorkflowCode, DefaultLogger } = await import('@temporalio/worker');
  const { writeFileSync } = await import('node:fs');
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.resolve(process.cwd(), 'workflows/index.ts'),
    logger: new DefaultLogger('WARN'),
  });
  writeFileSync(bundlePath, code);
  project.provide('temporalAddress', server.address);
  project.provide('temporalCliPath', cliPath);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
