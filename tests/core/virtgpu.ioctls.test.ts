// Spec §2: one test per ioctl of the render node, against the default (hsakmt) and other profiles.
import test from 'ava';
import { createHash } from 'crypto';
import { Harness, BLOB_GUEST, BLOB_HOST3D } from '../helpers/core-harness';
import * as B from '../helpers/bytes';
import { isErr } from '../../core';
import { PROT_R } from '../../core/testing';

function ready(profile?: string) {
  const h = new Harness(profile ? { profile } : {});
  const p = h.proc();
  const f = h.open(p);
  return { h, p, f };
}
const str = (b: Uint8Array | unknown) => Buffer.from(b as Uint8Array).toString('latin1');

test('DRM_IOCTL_VERSION: 0.1.0 virtio_gpu; fills up to len and always writes back the true lengths', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  const arg = new B.W(64).u64(16, 4).u64(24, at).u64(32, 100).u64(40, at + 100).u64(48, 0).u64(56, 0).b;
  const r = h.ioctl(f, p, B.DRM_IOCTL_VERSION, arg);
  t.is(r.ret, 0);
  const o = new B.R(r.out);
  t.deepEqual([o.i32(0), o.i32(4), o.i32(8)], [0, 1, 0]);
  t.deepEqual([o.u64(16), o.u64(32), o.u64(48)], [10n, 1n, 10n]);
  t.is(str(p.read(at, 5)), 'virt\0', 'name truncated to name_len, no NUL written');
  t.is(str(p.read(at + 100, 1)), '0');
  const bad = new B.W(64).u64(16, 10).u64(24, 0x10).b;
  t.is(h.ioctl(f, p, B.DRM_IOCTL_VERSION, bad).ret, 'EFAULT');
});

test('DRM_IOCTL_GET_CAP: PRIME 3, TIMESTAMP_MONOTONIC 1, SYNCOBJ 1, SYNCOBJ_TIMELINE 1, others EINVAL', (t) => {
  const { h, p, f } = ready();
  const cap = (c: number) => { const r = h.ioctl(f, p, B.DRM_IOCTL_GET_CAP, new B.W(16).u64(0, c).b); return r.ret === 0 ? Number(new B.R(r.out).u64(8)) : r.ret; };
  t.deepEqual([cap(5), cap(6), cap(0x13), cap(0x14), cap(1), cap(0x10)], [3, 1, 1, 1, 'EINVAL', 'EINVAL']);
});

test('VIRTGPU_GETPARAM: every param of the default profile, writes exactly 4 bytes, unknown → EINVAL, bad pointer → EFAULT', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  const get = (param: number) => {
    p.write(at, new Uint8Array(8).fill(0xee));
    const r = h.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(param, at));
    const b = p.read(at, 8) as Uint8Array;
    return r.ret === 0 ? [new DataView(b.buffer).getInt32(0, true), b[4]] : r.ret;
  };
  t.deepEqual(get(1), [1, 0xee], '3D_FEATURES, and byte 4 untouched');
  t.deepEqual(get(2), [1, 0xee]);
  t.deepEqual(get(3), [1, 0xee]);
  t.deepEqual(get(4), [1, 0xee]);
  t.deepEqual(get(5), [0, 0xee], 'no cross device by default');
  t.deepEqual(get(6), [1, 0xee]);
  t.deepEqual(get(7), [(1 << 2) | (1 << 8), 0xee], 'VIRGL2 and HSAKMT');
  t.deepEqual(get(8), [1, 0xee]);
  t.is(get(9), 'EINVAL', 'v1 (the default uapi) has no parameter 9');
  t.is(get(10), 'EINVAL');
  t.is(get(0), 'EINVAL');
  t.is(h.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(1, 0x1000)).ret, 'EFAULT');
  const ro = p.mmap(4096, PROT_R);
  t.is(h.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(1, ro)).ret, 'EFAULT');
});

test('VIRTGPU_GET_CAPS: HSAKMT blob (context_type 1); min(size, blob); size 0 / unknown id / version above max → EINVAL; no capsets → ENOSYS', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  const caps = (id: number, ver: number, size: number, addr = at) => h.ioctl(f, p, B.VIRTGPU_GET_CAPS, new B.W(24).u32(0, id).u32(4, ver).u64(8, addr).u32(16, size).b).ret;
  t.is(caps(8, 1, 100), 0);
  const blob = new B.R(p.read(at, 24) as Uint8Array);
  t.deepEqual([blob.u32(0), blob.u32(4), blob.u32(16)], [1, 1, 1]);
  p.write(at, new Uint8Array(24));
  t.is(caps(8, 0, 8), 0);
  t.is(new B.R(p.read(at, 24) as Uint8Array).u32(16), 0, 'only min(size, blob) bytes copied');
  t.is(caps(8, 1, 0), 'EINVAL');
  t.is(caps(7, 1, 24), 'EINVAL');
  t.is(caps(8, 2, 24), 'EINVAL');
  t.is(caps(2, 2, 64), 0, 'VIRGL2');
  t.is(caps(8, 1, 24, 0x1000), 'EFAULT');
  const d2 = ready('2d');
  t.is(d2.h.ioctl(d2.f, d2.p, B.VIRTGPU_GET_CAPS, new B.W(24).u32(0, 8).u32(4, 1).u64(8, d2.p.mmap(4096)).u32(16, 24).b).ret, 'ENOSYS');
});

