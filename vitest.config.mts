import { defineConfig } from 'vitest/config';

/** Shared by both projects (they do not inherit the root's options, so the global setup runs once). */
const common = {
  pool: 'forks',
  setupFiles: ['test/setup/file-tag.ts'] as string[],
  testTimeout: 120_000,
  hookTimeout: 180_000,
} as const;

export default defineConfig({
  test: {
    // One Temporal dev server and one workflow bundle for the whole run, both projects included;
    // its teardown is the suite-level leak check.
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
    projects: [
      {
        test: {
          ...common,
          name: 'main',
          include: ['test/**/*.test.ts'],
          // Reliability scenarios that mostly wait (test/reliability/waiting/: a two-minute
          // outage, a minute of pause) share these forks instead of holding the machine.
          exclude: ['test/reliability/*.test.ts'],
          // Two cores: more forks only queue on the same CPUs and the shared Postgres checkpointer.
          maxWorkers: 2,
          fileParallelism: true,
        },
      },
      {
        test: {
          ...common,
          name: 'reliability',
          include: ['test/reliability/*.test.ts'],
          // Kill -9, restarts, outages and storms: each scenario alone on the machine, one after
          // another, after the main project (its own group), so no other file competes for the CPU.
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
