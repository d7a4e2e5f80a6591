import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Two cores: more forks only queue on the same CPUs and the shared Postgres checkpointer.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});