test('VIRTGPU_CONTEXT_INIT: CAPSET_ID, NUM_RINGS, POLL_RINGS_MASK, DEBUG_NAME; CTX_CREATE sent; second init → EEXIST', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  const name = at + 1024;
  p.write(name, new TextEncoder().encode('hsa-umd\0'));
  p.write(at, B.ctxParams([[1, 8], [2, 4], [3, 0b101], [4, name]]));
  t.is(h.ioctl(f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(4, at)).ret, 0);
  const c = h.host.ofType('CTX_CREATE');
  t.is(c.length, 1);
  t.deepEqual([c[0].contextInit, c[0].debugName], [8, 'hsa-umd']);
  t.deepEqual(h.dev.snapshot().files[0].ctx, { id: c[0].ctxId, capsetId: 8, numRings: 4, debugName: 'hsa-umd' });
  t.is(h.ioctl(f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, at)).ret, 'EEXIST');
});

test('VIRTGPU_CONTEXT_INIT errors: too many params, unknown param, unsupported capset, duplicate param, rings mask beyond num_rings, bad pointer', (t) => {
  const run = (params: [number, number | bigint][], n = params.length, ptr?: number) => {
    const { h, p, f } = ready();
    const at = p.mmap(4096);
    if (params.length) p.write(at, B.ctxParams(params));
    return h.ioctl(f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(n, ptr ?? at)).ret;
  };
  t.is(run([[1, 8], [2, 1], [3, 1], [4, 0], [1, 8]]), 'EINVAL', 'more than 4 params');
  t.is(run([[9, 1]]), 'EINVAL');
  t.is(run([[1, 6]]), 'EINVAL', 'DRM capset not in the profile');
  t.is(run([[1, 8], [1, 2]]), 'EINVAL');
  t.is(run([[2, 65]]), 'EINVAL', 'more than 64 rings');
  t.is(run([[2, 2], [3, 0b100]]), 'EINVAL');
  t.is(run([[1, 8]], 1, 0x10), 'EFAULT');
  t.is(run([], 0), 0, 'no params: a default context');
});

test('VIRTGPU_CONTEXT_INIT on a device without context init → EINVAL', (t) => {
  const { h, p, f } = ready('virgl');
  t.is(h.initHsakmt(f, p), 'EINVAL');
});

test('implicit default context: the first RESOURCE_CREATE / EXECBUFFER creates it; CONTEXT_INIT then → EEXIST', (t) => {
  const { h, p, f } = ready();
  const r = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE, new B.W(56).u32(0, 2).u32(4, 1).u32(12, 64).u32(16, 64).u32(20, 1).u32(24, 1).u32(48, 16384).b);
  t.is(r.ret, 0);
  const o = new B.R(r.out);
  t.deepEqual([o.u32(40), o.u32(44) >= 2], [1, true]);
  t.is(h.host.ofType('CTX_CREATE').length, 1);
  t.is(h.host.ofType('RESOURCE_CREATE_3D').length, 1);
  t.is(h.initHsakmt(f, p), 'EEXIST');
});

test('VIRTGPU_EXECBUFFER: SUBMIT_3D with the command bytes and the BOs; bad flags / ring / handle / pointers; fence fds → EOPNOTSUPP', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  const ctxAt = p.mmap(4096);
  p.write(ctxAt, B.ctxParams([[1, 8], [2, 2]]));
  t.is(h.ioctl(f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(2, ctxAt)).ret, 0);
  const bo = h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_HOST3D, flags: 1, size: 4096, blobId: 5 }));
  const handle = B.blobOut(bo.out).handle;
  p.write(at, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  p.write(at + 64, new B.W(4).u32(0, handle).b);
  const eb = (flags: number, size: number, cmd: number, handles: number, n: number, ring = 0) =>
    h.ioctl(f, p, B.VIRTGPU_EXECBUFFER, new B.W(64).u32(0, flags).u32(4, size).u64(8, cmd).u64(16, handles).u32(24, n).i32(28, 0).u32(32, ring).b);
  const ok = eb(4, 8, at, at + 64, 1, 1);
  t.is(ok.ret, 0);
  t.is(new B.R(ok.out).i32(28), -1, 'fence_fd out = -1');
  const s = h.host.ofType('SUBMIT_3D').pop()!;
  t.deepEqual([...s.head], [1, 2, 3, 4, 5, 6, 7, 8]);
  t.is(s.size, 8);
  t.is(s.sha256, createHash('sha256').update(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)).digest('hex'));
  t.deepEqual(s.resIds, [B.blobOut(bo.out).resId]);
  t.is(s.ringIdx, 1);
  t.is(eb(0x8, 8, at, 0, 0).ret, 'EINVAL', 'unknown flag');
  t.is(eb(4, 8, at, 0, 0, 2).ret, 'EINVAL', 'ring >= num_rings');
  p.write(at + 64, new B.W(4).u32(0, 99).b);
  t.is(eb(0, 8, at, at + 64, 1).ret, 'ENOENT');
  t.is(eb(0, 8, 0x10, 0, 0).ret, 'EFAULT');
  t.is(eb(2, 8, at, 0, 0).ret, 'EOPNOTSUPP', 'FENCE_FD_OUT needs fd passing');
});

