// Reply bytes of the serving sessions (reply.ts for FUSE/CUSE, preload.ts for preload lanes), carved out of 64 KiB
// slabs written through ONE DataView: a DataView per reply costs more than the rest of a no-op ioctl reply
// (bench/transport), and a small Uint8Array of its own would be worse still once viewed (V8 then moves its bytes off
// the heap). A slab is never reused, so each reply is fresh, zeroed and owned by the caller; a slab is freed by GC
// once its last reply is gone.
import { LITTLE_ENDIAN_HOST } from '../../core/abi/layout';

const SLAB_BYTES = 64 * 1024;
/** Replies start 8-byte aligned, like every fuse.h and wire.h struct. */
const SLAB_ALIGN = 8;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabView = new DataView(slab);
/** The slab's 8-byte words: a u64 stored as an element costs a fraction of DataView's setBigUint64 in V8. */
let slabQ = new BigUint64Array(slab);
let slabOff = 0;
/**
 * The reply alloc() returned last (the reply being built) and its offset in the slab: identity is cheaper to test
 * than reading `.buffer` or `.byteOffset`, each a builtin call in this V8 (~10 ns), not an inlined load.
 */
let lastAlloc: Uint8Array | null = null;
let lastAt = 0;

/** A zeroed reply buffer of `n` bytes inside the current slab (a new slab when it is full or `n` is larger). */
export function alloc(n: number): Uint8Array {
  if (slabOff + n > slab.byteLength) {
    slab = new ArrayBuffer((Math.max(SLAB_BYTES, n) + SLAB_ALIGN - 1) & -SLAB_ALIGN);
    slabView = new DataView(slab);
    slabQ = new BigUint64Array(slab);
    slabOff = 0;
  }
  const buf = new Uint8Array(slab, slabOff, n);
  lastAlloc = buf;
  lastAt = slabOff;
  slabOff += (n + SLAB_ALIGN - 1) & -SLAB_ALIGN;
  return buf;
}

/** A DataView over ALL of buf's ArrayBuffer (write at buf.byteOffset + off): the slab's one when buf came from alloc(). */
export function viewOf(buf: Uint8Array): DataView {
  return buf === lastAlloc || buf.buffer === slab ? slabView : new DataView(buf.buffer);
}

/**
 * Store the little-endian u64 `v` at byte `off` of `buf` (`at`: buf's byteOffset): an element store when buf is in
 * the current slab at an 8-byte aligned place, else the DataView's.
 */
export function setU64(buf: Uint8Array, at: number, off: number, v: bigint): void {
  const p = at + off;
  if ((p & 7) === 0 && LITTLE_ENDIAN_HOST && (buf === lastAlloc || buf.buffer === slab)) slabQ[p >> 3] = v;
  else viewOf(buf).setBigUint64(p, v, true);
}

/** buf.byteOffset, known without asking when buf is the reply alloc() returned last. */
export function byteOffsetOf(buf: Uint8Array): number {
  return buf === lastAlloc ? lastAt : buf.byteOffset;
}
