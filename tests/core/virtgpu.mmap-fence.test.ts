// docs/semantics.md §10–§11: VIRTGPU_MAP offsets, map requests resolved to (BO, memory) with the kernel's errnos,
// blob memory's lifetime; a fence per EXECBUFFER submission, FENCE_FD_OUT / FENCE_FD_IN through a transport's fds.
import test from 'ava';
import { Harness, BLOB_GUEST, BLOB_HOST3D, USE_MAPPABLE } from '../helpers/core-harness';
import * as B from '../helpers/bytes';
import { ENOMEM, EINVAL, isErr, PROFILES, RecordingHost, type Fence, type InFence, type IoctlFds, type DeviceFile, type Errno, type BlobMemoryAllocator } from '../../core';
import type { SimProcess } from '../../core/testing';
import { MAX_WAITING } from '../../core/virtgpu/execbuf';

const PG = 4096;
const GiB4 = 0x100000000n;

function ready(opts: ConstructorParameters<typeof Harness>[0] = {}) {
  const h = new Harness(opts);
  const p = h.proc();
  const f = h.open(p);
  return { h, p, f };
}
const mapOffset = (h: Harness, f: DeviceFile, p: SimProcess, handle: number): bigint | string => {
  const r = h.ioctl(f, p, B.VIRTGPU_MAP, B.virtgpuMap(handle));
  return r.ret === 0 ? new B.R(r.out).u64(0) : (r.ret as string);
};
const code = (x: unknown): string => (isErr(x) ? x.code : 'ok');

test('VIRTGPU_MAP: page-aligned offsets above 4 GiB, one range per object, the same at every call', (t) => {
  const { h, p, f } = ready();
  const a = h.create(f, p, 0, 3 * PG, USE_MAPPABLE, BLOB_HOST3D);
  const b = h.create(f, p, 0, PG, USE_MAPPABLE, BLOB_HOST3D);
  const oa = mapOffset(h, f, p, a.handle) as bigint, ob = mapOffset(h, f, p, b.handle) as bigint;
  t.true(oa >= GiB4 && oa % BigInt(PG) === 0n);
  t.is(ob - oa, 3n * BigInt(PG), 'ranges follow each other');
  t.is(mapOffset(h, f, p, a.handle), oa);
  t.is(mapOffset(h, f, p, 99), 'ENOENT');
});

test('map request: a MAPPABLE HOST3D blob maps its memory; the host reads what the client wrote and back; errnos as drm_gem_mmap', (t) => {
  const { h, p, f } = ready();
  const a = h.create(f, p, 0, 4 * PG, USE_MAPPABLE, BLOB_HOST3D);
  t.is(a.ret, 0);
  t.deepEqual(h.hostOf(a.resId), ['RESOURCE_CREATE_BLOB', 'CTX_ATTACH_RESOURCE', 'RESOURCE_MAP_BLOB'], 'mapped by the host at create');
  const off = mapOffset(h, f, p, a.handle) as bigint;
  const m = f.map(off, 4 * PG);
  if (isErr(m)) return t.fail(m.code);
  t.is(m.offset, 0);
  t.is(m.memory.size, 4 * PG);
  m.memory.bytes.set([1, 2, 3], 100);
  t.deepEqual([...h.host.blobBytes(a.resId)!.subarray(100, 103)], [1, 2, 3], 'one memory: the host sees the client\'s bytes');
  const inner = f.map(off + 2n * BigInt(PG), 2 * PG);
  t.true(!isErr(inner) && inner.offset === 2 * PG && inner.memory === m.memory, 'a range inside the object');
  t.is(code(f.map(off, 5 * PG)), 'EINVAL', 'the range leaves the object');
  t.is(code(f.map(off + 3n * BigInt(PG), 2 * PG)), 'EINVAL');
  t.is(code(f.map(off + 1n, PG)), 'EINVAL', 'not page aligned');
  t.is(code(f.map(off, 0)), 'EINVAL', 'length 0');
  t.is(code(f.map(GiB4 * 1000n, PG)), 'EINVAL', 'nothing there');
  t.is(code(f.map(-4096n, PG)), 'EINVAL');
  const g = h.open(p);
  t.is(code(g.map(off, PG)), 'EACCES', 'another file holds no handle to it');
  t.like(h.dev.counts(), { blobMemory: 1, blobMemoryBytes: 4 * PG });
  t.is(h.close(f, p, a.handle), 0);
  t.deepEqual(h.hostOf(a.resId).slice(-3), ['CTX_DETACH_RESOURCE', 'RESOURCE_UNMAP_BLOB', 'RESOURCE_UNREF']);
  t.is(m.memory.bytes.length, 0, 'released with the BO');
  t.is(h.host.blobBytes(a.resId), undefined);
  t.is(code(f.map(off, PG)), 'EINVAL', 'the offset died with the object');
  t.like(h.dev.counts(), { blobMemory: 0, blobMemoryBytes: 0 });
});

