/**
 * Where the worker's CPU went during a measured pass: reads the `.cpuprofile` files that
 * `node --cpu-prof --cpu-prof-dir=DIR` wrote (one per thread: the main thread runs the
 * activities and the SDK's bridge, a worker thread runs the workflow sandbox), keeps only
 * the samples inside the pass (the window the bench wrote to DIR/window.json) and sums the
 * self time by where the code lives.
 *
 *   node dist/bench/profile-summary.js DIR [--items N]
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface Profile {
  readonly nodes: ProfileNode[];
  readonly startTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

/** A coarse place for a frame: the package or the part of this repository it belongs to. */
export function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8 garbage collector';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native ${functionName || '(anonymous)'}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  if (url.includes('workflow-bundle') || url.includes('/workflows/') || url.startsWith('webpack'))
    return 'workflow bundle (sandbox)';
  const repo = /dist\/(?:node_modules\/\.bench-base\/dist\/)?([^/]+(?:\/[^/]+)?)\//.exec(url)?.[1];
  if (repo) return `app ${repo}`;
  return url.length > 60 ? `…${url.slice(-60)}` : url;
}

function summarise(profile: Profile, window?: { startUs: number; endUs: number }) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const category = categoryOf(node.callFrame);
    if (category === '(idle)') continue;
    const us = profile.timeDeltas[i + 1] ?? delta;
    total += us;
    categories.set(category, (categories.get(category) ?? 0) + us);
    const fn = `${node.callFrame.functionName || '(anonymous)'} ${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => ({ where: k, ms: Math.round(v / 100) / 10 }));
  return {
    busyMs: Math.round(total / 100) / 10,
    categories: top(categories, 25),
    functions: top(functions, 25),
  };
}

function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: profile-summary DIR [--items N]');
  const itemsArg = process.argv.indexOf('--items');
  const items = itemsArg > 0 ? Number(process.argv[itemsArg + 1]) : undefined;
  let window: { startUs: number; endUs: number } | undefined;
  try {
    window = JSON.parse(readFileSync(path.join(dir, 'window.json'), 'utf8'));
  } catch {
    window = undefined;
  }
  const out: Record<string, unknown> = { window, items };
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile;
    const s = summarise(profile, window);
    out[file] = { ...s, ...(items ? { busyMsPerItem: Math.round((s.busyMs / items) * 1000) / 1000 } : {}) };
    process.stdout.write(
      `\n== ${file}: ${s.busyMs} ms busy${items ? ` (${(s.busyMs / items).toFixed(2)} ms/item)` : ''}\n`,
    );
    for (const c of s.categories) process.stdout.write(`  ${String(c.ms).padStart(9)} ms  ${c.where}\n`);
    process.stdout.write('  -- top functions (self)\n');
    for (const f of s.functions.slice(0, 15))
      process.stdout.write(`  ${String(f.ms).padStart(9)} ms  ${f.where}\n`);
  }
  writeFileSync(path.join(dir, 'summary.json'), `${JSON.stringify(out, null, 2)}\n`);
}

main();
