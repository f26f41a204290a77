// Independent byte builders for the uAPI, written from the C headers / docs/semantics.md §2 offsets (never the production tables).
export const IOC_WRITE = 1, IOC_READ = 2;
export function IOC(dir: number, nr: number, size: number, type = 0x64): number { return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0; }
export const IOWR = (nr: number, size: number): number => IOC(IOC_READ | IOC_WRITE, nr, size);
export const IOW = (nr: number, size: number): number => IOC(IOC_WRITE, nr, size);

// ioctl numbers as libdrm's headers define them
export const DRM_IOCTL_VERSION = IOWR(0x00, 64);
export const DRM_IOCTL_GEM_CLOSE = IOW(0x09, 8);
export const DRM_IOCTL_GET_CAP = IOWR(0x0c, 16);
export const VIRTGPU_MAP = IOWR(0x41, 16);
export const VIRTGPU_EXECBUFFER = IOWR(0x42, 64);
export const VIRTGPU_GETPARAM = IOWR(0x43, 16);
export const VIRTGPU_RESOURCE_CREATE = IOWR(0x44, 56);
export const VIRTGPU_RESOURCE_INFO = IOWR(0x45, 16);
export const VIRTGPU_TRANSFER_FROM_HOST = IOWR(0x46, 44);
export const VIRTGPU_TRANSFER_TO_HOST = IOWR(0x47, 44);
export const VIRTGPU_WAIT = IOWR(0x48, 8);
export const VIRTGPU_GET_CAPS = IOWR(0x49, 24);
export const VIRTGPU_RESOURCE_CREATE_BLOB = IOWR(0x4a, 64);
export const VIRTGPU_RESOURCE_CREATE_BLOB_48 = IOWR(0x4a, 48);
export const VIRTGPU_RESOURCE_CREATE_BLOB_56 = IOWR(0x4a, 56);
export const VIRTGPU_CONTEXT_INIT = IOWR(0x4b, 16);

export class W {
  readonly b: Uint8Array; private readonly dv: DataView;
  constructor(n: number) { this.b = new Uint8Array(n); this.dv = new DataView(this.b.buffer); }
  u32(o: number, v: number): this { this.dv.setUint32(o, v >>> 0, true); return this; }
  i32(o: number, v: number): this { this.dv.setInt32(o, v, true); return this; }
  u64(o: number, v: number | bigint): this { this.dv.setBigUint64(o, BigInt(v), true); return this; }
}
export class R {
  private readonly dv: DataView;
  constructor(b: Uint8Array) { this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength); }
  u32(o: number): number { return this.dv.getUint32(o, true); }
  i32(o: number): number { return this.dv.getInt32(o, true); }
  u64(o: number): bigint { return this.dv.getBigUint64(o, true); }
}

export interface BlobArgs { blobMem: number; flags: number; size: number; userptr?: number | bigint; blobId?: number | bigint; cmdSize?: number; cmd?: number; offset?: number | bigint }
/** drm_virtgpu_resource_create_blob, v1 layout (64 bytes): offsets 0,4,8,12,16,24,28,32,40,48,56. */
export function createBlob(a: BlobArgs, size = 64): Uint8Array {
  const w = new W(64).u32(0, a.blobMem).u32(4, a.flags).u64(16, a.size).u32(28, a.cmdSize ?? 0).u64(32, a.cmd ?? 0).u64(40, a.blobId ?? 0).u64(48, a.userptr ?? 0).u64(56, a.offset ?? 0);
  return w.b.subarray(0, size);
}
export function blobOut(b: Uint8Array): { handle: number; resId: number; offset: bigint } {
  const r = new R(b);
  return { handle: r.u32(8), resId: r.u32(12), offset: b.length >= 64 ? r.u64(56) : -1n };
}
export const gemClose = (h: number): Uint8Array => new W(8).u32(0, h).b;
export const resourceInfo = (h: number): Uint8Array => new W(16).u32(0, h).b;
export const getparam = (param: number, ptr: number): Uint8Array => new W(16).u64(0, param).u64(8, ptr).b;
/** drm_virtgpu_context_init {u32 num_params, pad; u64 ctx_set_params}. */
export const contextInit = (n: number, ptr: number): Uint8Array => new W(16).u32(0, n).u64(8, ptr).b;
export function ctxParams(params: [number, number | bigint][]): Uint8Array {
  const w = new W(16 * params.length);
  params.forEach(([p, v], i) => w.u64(i * 16, p).u64(i * 16 + 8, v));
  return w.b;
}

// create_blob past byte 48, per kernel revision (written from each revision's header, docs/uapi-revisions.md):
//   7.2:  u32 blob_hints @48, u32 pad2 @52                       (56 bytes)
//   v3-5: u64 userptr @48                                        (56 bytes)
//   v6:   u32 blob_hints @48, u32 pad2 @52, u64 userptr @56      (64 bytes)
//   72:   u64 userptr @48, u64 svm @56, s64 offset @64           (72 bytes)
export const VIRTGPU_RESOURCE_CREATE_BLOB_72 = IOWR(0x4a, 72);
export interface TailArgs { hints?: number; pad2?: number; userptr?: number | bigint; svm?: number | bigint; offset?: number | bigint }
function blobHead(a: BlobArgs, n: number): W {
  return new W(n).u32(0, a.blobMem).u32(4, a.flags).u64(16, a.size).u32(28, a.cmdSize ?? 0).u64(32, a.cmd ?? 0).u64(40, a.blobId ?? 0);
}
/** Mainline 7.2's 56-byte struct. */
export const createBlobHints = (a: BlobArgs & TailArgs): Uint8Array => blobHead(a, 56).u32(48, a.hints ?? 0).u32(52, a.pad2 ?? 0).b;
/** v6's 64-byte struct. */
export const createBlobV6 = (a: BlobArgs & TailArgs): Uint8Array => blobHead(a, 64).u32(48, a.hints ?? 0).u32(52, a.pad2 ?? 0).u64(56, a.userptr ?? 0).b;
/** The newest libhsakmt's 72-byte struct. */
export const createBlob72 = (a: BlobArgs & TailArgs): Uint8Array => blobHead(a, 72).u64(48, a.userptr ?? 0).u64(56, a.svm ?? 0).u64(64, a.offset ?? 0).b;
/** drm_virtgpu_map: offset @0 (out), handle @8. */
export const virtgpuMap = (h: number): Uint8Array => new W(16).u32(8, h).b;
/** drm_virtgpu_execbuffer (64 bytes): flags @0, size @4, command @8, bo_handles @16, num_bo_handles @24, fence_fd @28, ring_idx @32. */
export const execbuffer = (a: { flags: number; size?: number; command?: number; fenceFd?: number; ring?: number }): Uint8Array =>
  new W(64).u32(0, a.flags).u32(4, a.size ?? 0).u64(8, a.command ?? 0).i32(28, a.fenceFd ?? 0).u32(32, a.ring ?? 0).b;
export const FENCE_FD_IN = 1, FENCE_FD_OUT = 2, RING_IDX = 4;
/** Where drm_virtgpu_execbuffer's fence_fd sits. */
export const EXECBUF_FENCE_FD_AT = 28;
