import { NativeConnection } from '@temporalio/worker';
import { type TemporalTarget, unreachable } from './temporal-connection';

/** The worker's own (native) connection; same one-line error as the client's. */
export async function connectNative(target: TemporalTarget): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(target.connectionOptions);
  } catch (err) {
    throw unreachable(target, err);
  }
}
