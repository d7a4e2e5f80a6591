import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (measured: docs/reliability.md, issue 14). They
 * start first in their project, so a file that mostly waits (an outage, a pause) overlaps the
 * CPU-bound files instead of running alone at the end. Vitest orders by the durations of the
 * last run when it has them (a developer's machine); a fresh clone (CI) has none, and there
 * vitest would start the largest files first, which put the long small ones last.
 */
export const LONGEST_FIRST: readonly string[] = [
  'test/reliability/waiting/provisioner-outage.test.ts',
  'test/integration/schedule-trigger.test.ts',
  'test/reliability/waiting/long-pause.test.ts',
  'test/integration/schedule-bookkeeping.test.ts',
  'test/integration/reap-pass.test.ts',
  'test/integration/cli.test.ts',
];

export default class LongestFirstSequencer extends BaseSequencer {
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
