import type { ReaperConfig } from '../config';
import { DEFAULT_CLUSTER } from '../config';
import { migrate } from '../store/migrate';
import { PoolStore } from '../store/pool-store';
import { assertDevDatabase } from './dev-database';
import { type PoolItemStatus, type SeedResourceType, seedItems } from './seed';

const TYPES: readonly SeedResourceType[] = ['postgres', 'redis', 'queue', 'mongodb'];
const STATUSES: readonly PoolItemStatus[] = ['ready', 'assigned', 'failed'];

export class SeedUsageError extends Error {
  override readonly name = 'SeedUsageError';
}

/** `pool-reaper seed`: real items on the configured local:0 clusters, with progress for large counts. */
export async function seedFromCli(
  config: ReaperConfig,
  opts: {
    type: string;
    count: number;
    status: string;
    age: number;
    concurrency: number;
    json?: boolean;
    force?: boolean;
  },
): Promise<void> {
  if (!TYPES.includes(opts.type as SeedResourceType)) {
    throw new SeedUsageError(`--type: expected one of ${TYPES.join(', ')}, got "${opts.type}"`);
  }
  if (!STATUSES.includes(opts.status as PoolItemStatus)) {
    throw new SeedUsageError(`--status: expected one of ${STATUSES.join(', ')}, got "${opts.status}"`);
  }
  const store = PoolStore.connect(config.provisionerDatabaseUrl, Math.max(2, opts.concurrency));
  try {
    // Before anything is written, the migration included.
    await assertDevDatabase(config.provisionerDatabaseUrl, store.pool, { force: opts.force ?? false });
  } catch (err) {
    await store.close();
    throw err;
  }
  await migrate(config.provisionerDatabaseUrl);
  const showProgress = !opts.json && process.stderr.isTTY && opts.count >= 20;
  try {
    const items = await seedItems({
      provisionerPool: store.pool,
      adminUrl: config.postgresClusters.get(DEFAULT_CLUSTER)!,
      redisUrl: config.redisClusters.get(DEFAULT_CLUSTER)!,
      count: opts.count,
      resourceType: opts.type as SeedResourceType,
      status: opts.status as PoolItemStatus,
      ageMs: opts.age,
      concurrency: opts.concurrency,
      onProgress: showProgress
        ? (done, total) => process.stderr.write(`\r\x1b[2Kseeded ${done}/${total} ${opts.type} item(s)`)
        : undefined,
    });
    if (showProgress) process.stderr.write('\n');
    const refs = items.map(({ id, resourceType, poolToken, providerResourceId }) => ({
      id,
      resourceType,
      poolToken,
      providerResourceId,
    }));
    process.stdout.write(
      opts.json
        ? `${JSON.stringify(refs, null, 2)}\n`
        : `${refs.map((r) => `${r.id}  ${r.resourceType}  ${r.poolToken}  ${opts.status}`).join('\n')}\n`,
    );
  } finally {
    await store.close();
  }
}
