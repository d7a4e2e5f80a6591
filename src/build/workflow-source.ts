import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Where the workflow code lives, in one place: `npm run build` writes the bundle here and the
 * worker loads it from here. Both paths are relative to this module, so they hold from `src/`
 * (unbuilt, under tsx or vitest) and from `dist/src/` (built) alike.
 */
const ROOT = path.resolve(__dirname, '..', '..');

/** The workflow sources (`workflows/index.ts`, or its compiled twin under dist/). */
export const WORKFLOWS_PATH = path.join(ROOT, 'workflows');

/** The prebundled workflow code (`dist/workflow-bundle.js` once built). */
export const WORKFLOW_BUNDLE_PATH = path.join(ROOT, 'workflow-bundle.js');

/** The bundle `npm run build` wrote, or the workflow sources when running unbuilt. */
export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  return existsSync(WORKFLOW_BUNDLE_PATH)
    ? { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }
    : { workflowsPath: WORKFLOWS_PATH };
}
