import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The figures each reliability scenario reports (the rows of docs/reliability.md). */
export interface ScenarioFigures {
  readonly scenario: string;
  readonly runs: number;
  readonly items: number;
  readonly faults: string;
  /** null: not measured (the scenario has no such thing, or its test failed before measuring it). */
  readonly wrongfulDrops: number | null;
  readonly leaks: number | null;
  readonly rowsLost: number | null;
  readonly durationMs: number;
  readonly [extra: string]: unknown;
}

/**
 * Prints one line per scenario and keeps it as JSON under artifacts/reliability/ (git-ignored),
 * so the table in docs/reliability.md can be refreshed from a measured run.
 */
export function recordFigures(figures: ScenarioFigures): void {
  console.log(`[reliability] ${figures.scenario}: ${JSON.stringify(figures)}`);
  try {
    const dir = path.resolve(process.cwd(), 'artifacts', 'reliability');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${figures.scenario.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.json`);
    writeFileSync(file, `${JSON.stringify({ ...figures, at: new Date().toISOString() }, null, 2)}\n`);
  } catch {
    // Best effort: the console line is the record.
  }
}
