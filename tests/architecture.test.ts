// Rules over the whole tree (core/'s own rules are in tests/core/architecture.test.ts): modules are imported
// statically, so the compiler sees every dependency; the only run-time load by path is the native addon's loader
// (listed by count, so a new one fails this test). Imports point one way,
// cli → cuse-dev → uffd → core, types included.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '../..');
/** Not sources: dependencies, build output, the VM cache. */
const SKIP = new Set(['node_modules', 'dist', 'build', '.git', path.join('tools', 'vm', 'cache')]);

function tsFiles(dir = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (SKIP.has(rel)) continue;
    if (e.isDirectory()) out.push(...tsFiles(rel));
    else if (e.name.endsWith('.ts')) out.push(rel.split(path.sep).join('/'));
  }
  return out;
}

/** Run-time loads in a source: calls of the CommonJS loader and dynamic imports (not `require.main`, not the type
 *  `typeof import('…')`, not static `import … from`). */
const LOAD_CALL = /\brequire\s*\(|(?<!typeof\s+)\bimport\s*\(/g;
const loadCalls = (f: string): number => (fs.readFileSync(path.join(root, f), 'utf8').match(LOAD_CALL) ?? []).length;

/**
 * The addon loader: it tries a list of paths for the compiled .node file (uffd/load.ts); and bench/builds.ts, whose
 * job is to load other checkouts' compiled core/ (and core/testing, two loads) to compare builds in one run.
 */
const ADDON_LOADER: Readonly<Record<string, number>> = { 'uffd/load.ts': 1, 'bench/builds.ts': 2 };

test('no run-time load by path in TypeScript sources except the addon loader and the cross-build bench', (t) => {
  const files = tsFiles();
  t.true(files.length > 100, `the walk found the sources (${files.length} files)`);
  const allowed: Record<string, number> = { ...ADDON_LOADER };
  const found: Record<string, number> = {};
  for (const f of files) {
    const n = loadCalls(f);
    if (n > 0) found[f] = n;
  }
  for (const [f, n] of Object.entries(found)) {
    t.true(n <= (allowed[f] ?? 0), `${f}: ${n} load(s) by path, ${allowed[f] ?? 0} allowed: import it statically instead`);
  }
  for (const [f, n] of Object.entries(allowed)) {
    t.true((found[f] ?? 0) >= n, `${f}: ${found[f] ?? 0} load(s) by path left, the list allows ${n}: lower the count here`);
  }
});

/** Folders of the product (what `bin/virtgpu-emu` runs); the ones that do not exist are skipped. */
const PRODUCT = ['core', 'uffd', 'cuse-dev', 'cli'];

test('the product imports nothing from tests/ or bench/', (t) => {
  const spec = /(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]/g;
  let checked = 0;
  for (const f of tsFiles().filter((x) => PRODUCT.includes(x.split('/')[0]))) {
    checked++;
    for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(spec)) {
      const to = path.relative(root, path.resolve(root, path.dirname(f), m[1])).split(path.sep)[0];
      t.false(to === 'tests' || to === 'bench', `${f} imports ${m[1]}`);
    }
  }
  t.true(checked > 50, `the product's sources were read (${checked} files)`);
});

/** The product's layers, top to bottom: each imports (values or types) only from the layers below it. */
const LAYERS = ['cli', 'cuse-dev', 'uffd', 'core'];

/** Relative specifiers of a source: `import … from`, `export … from`, side-effect imports, dynamic imports (also the
 *  type `typeof import`) and calls of the CommonJS loader. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm;

test('imports point down the layers: core → nothing of uffd/cuse-dev/cli, uffd → nothing of cuse-dev/cli, cuse-dev → nothing of cli', (t) => {
  const read: Record<string, number> = {};
  for (const f of tsFiles()) {
    const from = LAYERS.indexOf(f.split('/')[0]);
    if (from < 0) continue;
    read[LAYERS[from]] = (read[LAYERS[from]] ?? 0) + 1;
    for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(SPECIFIER)) {
      const to = LAYERS.indexOf(path.relative(root, path.resolve(root, path.dirname(f), m[1])).split(path.sep)[0]);
      t.false(to >= 0 && to < from, `${f} imports ${m[1]}, a layer above its own (${LAYERS.join(' → ')})`);
    }
  }
  for (const l of LAYERS) t.true((read[l] ?? 0) > 0, `${l}/'s sources were read`);
});

/** Inside cuse-dev/, top to bottom: the transports (threads, mounts, nodes) use the session (the protocol), which
 *  uses the wire layouts; nothing below reaches up. */
const CUSE_DEV_LAYERS = ['transport', 'session', 'abi'];

test('inside cuse-dev, imports point down transport → session → abi', (t) => {
  let checked = 0;
  for (const f of tsFiles().filter((x) => x.startsWith('cuse-dev/'))) {
    const from = CUSE_DEV_LAYERS.indexOf(f.split('/')[1]);
    if (from < 0) continue;
    checked++;
    for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(SPECIFIER)) {
      const rel = path.relative(path.join(root, 'cuse-dev'), path.resolve(root, path.dirname(f), m[1])).split(path.sep);
      const to = rel[0] === '..' ? -1 : CUSE_DEV_LAYERS.indexOf(rel[0]);
      t.false(to >= 0 && to < from, `${f} imports ${m[1]}, a folder above its own (${CUSE_DEV_LAYERS.join(' → ')})`);
    }
  }
  t.true(checked > 15, `cuse-dev's sources were read (${checked} files)`);
});

test('the README layout block names every top-level folder of the tree, and only folders that exist', (t) => {
  const lines = fs.readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
  // The fenced block whose lines start with "core/" and "uffd/": one line per folder, "name/  description".
  const start = lines.findIndex((l) => /^core\/\s{2,}/.test(l));
  t.true(start > 0, 'README.md has a layout block starting with core/');
  const named: string[] = [];
  for (let i = start; i < lines.length && !lines[i]!.startsWith('```'); i++) {
    const m = /^([a-z][\w.-]*)\/\s{2,}/.exec(lines[i]!);
    if (m) named.push(m[1]!);
  }
  const tracked = new Set(fs.readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !SKIP.has(e.name))
    .map((e) => e.name));
  t.deepEqual([...named].sort(), [...tracked].sort(), 'README layout folders vs the tree');
});