test('VIRTGPU_RESOURCE_INFO / WAIT / MAP / TRANSFER on guest and host blobs; unknown handles → ENOENT', (t) => {
  const { h, p, f } = ready();
  const g = B.blobOut(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_GUEST, flags: 1, size: 5000 })).out);
  const hb = B.blobOut(h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_HOST3D, flags: 1, size: 8192, blobId: 3 })).out);
  const gi = h.info(f, p, g.handle);
  t.deepEqual([gi.ret, gi.size, gi.resId], [0, 8192, g.resId], 'guest blobs are page aligned');
  t.is(h.info(f, p, hb.handle).blobMem, BLOB_HOST3D);
  t.is(h.ioctl(f, p, B.VIRTGPU_WAIT, new B.W(8).u32(0, g.handle).b).ret, 0);
  t.is(h.ioctl(f, p, B.VIRTGPU_WAIT, new B.W(8).u32(0, 99).b).ret, 'ENOENT');
  const m = h.ioctl(f, p, B.VIRTGPU_MAP, new B.W(16).u32(8, hb.handle).b);
  t.is(m.ret, 0);
  t.true(new B.R(m.out).u64(0) >= 0x100000000n);
  t.is(h.ioctl(f, p, B.VIRTGPU_MAP, new B.W(16).u32(8, 99).b).ret, 'ENOENT');
  const tr = (handle: number, stride = 0) => h.ioctl(f, p, B.VIRTGPU_TRANSFER_TO_HOST, new B.W(44).u32(0, handle).u32(12, 16).u32(16, 1).u32(20, 1).u32(36, stride).b).ret;
  t.is(tr(hb.handle, 64), 0);
  t.is(tr(g.handle), 'EINVAL', 'guest-only blob');
  t.is(tr(99), 'ENOENT');
  t.is(h.ioctl(f, p, B.VIRTGPU_TRANSFER_FROM_HOST, new B.W(44).u32(0, hb.handle).b).ret, 0);
  t.deepEqual(h.host.log.filter((c) => c.cmd === 'TRANSFER_TO_HOST_3D').map((c) => (c as { resId: number }).resId), [hb.resId]);
});

test('GEM_CLOSE: unknown handle → EINVAL; closing the file releases every handle then CTX_DESTROY; a closed file answers EBADF', (t) => {
  const { h, p, f } = ready();
  t.is(h.close(f, p, 1), 'EINVAL');
  h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_GUEST, flags: 0, size: 4096 }));
  h.ioctl(f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob({ blobMem: BLOB_GUEST, flags: 0, size: 4096 }));
  f.close();
  t.deepEqual(h.host.log.slice(-5).map((c) => c.cmd), ['CTX_DETACH_RESOURCE', 'RESOURCE_UNREF', 'CTX_DETACH_RESOURCE', 'RESOURCE_UNREF', 'CTX_DESTROY']);
  t.is(h.dev.counts().resources, 0);
  const r = f.ioctl(p.pid, B.VIRTGPU_GETPARAM, B.getparam(1, 0));
  t.true(isErr(r.result) && r.result.code === 'EBADF');
});

test('each row documents its errnos (as fuse_lowlevel.h lists "Valid replies" per operation)', (t) => {
  const { h } = ready();
  for (const row of h.dev.rows()) t.true(row.errnos.length > 0, row.name);
});

test('TRANSFER_TO_HOST on an unknown handle still creates the default context first (ENOENT, then CONTEXT_INIT → EEXIST)', (t) => {
  const { h, p, f } = ready();
  t.is(h.ioctl(f, p, B.VIRTGPU_TRANSFER_TO_HOST, new B.W(44).u32(0, 77).b).ret, 'ENOENT');
  t.is(h.host.ofType('CTX_CREATE').length, 1);
  t.is(h.initHsakmt(f, p), 'EEXIST');
});
