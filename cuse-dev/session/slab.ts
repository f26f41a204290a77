// Reply bytes of the serving sessions (reply.ts for FUSE/CUSE, preload.ts for preload lanes), carved out of 64 KiB
// slabs written through ONE DataView: a DataView per reply costs more than the rest of a no-op ioctl reply
// (bench/transport), and a small Uint8Array of its own would be worse still once viewed (V8 then moves its bytes off
// the heap). A slab is never reused, so each reply is fresh, zeroed and owned by the caller; a slab is freed by GC
// once its last reply is gone.
const SLAB_BYTES = 64 * 1024;
/** Replies start 8-byte aligned, like every fuse.h and wire.h struct. */
const SLAB_ALIGN = 8;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabView = new DataView(slab);
let slabOff = 0;
/** The reply alloc() returned last: the reply being built (identity is cheaper to test than `.buffer`). */
let lastAlloc: Uint8Array | null = null;

/** A zeroed reply buffer of `n` bytes inside the current slab (a new slab when it is full or `n` is larger). */
export function alloc(n: number): Uint8Array {
  if (slabOff + n > slab.byteLength) {
    slab = new ArrayBuffer(Math.max(SLAB_BYTES, n));
    slabView = new DataView(slab);
    slabOff = 0;
  }
  const buf = new Uint8Array(slab, slabOff, n);
  slabOff += (n + SLAB_ALIGN - 1) & -SLAB_ALIGN;
  lastAlloc = buf;
  return buf;
}

/** A DataView over ALL of buf's ArrayBuffer (write at buf.byteOffset + off): the slab's one when buf came from alloc(). */
export function viewOf(buf: Uint8Array): DataView {
  return buf === lastAlloc || buf.buffer === slab ? slabView : new DataView(buf.buffer);
}
