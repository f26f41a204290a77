// The shape: core/ is pure (no I/O modules, no addon) and imports flow one way (transports/watchers → core).
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
