import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './test/setup/sequencer';

/**
 * Reliability scenarios that kill processes, restart servers, cut connections or storm the
 * ticker: each runs alone on the machine (the reliability project). A new scenario of that
 * kind belongs in this list; every other test file runs in the main project's forks.
 */
const ALONE = [
  'test/reliability/concurrency.test.ts',
  'test/reliability/crash.test.ts',
  'test/reliability/never-stops.test.ts',
  'test/reliability/outages.test.ts',
  'test/reliability/temporal-restart.test.ts',
];

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
    // The longest files first in each project, also on a fresh clone without vitest's cache.
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      {
        test: {
          ...common,
          name: 'main',
          include: ['test/**/*.test.ts'],
          // Reliability scenarios that mostly wait (test/reliability/waiting/: a two-minute
          // outage, a minute of pause) and the in-process ones (fuzzers, property model,
          // scripted races: no process killed, no server restarted, no storm) share these forks
          // instead of holding the machine.
          exclude: ALONE,
          // Two cores: more forks only queue on the same CPUs and the shared Postgres checkpointer.
          maxWorkers: 2,
          fileParallelism: true,
        },
      },
      {
        test: {
          ...common,
          name: 'reliability',
          include: ALONE,
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
