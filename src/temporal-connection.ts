import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
// Type-only: the CLI imports this module, and loading @temporalio/worker (the native bridge)
// costs every command 0.1–0.2 s of start-up; the worker's connection is in native-connection.ts.
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

/** Raised when Temporal cannot be reached; its message is the one line the CLI prints. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
}

export interface TemporalTarget {
  readonly connectionOptions: NativeConnectionOptions;
  readonly address: string;
  readonly namespace: string;
}

/**
 * Temporal's own conventions (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS and API-key
 * variables, config-file profiles via TEMPORAL_PROFILE), so the same worker connects to a
 * self-hosted cluster or Temporal Cloud unchanged.
 */
export function temporalTarget(): TemporalTarget {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const address = connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS;
  return { connectionOptions: { ...connectionOptions, address }, address, namespace: namespace ?? 'default' };
}

export async function connectClient(target: TemporalTarget = temporalTarget()): Promise<Client> {
  let connection: Connection;
  try {
    const { address, tls, apiKey, metadata } = target.connectionOptions;
    connection = await Connection.connect({
      address,
      ...(tls !== undefined ? { tls } : {}),
      ...(apiKey !== undefined && typeof apiKey === 'string' ? { apiKey } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
      connectTimeout: 5000,
    });
    await connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw unreachable(target, err);
  }
  return new Client({ connection, namespace: target.namespace });
}

export function unreachable(target: TemporalTarget, err: unknown): TemporalUnreachableError {
  return new TemporalUnreachableError(
    `cannot reach Temporal at ${target.address} (namespace ${target.namespace}): ${firstLine(err)}; ` +
      'check TEMPORAL_ADDRESS or start the local stack with `npm start`',
  );
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? 'unknown error';
}
