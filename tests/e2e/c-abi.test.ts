// The uAPI layout tables (core/abi/drm.ts, core/abi/virtgpu.ts) checked against a C compiler: tests/c/sizeof_check.c
// prints sizeof/alignof/offsetof of the same structs from libdrm's headers (where libdrm 2.4.114 has the current
// layout) or the project header tests/c/include/virtgpu_userptr.h, and the ioctl numbers from their macros.
import test from 'ava';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { drm, virtgpu, layout, virtgpuTable, virtgpuTableFor, cmdOf, UAPI, UAPI_NAMES } from '../../core';

const ROOT = path.resolve(__dirname, '../../..');
const CDIR = path.join(ROOT, 'tests/c');

interface CStruct { size: number; align: number; source: string; fields: Map<string, { offset: number; size: number }> }
interface COutput { structs: Map<string, CStruct>; ioctls: Map<string, number>; error?: string }

let cached: COutput | undefined;
/** Compiles (make is incremental) and runs sizeof_check once for all tests of this file. */
function cOutput(): COutput {
  if (cached) return cached;
  const structs = new Map<string, CStruct>();
  const ioctls = new Map<string, number>();
  const mk = spawnSync('make', ['-s', '-C', CDIR, 'bin/sizeof_check'], { encoding: 'utf8' });
  if (mk.status !== 0) return (cached = { structs, ioctls, error: `make -C tests/c bin/sizeof_check failed (${mk.status ?? mk.error?.message}): ${mk.stderr}` });
  const run = spawnSync(path.join(CDIR, 'bin/sizeof_check'), { encoding: 'utf8' });
  if (run.status !== 0) return (cached = { structs, ioctls, error: `sizeof_check exited ${run.status}: ${run.stderr}` });
  for (const line of run.stdout.split('\n')) {
    const w = line.split(' ');
    if (w[0] === 'S') structs.set(w[1]!, { size: Number(w[2]), align: Number(w[3]), source: w[4]!, fields: new Map() });
    else if (w[0] === 'F') structs.get(w[1]!)!.fields.set(w[2]!, { offset: Number(w[3]), size: Number(w[4]) });
    else if (w[0] === 'I') ioctls.set(w[1]!, Number(w[2]));
  }
  return (cached = { structs, ioctls });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const tables = ([...Object.values(drm), ...Object.values(virtgpu)] as unknown[]).filter((v): v is layout.Struct<any> => v instanceof layout.Struct);

test('every struct table of core/abi is covered', (t) => {
  t.true(tables.length >= 16, `found ${tables.length} tables`);
  const c = cOutput();
  if (c.error) return t.fail(c.error);
  const missing = tables.map((s) => s.name).filter((n) => !c.structs.has(n));
  t.deepEqual(missing, [], 'TS tables with no C counterpart in tests/c/sizeof_check.c');
});

for (const s of tables) {
  test(`${s.name}: size, alignment and every field offset match C`, (t) => {
    const c = cOutput();
    if (c.error) return t.fail(c.error);
    const cs = c.structs.get(s.name);
    if (!cs) return t.fail(`sizeof_check.c prints no struct named ${s.name}`);
    const where = `(C: ${cs.source})`;
    t.is(s.size, cs.size, `sizeof(${s.name}) ${where}`);
    t.is(s.align, cs.align, `_Alignof(${s.name}) ${where}`);
    for (const f of s.fields) {
      const cf = cs.fields.get(f.name);
      if (!cf) { t.fail(`${s.name}.${f.name}: no such member in C ${where}`); continue; }
      t.is(f.offset, cf.offset, `offsetof(${s.name}, ${f.name}) ${where}`);
      t.is(f.type.size, cf.size, `sizeof(${s.name}.${f.name}) ${where}`);
    }
    t.deepEqual([...cs.fields.keys()].filter((n) => !s.fields.some((f) => f.name === n)), [], `C members of ${s.name} missing from the TS table`);
  });
}

test('the TS transfer table agrees with the part libdrm 2.4.114 has', (t) => {
  const c = cOutput();
  if (c.error) return t.fail(c.error);
  const old = c.structs.get('libdrm:drm_virtgpu_3d_transfer_to_host');
  if (!old) return t.fail('sizeof_check.c prints no libdrm:drm_virtgpu_3d_transfer_to_host');
  for (const [name, cf] of old.fields) {
    const f = virtgpu.drm_virtgpu_3d_transfer.fields.find((x) => x.name === name);
    t.is(f?.offset, cf.offset, `offsetof(drm_virtgpu_3d_transfer_to_host, ${name}) vs libdrm`);
  }
});

test('ioctl numbers of every table row match the C macros', (t) => {
  const c = cOutput();
  if (c.error) return t.fail(c.error);
  const rows = virtgpuTable.all();
  t.true(rows.length >= 14);
  for (const row of rows) {
    const want = c.ioctls.get(row.name);
    if (want === undefined) { t.fail(`sizeof_check.c prints no ioctl number for ${row.name}`); continue; }
    t.is(cmdOf(row) >>> 0, want, `${row.name}: TS 0x${(cmdOf(row) >>> 0).toString(16)} vs C 0x${want.toString(16)}`);
  }
});

test('the create_blob number of every uapi revision matches the C macro over that revision\'s struct', (t) => {
  const c = cOutput();
  if (c.error) return t.fail(c.error);
  for (const n of UAPI_NAMES) {
    const row = virtgpuTableFor(UAPI[n]).byNr(0x4a)!;
    const suffix = row.layout.name.slice('drm_virtgpu_resource_create_blob'.length);
    const want = c.ioctls.get(`DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB${suffix}`);
    t.is(cmdOf(row) >>> 0, want ?? -1, `${n} (${row.layout.name})`);
  }
});
