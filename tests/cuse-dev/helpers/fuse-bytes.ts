// Independent byte builders written by hand from linux/fuse.h (x86-64, little endian). Never imports the production
// encoder: offsets below are the header's, spelled out. Used as expected bytes and as request vectors.

export const OP = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, OPEN: 14, READ: 15, WRITE: 16, RELEASE: 18, FLUSH: 25, INIT: 26, OPENDIR: 27,
  READDIR: 28, INTERRUPT: 36, IOCTL: 39, POLL: 40, BATCH_FORGET: 42, SETXATTR: 21, CUSE_INIT: 4096,
} as const;

/** struct fuse_in_header (40 bytes): len u32 @0, opcode u32 @4, unique u64 @8, nodeid u64 @16, uid @24, gid @28, pid @32, total_extlen u16 @36, padding u16 @38. */
export function inHeader(opcode: number, unique: bigint, bodyLen: number, o: { nodeid?: bigint; pid?: number; uid?: number; gid?: number; len?: number } = {}): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(o.len ?? 40 + bodyLen, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(unique, 8);
  b.writeBigUInt64LE(o.nodeid ?? 0n, 16);
  b.writeUInt32LE(o.uid ?? 0, 24);
  b.writeUInt32LE(o.gid ?? 0, 28);
  b.writeUInt32LE(o.pid ?? 0, 32);
  return b;
}

export function request(opcode: number, unique: bigint, body: Buffer = Buffer.alloc(0), o: Parameters<typeof inHeader>[3] = {}): Buffer {
  return Buffer.concat([inHeader(opcode, unique, body.length, o), body]);
}

/** struct fuse_init_in (64 bytes in 7.36+): major @0, minor @4, max_readahead @8, flags @12, flags2 @16, unused[11]. */
export function initIn(major: number, minor: number, flags = 0, maxReadahead = 131072): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(major, 0); b.writeUInt32LE(minor, 4); b.writeUInt32LE(maxReadahead, 8); b.writeUInt32LE(flags, 12);
  return b;
}

/** struct cuse_init_in (16): major @0, minor @4, unused @8, flags @12. */
export function cuseInitIn(major: number, minor: number, flags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(major, 0); b.writeUInt32LE(minor, 4); b.writeUInt32LE(flags, 12);
  return b;
}

/** struct fuse_open_in (8): flags @0, open_flags @4. */
export function openIn(flags = 0x8002): Buffer { const b = Buffer.alloc(8); b.writeUInt32LE(flags, 0); return b; }

/** struct fuse_release_in (24): fh u64 @0, flags @8, release_flags @12, lock_owner u64 @16. */
export function releaseIn(fh: bigint): Buffer { const b = Buffer.alloc(24); b.writeBigUInt64LE(fh, 0); return b; }

/** struct fuse_ioctl_in (32): fh u64 @0, flags @8, cmd @12, arg u64 @16, in_size @24, out_size @28; in data follows. */
export function ioctlIn(fh: bigint, flags: number, cmd: number, arg: bigint, outSize: number, inData: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(fh, 0); b.writeUInt32LE(flags, 8); b.writeUInt32LE(cmd >>> 0, 12); b.writeBigUInt64LE(arg, 16);
  b.writeUInt32LE(inData.length, 24); b.writeUInt32LE(outSize, 28);
  return Buffer.concat([b, inData]);
}

/** struct fuse_interrupt_in (8): unique u64. */
export function interruptIn(unique: bigint): Buffer { const b = Buffer.alloc(8); b.writeBigUInt64LE(unique, 0); return b; }

/** struct fuse_out_header (16): len u32 @0, error i32 @4, unique u64 @8. */
export interface OutHeader { len: number; error: number; unique: bigint }
export function parseOut(b: Uint8Array): OutHeader & { body: Buffer } {
  const x = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return { len: x.readUInt32LE(0), error: x.readInt32LE(4), unique: x.readBigUInt64LE(8), body: x.subarray(16) };
}
export function outHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(len, 0); b.writeInt32LE(error, 4); b.writeBigUInt64LE(unique, 8);
  return b;
}