test('map request: HOST3D without MAPPABLE and userptrs are EINVAL; guest blobs get memory at their first map; file close releases it', (t) => {
  const { h, p, f } = ready();
  t.is(h.initHsakmt(f, p), 0);
  const plain = h.create(f, p, 0, PG, 0, BLOB_HOST3D);
  t.false(h.hostOf(plain.resId).includes('RESOURCE_MAP_BLOB'));
  t.is(code(f.map(mapOffset(h, f, p, plain.handle) as bigint, PG)), 'EINVAL');
  const at = p.mmap(2 * PG);
  const u = h.create(f, p, at, 2 * PG);
  t.is(u.ret, 0);
  t.is(code(f.map(mapOffset(h, f, p, u.handle) as bigint, PG)), 'EINVAL');
  const g = h.create(f, p, 0, 2 * PG, 0, BLOB_GUEST);
  const og = mapOffset(h, f, p, g.handle) as bigint;
  t.like(h.dev.counts(), { blobMemory: 0 }, 'no memory before the first map');
  const m = f.map(og, 2 * PG);
  t.true(!isErr(m) && m.memory.size === 2 * PG);
  t.false(h.hostOf(g.resId).includes('RESOURCE_MAP_BLOB'), 'guest pages are not a host mapping');
  t.like(h.dev.counts(), { blobMemory: 1 });
  f.close();
  t.like(h.dev.counts(), { blobMemory: 0, blobMemoryBytes: 0, handles: 0 });
  t.is(code(f.map(og, PG)), 'EBADF');
});

test('DEFER_MAPPING (mainline, v6): the host maps a MAPPABLE HOST3D blob at VIRTGPU_MAP, not at create; v1 maps at create', (t) => {
  const { h, p, f } = ready({ uapi: 'mainline' });
  const create = (hints: number) => {
    const r = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB_56, B.createBlobHints({ blobMem: BLOB_HOST3D, flags: USE_MAPPABLE, size: PG, blobId: 1, hints }));
    return { ret: r.ret, ...B.blobOut(r.out) };
  };
  const d = create(1);
  t.is(d.ret, 0);
  t.false(h.hostOf(d.resId).includes('RESOURCE_MAP_BLOB'));
  t.like(h.dev.counts(), { blobMemory: 0 });
  mapOffset(h, f, p, d.handle);
  t.true(h.hostOf(d.resId).includes('RESOURCE_MAP_BLOB'));
  const n = create(0);
  t.true(h.hostOf(n.resId).includes('RESOURCE_MAP_BLOB'));
  t.like(h.dev.counts(), { blobMemory: 2 });
});

test('create: MAPPABLE HOST3D without a host-visible region → EINVAL; memory the allocator cannot give → ENOMEM, the object freed', (t) => {
  const nohv = ready({ profile: { ...PROFILES.hsakmt!, name: 'no-hv', hostVisible: false } });
  t.is(nohv.h.create(nohv.f, nohv.p, 0, PG, USE_MAPPABLE, BLOB_HOST3D).ret, 'EINVAL');
  t.is(nohv.h.create(nohv.f, nohv.p, 0, PG, 0, BLOB_HOST3D).ret, 0, 'a blob the host does not map is fine');
  const none: BlobMemoryAllocator = { alloc: () => ENOMEM };
  const { h, p, f } = ready({ blobMemory: none });
  const r = h.create(f, p, 0, PG, USE_MAPPABLE, BLOB_HOST3D);
  t.is(r.ret, 'ENOMEM');
  t.like(h.dev.counts(), { handles: 0, resources: 0, blobMemory: 0 });
  t.deepEqual(h.host.log.filter((c) => c.cmd.startsWith('RESOURCE')).map((c) => c.cmd), ['RESOURCE_CREATE_BLOB', 'RESOURCE_UNREF']);
});

