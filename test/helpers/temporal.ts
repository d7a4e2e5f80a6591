import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { inject } from 'vitest';
import { uniqueSuffix } from './env';

let runtimeInstalled = false;

/** Runtime.install may run once per process; tests want the SDK quiet unless something breaks. */
export function installTestRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Already installed by another helper in this fork.
  }
}

export function testTaskQueue(label: string): string {
  return `test-${label}-${uniqueSuffix()}`;
}

export interface TestTemporal {
  readonly address: string;
  readonly connection: Connection;
  readonly client: Client;
  readonly nativeConnection: NativeConnection;
  close(): Promise<void>;
}

/** The shared test server, or `address` (a test's private server). */
export async function connectTestTemporal(address = inject('temporalAddress')): Promise<TestTemporal> {
  installTestRuntime();
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    address,
    connection,
    client: new Client({ connection, namespace: 'default' }),
    nativeConnection,
    async close() {
      await connection.close();
      await nativeConnection.close();
    },
  };
}

let bundleCode: string | undefined;

/** The workflow bundle built once per test run in global setup. */
export function workflowBundle(): { code: string } {
  bundleCode ??= readFileSync(inject('workflowBundlePath'), 'utf8');
  return { code: bundleCode };
}

export async function createTestWorker(
  temporal: TestTemporal,
  options: Omit<WorkerOptions, 'connection' | 'workflowBundle' | 'workflowsPath'> & {
    workflowsPath?: string;
  },
): Promise<Worker> {
  const { workflowsPath, ...rest } = options;
  return Worker.create({
    connection: temporal.nativeConnection,
    namespace: 'default',
    ...(workflowsPath ? { workflowsPath } : { workflowBundle: workflowBundle() }),
    ...rest,
  });
}
