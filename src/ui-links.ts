/**
 * Web UI links to a workflow (a pass, the ticker), for the CLI, `explain` and log lines.
 * The base is TEMPORAL_UI_URL (default: the local dev server's UI); the path is the one the
 * Temporal Web UI (2.x) serves. Without a run id the UI opens the latest run of that id.
 */
export function workflowUrl(base: string, namespace: string, workflowId: string, runId?: string): string {
  const enc = encodeURIComponent;
  return `${base.replace(/\/+$/, '')}/namespaces/${enc(namespace)}/workflows/${enc(workflowId)}${
    runId ? `/${enc(runId)}` : ''
  }/history`;
}

/** The UI's workflow list filtered by a visibility query (e.g. `ReapedCount > 0`). */
export function workflowListUrl(base: string, namespace: string, query: string): string {
  return `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`;
}
