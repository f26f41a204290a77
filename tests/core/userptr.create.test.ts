// Spec §3: creating a userptr BO — check order, dedup (+3), offset, pin rules, host commands.
import test from 'ava';
import { Harness, HSAKMT, BLOB_GUEST, BLOB_HOST3D, BLOB_HOST3D_GUEST, USE_USERPTR, USERPTR_RDONLY, USE_MAPPABLE } from '../helpers/core-harness';
import * as B from '../helpers/bytes';
import { PROT_NONE, PROT_R, SimObject } from '../../core/testing';
import { NOT_PRESENT } from '../../core/memory/client-memory';
import { PREPARE_MIN_PAGES, PREPARE_STEP_PAGES } from '../../core/userptr/create';

function ready(opts = {}) {
  const h = new Harness(opts);
  const p = h.proc();
  const f = h.open(p);
  t0(h.initHsakmt(f, p));
  return { h, p, f };
}
function t0(v: unknown) { if (v !== 0) throw new Error(`setup ioctl failed: ${String(v)}`); }

test('§3 create: a userptr over populated memory returns 0, a handle >= 1 and a resource id >= 2', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * 4096);
  const r = h.create(f, p, a, 8 * 4096);
  t.is(r.ret, 0);
  t.is(r.handle, 1);
  t.true(r.resId >= 2);
  t.is(r.offset, 0x5a5an, 'offset is left as the caller passed it on a fresh create');
  const cmds = h.hostOf(r.resId);
  t.deepEqual(cmds, ['RESOURCE_CREATE_BLOB', 'CTX_ATTACH_RESOURCE']);
  const blob = h.host.ofType('RESOURCE_CREATE_BLOB').find((c) => c.resId === r.resId)!;
  t.is(blob.size, BigInt(8 * 4096));
  t.is(blob.blobMem, BLOB_HOST3D_GUEST);
  t.is(blob.blobId, 0x1234n);
  t.true(blob.ctxId > 0, 'HOST3D_GUEST: the file context');
  t.is(blob.entries.reduce((s, e) => s + e.length, 0), 8 * 4096);
});

test('§3.1 upstream blob checks → EINVAL (bad blob_mem, unknown flags, GUEST with blob_id or cmd_size, HOST3D cmd_size not dword aligned)', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4096);
  t.is(h.create(f, p, a, 4096, USE_USERPTR, 4).ret, 'EINVAL');
  t.is(h.create(f, p, a, 4096, USE_USERPTR | 0x20).ret, 'EINVAL');
  t.is(h.create(f, p, a, 4096, USE_USERPTR, BLOB_GUEST, B.VIRTGPU_RESOURCE_CREATE_BLOB, 0).ret, 0);
  const withId = B.createBlob({ blobMem: BLOB_GUEST, flags: USE_USERPTR, size: 4096, userptr: a, blobId: 7 });
  t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, withId).ret, 'EINVAL');
  const withCmd = B.createBlob({ blobMem: BLOB_GUEST, flags: USE_USERPTR, size: 4096, userptr: a, cmdSize: 4, cmd: a });
  t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, withCmd).ret, 'EINVAL');
  const odd = B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: 4096, userptr: a, cmdSize: 3, cmd: a, blobId: 1 });
  t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, odd).ret, 'EINVAL');
  t.is(h.create(f, p, a, 4096, USE_USERPTR | 4 /* cross device, not in profile */).ret, 'EINVAL');
});

test('§3.1 later-revision rules: USE_USERPTR with userptr 0, RDONLY without USE_USERPTR → EINVAL, and no context is created', (t) => {
  const h = new Harness();
  const p = h.proc();
  const f = h.open(p);
  t.is(h.create(f, p, 0, 4096, USE_USERPTR).ret, 'EINVAL');
  const a = p.mmap(4096);
  t.is(h.create(f, p, a, 4096, USERPTR_RDONLY).ret, 'EINVAL');
  t.is(h.host.ofType('CTX_CREATE').length, 0, 'step 1 fails before the default context');
});

test('§3.1/§3.2 a file with no context gets the default one, then EINVAL (not HSAKMT); CONTEXT_INIT afterwards → EEXIST', (t) => {
  const h = new Harness();
  const p = h.proc();
  const f = h.open(p);
  const a = p.mmap(4096);
  t.is(h.create(f, p, a, 4096).ret, 'EINVAL');
  const ctx = h.host.ofType('CTX_CREATE');
  t.is(ctx.length, 1);
  t.is(ctx[0].contextInit, 0);
  t.is(h.initHsakmt(f, p), 'EEXIST');
});

test('§3.2 a context of another capset (VIRGL2) → EINVAL', (t) => {
  const h = new Harness();
  const p = h.proc();
  const f = h.open(p);
  t.is(h.initHsakmt(f, p, 2), 0);
  const a = p.mmap(4096);
  t.is(h.create(f, p, a, 4096).ret, 'EINVAL');
});