// ---- fences ----

/** A transport's fds as a test double: installs are recorded, in-fences are signalled by the test. */
class FakeFds implements IoctlFds {
  installs: { offset: number; fence: Fence }[] = [];
  readonly ins = new Map<number, { cb: (() => void) | null; released: boolean }>();
  refuse: Errno | undefined;
  inFence(fd: number): InFence | Errno {
    if (fd < 0) return EINVAL;
    const s = { cb: null as (() => void) | null, released: false };
    this.ins.set(fd, s);
    return { wait: (cb) => { s.cb = cb; }, release: () => { s.released = true; } };
  }
  install(offset: number, fence: Fence): Errno | undefined { if (this.refuse) return this.refuse; this.installs.push({ offset, fence }); return undefined; }
  signal(fd: number): void { const s = this.ins.get(fd)!; const cb = s.cb; s.cb = null; cb?.(); }
}

function exec(f: DeviceFile, p: SimProcess, fds: IoctlFds | undefined, flags: number, fenceFd = 0, payload = [7]) {
  const cmd = p.mmap(PG);
  p.write(cmd, new Uint8Array(payload));
  const r = f.ioctl(p.pid, B.VIRTGPU_EXECBUFFER, B.execbuffer({ flags, size: payload.length, command: cmd, fenceFd }), p, fds);
  return { ret: isErr(r.result) ? r.result.code : r.result, fenceFd: new B.R(r.out).i32(B.EXECBUF_FENCE_FD_AT) };
}
const submits = (h: Harness) => h.host.ofType('SUBMIT_3D');

test('EXECBUFFER: every submission is fenced; the recording host completes it at once; FENCE_FD_OUT installs the fence at fence_fd', (t) => {
  const { h, p, f } = ready();
  const fds = new FakeFds();
  t.is(exec(f, p, fds, 0).ret, 0);
  t.is(typeof submits(h)[0]!.fenceId, 'number');
  const r = exec(f, p, fds, B.FENCE_FD_OUT);
  t.is(r.ret, 0);
  t.is(fds.installs.length, 1);
  t.is(fds.installs[0]!.offset, B.EXECBUF_FENCE_FD_AT);
  t.true(fds.installs[0]!.fence.signalled);
  t.is(r.fenceFd, -1, 'core writes -1; the transport writes the installed fd number');
  t.like(h.dev.counts(), { fences: 0 });
  t.is(exec(f, p, undefined, B.FENCE_FD_OUT).ret, 'EOPNOTSUPP', 'a transport without fd passing (FUSE, CUSE)');
  fds.refuse = ENOMEM;
  const before = submits(h).length;
  t.is(exec(f, p, fds, B.FENCE_FD_OUT).ret, 'ENOMEM', 'no fd: nothing submitted');
  t.is(submits(h).length, before);
  t.like(h.dev.counts(), { fences: 0 });
});

test('EXECBUFFER with a delaying host: the fence stays pending until the host completes the submission', (t) => {
  const host = new RecordingHost({ fences: 'manual' });
  const { h, p, f } = ready({ host });
  const fds = new FakeFds();
  t.is(exec(f, p, fds, B.FENCE_FD_OUT).ret, 0);
  t.is(exec(f, p, fds, B.FENCE_FD_OUT).ret, 0);
  const [a, b] = fds.installs.map((i) => i.fence);
  t.false(a!.signalled);
  t.like(h.dev.counts(), { fences: 2 });
  t.is(host.completeFences(1), 1);
  t.true(a!.signalled);
  t.false(b!.signalled);
  f.close();
  t.false(b!.signalled, 'a submitted fence outlives its file (the host still runs it)');
  host.completeFences();
  t.true(b!.signalled);
  t.like(h.dev.counts(), { fences: 0, files: 0 });
});

test('EXECBUFFER FENCE_FD_IN: the ioctl returns, the submission (and every later one of the file) waits for the fd; a bad fd → EINVAL', (t) => {
  const { h, p, f } = ready();
  const fds = new FakeFds();
  t.is(exec(f, p, fds, B.FENCE_FD_IN, 5, [1]).ret, 0);
  t.is(exec(f, p, fds, B.FENCE_FD_OUT, 0, [2]).ret, 0);
  t.is(submits(h).length, 0, 'both wait');
  t.false(fds.installs[0]!.fence.signalled);
  fds.signal(5);
  t.deepEqual(submits(h).map((s) => s.head[0]), [1, 2], 'in order');
  t.true(fds.ins.get(5)!.released);
  t.true(fds.installs[0]!.fence.signalled);
  t.is(exec(f, p, fds, B.FENCE_FD_IN, -1).ret, 'EINVAL');
  t.is(exec(f, p, undefined, B.FENCE_FD_IN, 5).ret, 'EOPNOTSUPP');
  t.like(h.dev.counts(), { fences: 0 });
});

