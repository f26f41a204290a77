// `virtgpu-emu matrix`: every create_blob layout (tests/c/layout_probe.c) against every --uapi revision through the
// real FUSE node. Each expected cell is written here by hand from the revision table (docs/uapi-revisions.md): what
// the revision's struct makes of the layout's bytes, which path that selects, and the errno. The README's copy of
// the table must equal the command's output.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;

const REVS = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'mainline', 'libhsakmt-72'];
const B = '0 blob', U = '0 userptr A', E = 'EINVAL';
/**
 * Row → one cell per revision, in REVS order. Reasoning per row:
 * - 48: nothing past byte 48; every revision reads zeros there → an ordinary blob (4 pages: aligned for 7.2).
 * - 56-hints GUEST: DEFER_MAPPING (1) @48 is `userptr = 1` to v1–v5: a userptr at address 1, whose pin fails (v1/v2
 *   ENOMEM, v3/v4 EFAULT); v5 wants USE_USERPTR with a pointer → EINVAL; a hint to v6/mainline; libhsakmt-72 selects
 *   by flag, none set → a blob, the hint lost. HOST3D: the address is ignored, the hint lost except on 7.2 bases.
 * - 56-userptr, 64-v1, 72-userptr: USE_USERPTR + userptr @48 → a userptr in every revision that has one at @48
 *   (v1–v5, libhsakmt-72); v6 and mainline read the address's halves as blob_hints/pad2 → EINVAL; HOST3D alike.
 * - 64-v6: HINT_USERPTR (2) @48 is `userptr = 2` to v1–v4: a userptr at 2, pin fails; v5: pointer without flag →
 *   EINVAL; v6: the userptr; mainline: hint 2 unknown → EINVAL; libhsakmt-72: no flag → a blob. HOST3D: a blob where
 *   the address is ignored; v6: HINT_USERPTR on HOST3D → EINVAL; mainline: unknown hint → EINVAL.
 * - 72-svm: USE_SVM (0x20) is only in libhsakmt-72's mask → EINVAL elsewhere; there svm @56 is the address.
 * - GETPARAM 9 asked for the blob alignment: EINVAL, v3's 1 (a capability, not an alignment), 7.2's 4096.
 */
const EXPECT: Record<string, string[]> = {
  '48 GUEST': [B, B, B, B, B, B, B, B],
  '48 HOST3D': [B, B, B, B, B, B, B, B],
  '56-hints GUEST': ['ENOMEM userptr 0x1 ⚠', 'ENOMEM userptr 0x1 ⚠', 'EFAULT userptr 0x1 ⚠', 'EFAULT userptr 0x1 ⚠', E, B, B, '0 blob ⚠'],
  '56-hints HOST3D': ['0 blob ⚠', '0 blob ⚠', '0 blob ⚠', '0 blob ⚠', '0 blob ⚠', B, B, '0 blob ⚠'],
  '56-userptr GUEST': [U, U, U, U, U, E, E, U],
  '56-userptr HOST3D': [B, B, B, B, B, E, E, B],
  '64-v1 GUEST': [U, U, U, U, U, E, E, U],
  '64-v1 HOST3D': [B, B, B, B, B, E, E, B],
  '64-v6 GUEST': ['ENOMEM userptr 0x2 ⚠', 'ENOMEM userptr 0x2 ⚠', 'EFAULT userptr 0x2 ⚠', 'EFAULT userptr 0x2 ⚠', E, U, E, '0 blob ⚠'],
  '64-v6 HOST3D': [B, B, B, B, B, E, E, B],
  '72-userptr GUEST': [U, U, U, U, U, E, E, U],
  '72-userptr HOST3D': [B, B, B, B, B, E, E, B],
  '72-svm GUEST': [E, E, E, E, E, E, E, U],
  '72-svm HOST3D': [E, E, E, E, E, E, E, B],
  '56-hints GETPARAM 9': [E, E, '1 ⚠', E, E, '4096', '4096', E],
};
/** Bytes 48–71 of the GUEST request as each revision reads them (ptr/off: userptr/offset; A: the probe's address). */
const READ: Record<string, string[]> = {
  '56-hints': ['ptr=0x1 off=0', 'ptr=0x1 off=0', 'ptr=0x1', 'ptr=0x1', 'ptr=0x1', 'hints=0x1 pad2=0 ptr=0', 'hints=0x1 pad2=0', 'ptr=0x1 svm=0 off=0'],
  '64-v1': ['ptr=A off=0', 'ptr=A off=0', 'ptr=A', 'ptr=A', 'ptr=A', 'hints=A.lo pad2=A.hi ptr=0', 'hints=A.lo pad2=A.hi', 'ptr=A svm=0 off=0'],
  '64-v6': ['ptr=0x2 off=A', 'ptr=0x2 off=A', 'ptr=0x2', 'ptr=0x2', 'ptr=0x2', 'hints=0x2 pad2=0 ptr=A', 'hints=0x2 pad2=0', 'ptr=0x2 svm=A off=0'],
  '72-svm': ['ptr=0 off=A', 'ptr=0 off=A', 'ptr=0', 'ptr=0', 'ptr=0', 'hints=0 pad2=0 ptr=A', 'hints=0 pad2=0', 'ptr=0 svm=A off=0'],
};

const cells = (line: string): string[] => line.split('|').slice(1, -1).map((c) => c.trim());

maybe('matrix: every layout against every revision over FUSE, each cell as the revision table says; the README carries the output', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'matrix'], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  const out = r.stdout.trimEnd();
  const lines = out.split('\n');
  const head = lines.find((l) => l.startsWith('| layout (a program built for)'))!;
  t.deepEqual(cells(head).slice(2), REVS);
  const got: Record<string, string[]> = {};
  let layout = '';
  for (const l of lines.slice(lines.indexOf(head) + 2)) {
    if (!l.startsWith('|')) break;
    const c = cells(l);
    if (c[0]) layout = c[0].split(' ')[0]!;
    got[`${layout} ${c[1]!.replace(' (blob alignment)', '')}`] = c.slice(2);
  }
  t.deepEqual(got, EXPECT);
  const readHead = lines.findIndex((l) => l.startsWith('| layout |'));
  const readRows = Object.fromEntries(lines.slice(readHead + 2).filter((l) => l.startsWith('|')).map((l) => { const c = cells(l); return [c[0]!, c.slice(1)]; }));
  for (const [k, v] of Object.entries(READ)) t.deepEqual(readRows[k], v, `bytes 48–71 of ${k}`);

  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- matrix: output of `bin\/virtgpu-emu matrix` -->\n([\s\S]*?)\n<!-- \/matrix -->/.exec(readme);
  t.truthy(m, 'README has the matrix block');
  t.is(m![1], out, 'README table = `virtgpu-emu matrix` output');
});