test('§3.3 size 0 → EINVAL; a range that wraps or ends above 0x7ffffffff000 → EFAULT; unaligned is legal', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * 4096);
  t.is(h.create(f, p, a, 0).ret, 'EINVAL');
  t.is(h.create(f, p, 0x7ffffffff000 - 4096, 8192).ret, 'EFAULT');
  t.is(h.create(f, p, 0x7ffffffff000 - 4096, 4096).ret, 'ENOMEM', 'in range but unmapped: pin fails');
  const wrap = B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: 0x2000, userptr: 0xfffffffffffff000n as unknown as number, blobId: 1 });
  t.is(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, wrap).ret, 'EFAULT');
  const r = h.create(f, p, a + 100, 4096); // spans two pages
  t.is(r.ret, 0);
  t.is(h.info(f, p, r.handle).size, 2 * 4096, 'npages = roundup((userptr & 4095) + size)');
});

test('§3.4 dedup: a create fully inside a valid userptr returns +3 with the same handles and the page offset; no host command, no reference', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(16 * 4096);
  const r = h.create(f, p, a + 10, 16 * 4096 - 10);
  t.is(r.ret, 0);
  const before = h.host.log.length;
  const d = h.create(f, p, a + 5 * 4096 + 123, 4096, USE_USERPTR | USE_MAPPABLE /* flags are not compared */);
  t.is(d.ret, 3);
  t.is(d.handle, r.handle);
  t.is(d.resId, r.resId);
  t.is(d.offset, BigInt(5 * 4096));
  t.is(h.host.log.length, before, 'no host command on dedup');
  t.is(h.close(f, p, r.handle), 0, 'one GEM_CLOSE frees it for everyone');
  t.is(h.close(f, p, d.handle), 'EINVAL');
  t.is(h.dev.counts().pins, 0);
});

test('§3.4 dedup needs full containment: a range sticking out creates a new BO (overlap is legal)', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * 4096);
  const r = h.create(f, p, a, 4 * 4096);
  const o = h.create(f, p, a + 2 * 4096, 4 * 4096);
  t.is(o.ret, 0);
  t.not(o.handle, r.handle);
  const inner = h.create(f, p, a + 3 * 4096, 4096);
  t.is(inner.ret, 3);
  t.is(inner.handle, r.handle, 'the lowest start wins among containing userptrs');
  t.is(inner.offset, BigInt(3 * 4096));
});

test('§3.4 dedup is per file: another file gets its own BO', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4096);
  const r = h.create(f, p, a, 4096);
  const f2 = h.open(p);
  t.is(h.initHsakmt(f2, p), 0);
  const r2 = h.create(f2, p, a, 4096);
  t.is(r2.ret, 0);
  t.is(r2.handle, 1);
  t.not(r2.resId, r.resId);
});

test('§3.5 pin: unmapped, PROT_NONE, read-only without RDONLY, and MAP_SHARED regular files → ENOMEM; RDONLY over read-only memory works', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * 4096);
  p.munmap(a + 4096, 4096);
  t.is(h.create(f, p, a, 3 * 4096).ret, 'ENOMEM', 'hole');
  const n = p.mmap(4096, PROT_NONE);
  t.is(h.create(f, p, n, 4096).ret, 'ENOMEM', 'PROT_NONE');
  const ro = p.mmap(4096, PROT_R);
  t.is(h.create(f, p, ro, 4096).ret, 'ENOMEM', 'read-only, writable pin');
  t.is(h.create(f, p, ro, 4096, USE_USERPTR | USERPTR_RDONLY).ret, 0, 'RDONLY pin of read-only memory');
  const file = p.mmap(4096, undefined, { shared: true, obj: new SimObject('file') });
  t.is(h.create(f, p, file, 4096).ret, 'ENOMEM', 'MAP_SHARED regular file cannot be pinned writable');
  t.is(h.create(f, p, file, 4096, USE_USERPTR | USERPTR_RDONLY).ret, 0);
  const shm = p.mmap(4096, undefined, { shared: true });
  t.is(h.create(f, p, shm, 4096).ret, 0, 'memfd/shm can');
  const untouched = p.mmap(4 * 4096);
  t.is(h.create(f, p, untouched, 4 * 4096).ret, 0, 'untouched anonymous pages are faulted in');
});

test('§3.6 handles are the lowest free >= 1; resource ids start at 2 and are never reused', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * 4096);
  const r1 = h.create(f, p, a, 4096);
  const r2 = h.create(f, p, a + 4096, 4096);
  const r3 = h.create(f, p, a + 2 * 4096, 4096);
  t.deepEqual([r1.handle, r2.handle, r3.handle], [1, 2, 3]);
  t.is(r1.resId, 2);
  h.close(f, p, r2.handle);
  const r4 = h.create(f, p, a + 3 * 4096, 4096);
  t.is(r4.handle, 2);
  t.is(r4.resId, 5);
});

