/**
 * A second worker process for the pass-ceiling bench: the production activities on the
 * bench's task queue, until SIGTERM. Configured by the parent through the environment.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { DEFAULT_CLUSTER } from '../../src/config';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/metrics';
import { PoolStore } from '../../src/store/pool-store';
import { createTeardownRegistry } from '../../src/teardown';

async function main(): Promise<void> {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const concurrency = Number(env('BENCH_CONCURRENCY'));
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const log = createLogger({ level: 'silent' });
  const store = PoolStore.connect(env('BENCH_PROVISIONER_URL'), Math.min(40, concurrency * 2 + 8));
  const registry = createTeardownRegistry({
    postgresClusters: new Map([[DEFAULT_CLUSTER, env('BENCH_ADMIN_URL')]]),
    redisClusters: new Map([[DEFAULT_CLUSTER, env('BENCH_REDIS_URL')]]),
    concurrency,
    log,
  });
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: env('BENCH_TEMPORAL_ADDRESS') }),
    taskQueue: env('BENCH_TASK_QUEUE'),
    workflowsPath: require.resolve('../../workflows'),
    activities: createActivities({
      store,
      teardown: registry,
      settings: {
        failedGraceMs: 600_000,
        stuckAssignedGraceMs: 1_800_000,
        batchLimit: 10_000,
        quarantineAfter: 3,
      },
      metrics: createMetrics(undefined, { defaultMetrics: false }),
      log,
    }),
    maxConcurrentActivityTaskExecutions: concurrency * 2 + 4,
    stickyQueueScheduleToStartTimeout: '5 seconds',
  });
  process.on('SIGTERM', () => worker.shutdown());
  process.send?.('ready');
  await worker.run();
  await registry.close();
  await store.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
