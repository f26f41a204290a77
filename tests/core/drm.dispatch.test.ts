// Spec §2 dispatch (drm_ioctl): type, nr, size negotiation, render-node permission, copy-back on failure.
import test from 'ava';
import { Harness } from '../helpers/core-harness';
import * as B from '../helpers/bytes';
import { virtgpuRows, cmdOf, layout, drm, virtgpu } from '../../core';

function ready() {
  const h = new Harness();
  const p = h.proc();
  const f = h.open(p);
  return { h, p, f };
}

test('§2 type ≠ "d" → ENOTTY', (t) => {
  const { h, p, f } = ready();
  t.is(h.ioctl(f, p, B.IOC(3, 0x43, 16, 0x65), new Uint8Array(16)).ret, 'ENOTTY');
});

test('§2 unknown nr → EINVAL (driver range and core range)', (t) => {
  const { h, p, f } = ready();
  for (const nr of [0x4c, 0x50, 0x9f, 0x0e, 0xff]) t.is(h.ioctl(f, p, B.IOWR(nr, 16), new Uint8Array(16)).ret, 'EINVAL', `nr 0x${nr.toString(16)}`);
});

test('§2 render node: core ioctls without RENDER_ALLOW → EACCES (GET_UNIQUE, SET_MASTER, MODE_GETRESOURCES, GEM_FLINK)', (t) => {
  const { h, p, f } = ready();
  for (const nr of [0x01, 0x1e, 0xa0, 0x0a]) t.is(h.ioctl(f, p, B.IOWR(nr, 16), new Uint8Array(16)).ret, 'EACCES', `nr 0x${nr.toString(16)}`);
});

test('§2 dispatch is by nr, not by the whole number: shorter and longer structs are accepted', (t) => {
  const { h, p, f } = ready();
  const at = p.mmap(4096);
  // GETPARAM with a 24-byte struct (newer caller) and the real one
  const long = new Uint8Array(24); long.set(B.getparam(7, at));
  t.is(h.ioctl(f, p, B.IOWR(0x43, 24), long).ret, 0);
  t.is(new DataView((p.read(at, 4) as Uint8Array).buffer).getInt32(0, true), (1 << 2) | (1 << 8), 'SUPPORTED_CAPSET_IDs');
  // GET_CAP with an 8-byte caller: `capability` only; the rest is zero-filled, out copies back 8 bytes
  const r = h.ioctl(f, p, B.IOWR(0x0c, 8), new B.W(8).u64(0, 0x6).b);
  t.is(r.ret, 0);
  t.is(r.out.length, 8);
});

test('§2 sizes: in = caller size only if both cmds have IOC_IN; out likewise; _IOW callers get nothing back', (t) => {
  const { h, p, f } = ready();
  // GET_CAP as _IOW: in copied, nothing copied back
  const r = h.ioctl(f, p, B.IOW(0x0c, 16), new B.W(16).u64(0, 0x6).b);
  t.is(r.ret, 0);
  t.is(r.out.length, 0);
  // GET_CAP as _IOR: nothing copied in (capability reads as 0 → EINVAL), 16 bytes copied back
  const r2 = h.ioctl(f, p, B.IOC(2, 0x0c, 16), new B.W(16).u64(0, 0x6).b);
  t.is(r2.ret, 'EINVAL');
  t.is(r2.out.length, 16);
  // _IO with no direction: neither
  t.is(h.ioctl(f, p, B.IOC(0, 0x0c, 16), new Uint8Array(16)).out.length, 0);
});

test('§2 out bytes are copied back even when the handler failed (drm_ioctl)', (t) => {
  const { h, p, f } = ready();
  const arg = B.resourceInfo(77);
  const r = h.ioctl(f, p, B.VIRTGPU_RESOURCE_INFO, arg);
  t.is(r.ret, 'ENOENT');
  t.is(r.out.length, 16);
  t.is(new B.R(r.out).u32(0), 77, 'struct copied back unchanged');
});

test('§2 every table row: the _IOC number derived from the layout equals the header value', (t) => {
  const expect: Record<string, number> = {
    DRM_IOCTL_VERSION: B.DRM_IOCTL_VERSION, DRM_IOCTL_GEM_CLOSE: B.DRM_IOCTL_GEM_CLOSE, DRM_IOCTL_GET_CAP: B.DRM_IOCTL_GET_CAP,
    DRM_IOCTL_VIRTGPU_MAP: B.VIRTGPU_MAP, DRM_IOCTL_VIRTGPU_EXECBUFFER: B.VIRTGPU_EXECBUFFER, DRM_IOCTL_VIRTGPU_GETPARAM: B.VIRTGPU_GETPARAM,
    DRM_IOCTL_VIRTGPU_RESOURCE_CREATE: B.VIRTGPU_RESOURCE_CREATE, DRM_IOCTL_VIRTGPU_RESOURCE_INFO: B.VIRTGPU_RESOURCE_INFO,
    DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST: B.VIRTGPU_TRANSFER_FROM_HOST, DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST: B.VIRTGPU_TRANSFER_TO_HOST,
    DRM_IOCTL_VIRTGPU_WAIT: B.VIRTGPU_WAIT, DRM_IOCTL_VIRTGPU_GET_CAPS: B.VIRTGPU_GET_CAPS,
    DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: B.VIRTGPU_RESOURCE_CREATE_BLOB, DRM_IOCTL_VIRTGPU_CONTEXT_INIT: B.VIRTGPU_CONTEXT_INIT,
  };
  t.is(virtgpuRows.length, Object.keys(expect).length);
  for (const row of virtgpuRows) t.is(cmdOf(row), expect[row.name], row.name);
});

test('layout: struct sizes and offsets follow the C ABI (docs/semantics.md §2 sizes)', (t) => {
  t.is(drm.drm_version.size, 64);
  t.is(drm.drm_version.offsetOf('name_len'), 16);
  t.is(drm.drm_gem_close.size, 8);
  t.is(virtgpu.drm_virtgpu_execbuffer.size, 64);
  t.is(virtgpu.drm_virtgpu_resource_create.size, 56);
  t.is(virtgpu.drm_virtgpu_3d_transfer.size, 44);
  t.is(virtgpu.drm_virtgpu_get_caps.size, 24);
  t.is(virtgpu.drm_virtgpu_resource_create_blob.size, 64);
  for (const [f, o] of [['blob_mem', 0], ['blob_flags', 4], ['bo_handle', 8], ['res_handle', 12], ['size', 16], ['cmd_size', 28], ['cmd', 32], ['blob_id', 40], ['userptr', 48], ['offset', 56]] as const)
    t.is(virtgpu.drm_virtgpu_resource_create_blob.offsetOf(f), o, f);
  t.is(virtgpu.drm_virtgpu_context_init.size, 16);
});

test('layout: decode/encode round trip is exact, pads are kept as the caller wrote them, short input reads as zero', (t) => {
  const L = layout.struct('t', { a: layout.u32, p: layout.pad(4, 4), b: layout.u64, c: layout.i32 });
  t.is(L.size, 24);
  const bytes = Uint8Array.from({ length: 24 }, (_, i) => i * 7 + 1);
  const v = L.decode(bytes);
  const out = L.encode(v, bytes.slice());
  t.deepEqual(out, bytes);
  t.false(L.padIsZero(bytes));
  t.deepEqual(L.decode(bytes.subarray(0, 4)), { a: v.a, b: 0n, c: 0 });
  t.deepEqual(L.dump(v), { a: v.a, b: '0x' + v.b.toString(16), c: v.c });
});