test('§3.6 GUEST userptr: ctx_id 0 in RESOURCE_CREATE_BLOB, then attach to the file context', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4096);
  const r = h.create(f, p, a, 4096, USE_USERPTR, BLOB_GUEST);
  t.is(r.ret, 0);
  const blob = h.host.ofType('RESOURCE_CREATE_BLOB').find((c) => c.resId === r.resId)!;
  t.is(blob.ctxId, 0);
  t.is(h.host.ofType('CTX_ATTACH_RESOURCE').find((c) => c.resId === r.resId)!.ctxId, h.dev.snapshot().files[0].ctx!.id);
});

test('§3 HOST3D with a userptr is an ordinary host blob (userptr ignored)', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4096);
  const r = h.create(f, p, a, 4096, USE_USERPTR, BLOB_HOST3D);
  t.is(r.ret, 0);
  t.is(h.dev.counts().pins, 0);
  t.is(h.userptrOf(f, r.handle), undefined);
  t.deepEqual(h.host.ofType('RESOURCE_CREATE_BLOB').find((c) => c.resId === r.resId)!.entries, []);
});

test('§3 RESOURCE_INFO on a userptr: size = npages*4096, blob_mem as created; GEM_CLOSE sends DETACH then UNREF', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * 4096);
  const r = h.create(f, p, a + 1, 3 * 4096);
  const i = h.info(f, p, r.handle);
  t.is(i.ret, 0);
  t.is(i.size, 4 * 4096);
  t.is(i.blobMem, BLOB_HOST3D_GUEST);
  t.is(i.resId, r.resId);
  t.is(h.close(f, p, r.handle), 0);
  t.deepEqual(h.hostOf(r.resId), ['RESOURCE_CREATE_BLOB', 'CTX_ATTACH_RESOURCE', 'CTX_DETACH_RESOURCE', 'RESOURCE_UNREF']);
  t.is(h.info(f, p, r.handle).ret, 'ENOENT');
});

test('§3 48- and 56-byte callers: zero-filled userptr for 48 (plain guest blob), offset never written back', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * 4096);
  const r48 = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_48, B.createBlob({ blobMem: BLOB_GUEST, flags: 0, size: 4096 }, 48));
  t.is(r48.ret, 0);
  t.is(r48.out.length, 48);
  const first = h.create(f, p, a, 4 * 4096, USE_USERPTR, BLOB_HOST3D_GUEST, B.VIRTGPU_RESOURCE_CREATE_BLOB_56);
  t.is(first.ret, 0);
  const again = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_56, B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: 4096, userptr: a + 4096, blobId: 1 }, 56));
  t.is(again.ret, 3);
  t.is(again.out.length, 56, 'a 56-byte caller never sees offset');
});

test('§1 pin mode: no dedup — the same range twice gives two BOs', (t) => {
  const { h, p, f } = ready({ mode: 'pin' });
  const a = p.mmap(4096);
  const r1 = h.create(f, p, a, 4096);
  const r2 = h.create(f, p, a, 4096);
  t.is(r1.ret, 0);
  t.is(r2.ret, 0);
  t.not(r1.handle, r2.handle);
  t.is(h.dev.counts().registrations, 0, 'no notifier in pin mode');
});
void HSAKMT;

test('big creates get a preparation: its steps fault the pages in and change nothing; the create then pins them as usual', (t) => {
  const { h, p, f } = ready();
  const n = PREPARE_MIN_PAGES;
  const a = p.mmap(n * 4096); // untouched
  const arg = B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: n * 4096, userptr: a, blobId: 1 });
  const prep = f.prepare(p.pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, arg);
  t.truthy(prep);
  t.is(p.frames(a, 1)[0], NOT_PRESENT, 'getting a preparation faults nothing in');
  let steps = 1;
  while (!prep!.step()) steps++;
  t.is(steps, Math.ceil(n / PREPARE_STEP_PAGES));
  t.false(p.frames(a, n).includes(NOT_PRESENT), 'every page present after the steps');
  t.deepEqual(h.dev.counts(), { ...h.dev.counts(), pins: 0, resources: 0, handles: 0, registrations: 0 }, 'no state changed');
  const r = h.create(f, p, a, n * 4096);
  t.is(r.ret, 0);
  t.is(h.dev.pins, n);
  // None for: small creates, a file without an HSAKMT context, a range that cannot be pinned, other ioctls.
  t.is(f.prepare(p.pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: 16 * 4096, userptr: a, blobId: 2 })), null);
  const f2 = h.open(p);
  t.is(f2.prepare(p.pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, arg), null);
  const ro = p.mmap(n * 4096, PROT_R);
  t.is(f.prepare(p.pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR, size: n * 4096, userptr: ro, blobId: 3 })), null, 'read-only mapping, writable pin: the create fails at once');
  t.truthy(f.prepare(p.pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags: USE_USERPTR | USERPTR_RDONLY, size: n * 4096, userptr: ro, blobId: 4 })));
  t.is(f.prepare(p.pid, B.VIRTGPU_GETPARAM, B.getparam(1, a)), null);
});
