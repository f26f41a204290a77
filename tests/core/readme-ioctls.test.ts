// The README's "Every ioctl" table against the dispatcher's rows: one README row per table row with the same nr,
// name, layout (C struct name and size) and errno list; the handler column names the row's export (or its handler
// function) in the file it gives; the tests column names test files that exist.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { virtgpuTable, type IoctlRow } from '../../core';
import * as coreIoctls from '../../core/drm/core-ioctls';
import * as blob from '../../core/virtgpu/blob';
import * as context from '../../core/virtgpu/context';
import * as execbuf from '../../core/virtgpu/execbuf';
import * as getparam from '../../core/virtgpu/getparam';
import * as resource from '../../core/virtgpu/resource';

const root = path.resolve(__dirname, '../../..');

/** The files that define rows, by repo path: the README names a row by its export there. */
const ROW_MODULES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'core/drm/core-ioctls.ts': coreIoctls,
  'core/virtgpu/blob.ts': blob,
  'core/virtgpu/context.ts': context,
  'core/virtgpu/execbuf.ts': execbuf,
  'core/virtgpu/getparam.ts': getparam,
  'core/virtgpu/resource.ts': resource,
};

const HEADER = ['nr', 'ioctl', 'layout', 'size', 'handler', 'errnos', 'tests'] as const;
type Cell = (typeof HEADER)[number];
type ReadmeRow = Record<Cell, string> & { line: number };

/** The table whose header is exactly HEADER; its rows up to the first line that is not a table line. */
function readmeTable(): ReadmeRow[] {
  const lines = fs.readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
  const cellsOf = (l: string): string[] => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  const start = lines.findIndex((l) => l.trim().startsWith('|') && cellsOf(l).join(',') === HEADER.join(','));
  if (start < 0) return [];
  const out: ReadmeRow[] = [];
  for (let i = start + 2; i < lines.length && lines[i].trim().startsWith('|'); i++) {
    const c = cellsOf(lines[i]);
    const row = { line: i + 1 } as ReadmeRow;
    HEADER.forEach((h, k) => { row[h] = c[k] ?? ''; });
    out.push(row);
  }
  return out;
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
const errnoList = (cell: string): string[] => [...cell.matchAll(/\bE[A-Z0-9]+\b/g)].map((m) => m[0]);
/** `name` (`file.ts`) pairs of the handler column, in order. */
const handlerRefs = (cell: string): { name: string; file: string }[] =>
  [...cell.matchAll(/`([A-Za-z_$][\w$]*)`\s*\(`([^`]+\.ts)`\)/g)].map((m) => ({ name: m[1], file: m[2] }));
const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

const rows: IoctlRow[] = virtgpuTable.all();
const readme = readmeTable();
const byName = new Map(readme.map((r) => [ticked(r.ioctl)[0] ?? r.ioctl, r]));

test('README: the ioctl table has one row per dispatcher row, with its nr, name, layout and size', (t) => {
  t.true(readme.length > 0, `README.md has no table with the header | ${HEADER.join(' | ')} |`);
  t.deepEqual(
    readme.map((r) => ({ nr: r.nr, ioctl: ticked(r.ioctl)[0], layout: ticked(r.layout)[0], size: r.size })),
    rows.map((r) => ({ nr: hex(r.nr), ioctl: r.name, layout: r.layout.name, size: String(r.layout.size) })),
    'README rows (in nr order) vs virtgpuTable.all()',
  );
  t.is(byName.size, readme.length, 'each ioctl once');
});

test('README: each row lists exactly the errnos of its dispatcher row', (t) => {
  for (const row of rows) {
    const r = byName.get(row.name);
    if (!r) { t.fail(`${row.name}: no README row`); continue; }
    t.deepEqual(errnoList(r.errnos).sort(), row.errnos.map((e) => e.code).sort(), `${row.name} (README.md:${r.line})`);
  }
});

test('README: the handler column names the row (its export, or its handler function) in the file it gives', (t) => {
  const exportsName = (file: string, name: string): boolean =>
    new RegExp(`^export\\s+(?:const|function|class)\\s+${name.replace(/\$/g, '\\$')}\\b`, 'm').test(fs.readFileSync(path.join(root, file), 'utf8'));
  for (const row of rows) {
    const r = byName.get(row.name);
    if (!r) { t.fail(`${row.name}: no README row`); continue; }
    const refs = handlerRefs(r.handler);
    if (refs.length === 0) { t.fail(`${row.name} (README.md:${r.line}): no \`name\` (\`file.ts\`) in the handler column`); continue; }
    for (const { name, file } of refs) {
      t.true(fs.existsSync(path.join(root, file)), `${row.name}: ${file} does not exist`);
      if (fs.existsSync(path.join(root, file))) t.true(exportsName(file, name), `${row.name}: ${file} exports no ${name}`);
    }
    const first = refs[0];
    const m = ROW_MODULES[first.file];
    const isRow = m !== undefined && m[first.name] === row;
    const isHandler = row.handler.name !== '' && row.handler.name !== 'handler' && row.handler.name === first.name;
    t.true(isRow || isHandler, `${row.name} (README.md:${r.line}): \`${first.name}\` in ${first.file} is not this row${m ? '' : ` (${first.file} is not in ROW_MODULES)`}`);
  }
});

test('README: the tests column of every row names test files that exist', (t) => {
  for (const r of readme) {
    const files = ticked(r.tests);
    t.true(files.length > 0, `${r.ioctl} (README.md:${r.line}): no test named`);
    for (const f of files) {
      t.true(f.startsWith('tests/'), `${r.ioctl}: ${f} is not under tests/`);
      t.true(fs.existsSync(path.join(root, f)), `${r.ioctl}: ${f} does not exist`);
    }
  }
});