/** struct fuse_ioctl_out (16): result i32 @0, flags u32 @4 (RETRY 4), in_iovs @8, out_iovs @12; then iovecs {base u64, len u64}. */
export function parseIoctlOut(body: Buffer): { result: number; flags: number; inIovs: number; outIovs: number; iov: { base: bigint; len: bigint }[]; data: Buffer } {
  const r = { result: body.readInt32LE(0), flags: body.readUInt32LE(4), inIovs: body.readUInt32LE(8), outIovs: body.readUInt32LE(12) };
  const iov: { base: bigint; len: bigint }[] = [];
  if (r.flags & 4) for (let i = 0; i < r.inIovs + r.outIovs; i++) iov.push({ base: body.readBigUInt64LE(16 + i * 16), len: body.readBigUInt64LE(24 + i * 16) });
  return { ...r, iov, data: body.subarray(16) };
}

/** struct cuse_init_out (72): major @0, minor @4, unused @8, flags @12, max_read @16, max_write @20, dev_major @24, dev_minor @28, spare[10]. */
export function parseCuseInitOut(body: Buffer): { major: number; minor: number; flags: number; maxRead: number; maxWrite: number; devMajor: number; devMinor: number; info: string } {
  return {
    major: body.readUInt32LE(0), minor: body.readUInt32LE(4), flags: body.readUInt32LE(12), maxRead: body.readUInt32LE(16),
    maxWrite: body.readUInt32LE(20), devMajor: body.readUInt32LE(24), devMinor: body.readUInt32LE(28), info: body.subarray(72).toString('latin1'),
  };
}

/** struct fuse_init_out (64): major @0, minor @4, max_readahead @8, flags @12, max_background u16 @16, congestion_threshold u16 @18, max_write @20, time_gran @24, max_pages u16 @28, map_alignment u16 @30, flags2 @32, max_stack_depth @36, request_timeout u16 @40, unused[11]. */
export function parseInitOut(body: Buffer): { major: number; minor: number; maxReadahead: number; flags: number; maxBackground: number; congestion: number; maxWrite: number; timeGran: number; maxPages: number; flags2: number } {
  return {
    major: body.readUInt32LE(0), minor: body.readUInt32LE(4), maxReadahead: body.readUInt32LE(8), flags: body.readUInt32LE(12),
    maxBackground: body.readUInt16LE(16), congestion: body.readUInt16LE(18), maxWrite: body.readUInt32LE(20), timeGran: body.readUInt32LE(24),
    maxPages: body.readUInt16LE(28), flags2: body.readUInt32LE(32),
  };
}

/** _IOC(dir, type, nr, size) (asm-generic/ioctl.h), written out: dir<<30 | size<<16 | type<<8 | nr. */
export const iowr = (nr: number, size: number): number => ((3 << 30) | (size << 16) | (0x64 << 8) | nr) >>> 0;
export const iow = (nr: number, size: number): number => ((1 << 30) | (size << 16) | (0x64 << 8) | nr) >>> 0;
/** DRM_IOCTL_VERSION, DRM_IOCTL_VIRTGPU_GETPARAM, DRM_IOCTL_VIRTGPU_EXECBUFFER as libdrm computes them. */
export const DRM_IOCTL_VERSION = 0xc0406400;
export const DRM_IOCTL_VIRTGPU_GETPARAM = 0xc0106443;
export const DRM_IOCTL_VIRTGPU_EXECBUFFER = 0xc0406442;

/** struct drm_virtgpu_getparam (16): param u64 @0, value u64 @8 (user pointer to an int). */
export function getparam(param: bigint, value: bigint): Buffer { const b = Buffer.alloc(16); b.writeBigUInt64LE(param, 0); b.writeBigUInt64LE(value, 8); return b; }

/** struct drm_virtgpu_execbuffer (64): flags @0, size @4, command u64 @8, bo_handles u64 @16, num_bo_handles @24, fence_fd i32 @28, ring_idx @32, syncobj_stride @36, num_in @40, num_out @44, in_syncobjs u64 @48, out_syncobjs u64 @56. */
export function execbuffer(size: number, command: bigint, fenceFd = -1): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(0, 0); b.writeUInt32LE(size, 4); b.writeBigUInt64LE(command, 8); b.writeInt32LE(fenceFd, 28);
  return b;
}
