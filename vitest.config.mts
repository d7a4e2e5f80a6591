import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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

/**
 * The files that take longest, longest first (measured: docs/reliability.md, issue 14). They
 * start first in their project, so a file that mostly waits (an outage, a pause) overlaps the
 * CPU-bound files instead of running alone at the end. Vitest orders by the durations of the
 * last run when it has them (a developer's machine); a fresh clone (CI) has none, and there
 * vitest would start the largest files first, which put the long small ones last.
 */
const LONGEST_FIRST: readonly string[] = [
  'test/reliability/waiting/provisioner-outage.test.ts',
  'test/integration/schedule-trigger.test.ts',
  'test/reliability/waiting/long-pause.test.ts',
  'test/integration/schedule-bookkeeping.test.ts',
  'test/integration/reap-pass.test.ts',
  'test/integration/cli.test.ts',
];

class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const at = LONGEST_FIRST.indexOf(relative(this.ctx.config.root, spec.moduleId));
      return at < 0 ? LONGEST_FIRST.length : at;
    };
    const position = new Map(sorted.map((spec, i) => [spec, i]));
    // Group order and project first (as vitest does), then the list, then vitest's own order.
    return [...sorted].sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        (a.project.name < b.project.name ? -1 : a.project.name > b.project.name ? 1 : 0) ||
        rank(a) - rank(b) ||
        position.get(a)! - position.get(b)!,
    );
  }
}

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
