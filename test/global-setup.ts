import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findTemporalCli } from '../src/dev/temporal-cli';
import type { DevServer } from '../src/dev/temporal-server';
import { countTagged, describeTagged, sweepTag } from './helpers/cleanup';
import { startDevServerWithRetry } from './helpers/dev-server';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalCliPath: string;
    workflowBundlePath: string;
    /** 8 hex digits naming this run: the start of every file's cleanup tag (test/setup/file-tag.ts). */
    testRunId: string;
  }
}

/**
 * One Temporal dev server (headless, in memory, free ports) and one workflow bundle per test
 * run, shared by every project. At the end, the suite-level leak check: nothing whose name
 * carries this run's id may be left on either Postgres cluster or in Redis. Other runs on the
 * same machine have other ids, so their leftovers never fail this one.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = randomBytes(4).toString('hex');
  const cliPath = await findTemporalCli({ log: (line) => console.log(line) });
  const server: DevServer = await startDevServerWithRetry({
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
  project.provide('testRunId', runId);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    await checkNothingLeft(runId);
  };
}

/** Fails the run (exit code 1) if anything of this run survived its files' own cleanup; removes it. */
async function checkNothingLeft(runId: string): Promise<void> {
  const { found, problems } = await sweepTag(runId);
  const skipped =
    found.unreachable.length > 0 ? ` (not reachable, not checked: ${found.unreachable.join(', ')})` : '';
  if (countTagged(found) === 0) {
    console.log(`[leak check] run ${runId}: nothing left behind${skipped}`);
    return;
  }
  process.exitCode = 1;
  const message =
    `[leak check] run ${runId} left ${countTagged(found)} object(s) behind after every file's cleanup: ` +
    `${describeTagged(found)}${problems.length > 0 ? `; could not remove: ${problems.join('; ')}` : '; removed now'}`;
  console.error(message);
  throw new Error(message);
}