test('EXECBUFFER FENCE_FD_IN: file close drops waiting submissions, signals their fences and lets go of the in-fence', (t) => {
  const { h, p, f } = ready();
  const fds = new FakeFds();
  t.is(exec(f, p, fds, B.FENCE_FD_IN | B.FENCE_FD_OUT, 9).ret, 0);
  t.like(h.dev.counts(), { fences: 1 });
  f.close();
  t.true(fds.ins.get(9)!.released);
  t.true(fds.installs[0]!.fence.signalled);
  t.is(submits(h).length, 0);
  fds.signal(9);
  t.is(submits(h).length, 0, 'a late signal after close submits nothing');
  t.like(h.dev.counts(), { fences: 0, files: 0 });
});

test('EXECBUFFER: at most MAX_WAITING submissions wait per file, then ENOMEM', (t) => {
  const { h, p, f } = ready();
  const fds = new FakeFds();
  t.is(exec(f, p, fds, B.FENCE_FD_IN, 3).ret, 0);
  for (let i = 1; i < MAX_WAITING; i++) t.is(exec(f, p, fds, 0).ret, 0);
  t.is(exec(f, p, fds, 0).ret, 'ENOMEM');
  fds.signal(3);
  t.is(submits(h).length, MAX_WAITING);
  t.is(exec(f, p, fds, 0).ret, 0);
});

test('the host-visible region: a MAPPABLE HOST3D blob that does not fit → ENOSPC at create; under DEFER_MAPPING its mmap → EINVAL', (t) => {
  const small = { ...PROFILES.hsakmt!, name: 'small-hv', hostVisibleBytes: 4 * PG };
  const { h, p, f } = ready({ profile: small });
  const a = h.create(f, p, 0, 3 * PG, USE_MAPPABLE, BLOB_HOST3D);
  t.is(a.ret, 0);
  t.is(h.create(f, p, 0, 2 * PG, USE_MAPPABLE, BLOB_HOST3D).ret, 'ENOSPC');
  t.is(h.create(f, p, 0, PG, USE_MAPPABLE, BLOB_HOST3D).ret, 0, 'what fits still does');
  t.is(h.create(f, p, 0, 8 * PG, 0, BLOB_HOST3D).ret, 0, 'a blob the host does not map takes no room');
  t.is(h.close(f, p, a.handle), 0);
  t.is(h.create(f, p, 0, 3 * PG, USE_MAPPABLE, BLOB_HOST3D).ret, 0, 'room again after the close');
  const m = ready({ uapi: 'mainline', profile: small });
  const deferred = (size: number) => B.blobOut(m.h.ioctl(m.f, m.p, B.VIRTGPU_RESOURCE_CREATE_BLOB_56, B.createBlobHints({ blobMem: BLOB_HOST3D, flags: USE_MAPPABLE, size, blobId: 1, hints: 1 })).out);
  const d1 = deferred(4 * PG), d2 = deferred(PG);
  t.true(!isErr(m.f.map(mapOffset(m.h, m.f, m.p, d1.handle) as bigint, PG)));
  const o2 = mapOffset(m.h, m.f, m.p, d2.handle);
  t.is(typeof o2, 'bigint', 'VIRTGPU_MAP succeeds (the kernel ignores the failed deferred map)');
  t.is(code(m.f.map(o2 as bigint, PG)), 'EINVAL', 'mmap finds the map failed');
});

test('device shutdown signals every fence the host has not completed', (t) => {
  const host = new RecordingHost({ fences: 'manual' });
  const { h, p, f } = ready({ host });
  const fds = new FakeFds();
  t.is(exec(f, p, fds, B.FENCE_FD_OUT).ret, 0);
  t.false(fds.installs[0]!.fence.signalled);
  h.dev.shutdown();
  t.true(fds.installs[0]!.fence.signalled);
  t.like(h.dev.counts(), { fences: 0, files: 0 });
});
