// The shape: core/ is pure (no I/O modules, no addon), imports flow one way (transports/watchers → core), and the
// only import cycle inside core/ is its object model.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '../../..');
function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}
const importsOf = (f: string) => [...fs.readFileSync(path.join(root, f), 'utf8').matchAll(/(?:from|require\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);

test('core/ imports no I/O module (fs, net, child_process, worker_threads) and no native addon', (t) => {
  const forbidden = /^(node:)?(fs|fs\/promises|net|child_process|worker_threads|dgram|http|https|cluster)$/;
  for (const f of files('core')) for (const i of importsOf(f)) t.false(forbidden.test(i) || i.endsWith('.node'), `${f} imports ${i}`);
});

test('core/ never imports from uffd/ or cuse-dev/; uffd/ never imports from cuse-dev/', (t) => {
  for (const f of files('core')) for (const i of importsOf(f)) t.false(/(^|\/)(uffd|cuse-dev)(\/|$)/.test(i) && i.startsWith('.'), `${f} imports ${i}`);
  for (const f of files('uffd')) for (const i of importsOf(f)) t.false(/(^|\/)cuse-dev(\/|$)/.test(i) && i.startsWith('.'), `${f} imports ${i}`);
});

/** The .ts file a relative specifier names (x.ts or x/index.ts), or null when it leaves the set. */
function resolve(from: string, spec: string, known: Set<string>): string | null {
  const base = path.join(path.dirname(from), spec);
  for (const c of [base + '.ts', path.join(base, 'index.ts')]) if (known.has(c)) return c;
  return null;
}

/** `{ type A, type B }`: every imported name is a type (the import vanishes from the emitted JavaScript). */
function typeOnlyNames(clause: string): boolean {
  const m = /^\{([^}]*)\}$/.exec(clause.trim());
  return !!m && m[1].split(',').every((x) => !x.trim() || /^type\s/.test(x.trim()));
}

/** core/'s import graph over the sources, `import type` and `export … from` included (the type-level graph). */
function coreGraph(): { graph: Map<string, string[]>; valueEdges: Map<string, string[]> } {
  const list = files('core');
  const known = new Set(list);
  const graph = new Map<string, string[]>();
  const valueEdges = new Map<string, string[]>();
  for (const f of list) {
    const src = fs.readFileSync(path.join(root, f), 'utf8');
    const all = new Set<string>();
    const values = new Set<string>();
    for (const m of src.matchAll(/^(?:import|export)\s*(type\s)?([^;'"]*?)\s*(?:from\s*)?['"](\.[^'"]+)['"]/gm)) {
      const to = resolve(f, m[3], known);
      if (!to) continue;
      all.add(to);
      if (!m[1] && !typeOnlyNames(m[2])) values.add(to);
    }
    graph.set(f, [...all]);
    valueEdges.set(f, [...values]);
  }
  return { graph, valueEdges };
}

/** Strongly connected components (Tarjan). */
function sccs(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const c: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) { onStack.delete(w); c.push(w); if (w === v) break; }
    out.push(c);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The object model: a file holds GEM objects and its clients, a client knows its files, a userptr is a GEM object's payload. */
const OBJECT_MODEL = new Set(['core/client.ts', 'core/drm/file.ts', 'core/drm/gem.ts', 'core/userptr/userptr.ts'].map((f) => path.normalize(f)));

test('core/: the type-level import graph has no cycle beyond the object model (file ↔ GEM object ↔ userptr ↔ client)', (t) => {
  const { graph } = coreGraph();
  t.true(graph.size > 20, 'the graph covers core/');
  const cycles = sccs(graph).filter((c) => c.length > 1 || (graph.get(c[0]) ?? []).includes(c[0]));
  for (const c of cycles) t.deepEqual(c.filter((f) => !OBJECT_MODEL.has(f)).sort(), [], `cycle beyond the object model: ${c.sort().join(' ↔ ')}`);
  t.true(cycles.length <= 1, `one knot at most: ${cycles.map((c) => c.join(' ↔ ')).join(' | ')}`);
});

test('core/drm/ (generic DRM) imports no value from core/userptr/ or core/virtgpu/; core/ imports no value from core/testing.ts', (t) => {
  const { valueEdges } = coreGraph();
  for (const [f, deps] of valueEdges) {
    if (f.startsWith(path.normalize('core/drm/'))) for (const d of deps) t.false(/^core\/(userptr|virtgpu)\//.test(d.split(path.sep).join('/')), `${f} imports ${d}`);
    for (const d of deps) t.not(d, path.normalize('core/testing.ts'), `${f} imports ${d}`);
  }
});
