// Random (cmd, bytes) generation for the dispatcher fuzz test: a seeded PRNG (the seed is printed on failure),
// commands biased towards the real nr ranges and table sizes ±8, arguments built field by field from the layout
// tables with values that matter (0, small, existing handles, valid and invalid user pointers, all-ones).
import { cmdOf, type IoctlRow } from '../../core';

/** mulberry32: small, fast, seedable. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  range(lo: number, hi: number): number { return lo + this.int(hi - lo + 1); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]; }
  u32(): number { return (this.next() * 4294967296) >>> 0; }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
}

export interface PointerPool { valid: number[]; invalid: bigint[]; /** CONTEXT_INIT param arrays already written to user memory */ params?: number[] }

/** Plausible values by field name (used for half of the structured arguments, to get past the first checks). */
function hinted(rng: Rng, name: string, pool: PointerPool, handles: number[]): bigint | number | undefined {
  switch (name) {
    case 'blob_mem': return rng.range(0, 4);
    case 'blob_flags': return rng.chance(0.7) ? rng.pick([0, 1, 3, 8, 9, 0x18, 0x19, 0x20, 0x21]) : rng.int(0x40);
    case 'size': return rng.pick([0, 1, 100, 4096, 4096 * 3 + 5, 8192, 16 * 4096]);
    case 'cmd_size': return rng.pick([0, 0, 4, 3, 8]);
    case 'blob_id': return rng.pick([0n, 0n, 1n, 0x1234n]);
    case 'userptr': case 'svm': return BigInt(rng.pick(pool.valid) + rng.pick([0, 0, 8, 4096]));
    case 'blob_hints': return rng.pick([0, 0, 1, 2, 3, 4, 6, 7, 8]);
    case 'pad2': return rng.chance(0.9) ? 0 : 1;
    case 'param': return BigInt(rng.range(0, 10));
    case 'capability': return BigInt(rng.pick([0, 5, 6, 0x13, 0x14, 0x100]));
    case 'cap_set_id': return rng.pick([0, 1, 2, 7, 8]);
    case 'cap_set_ver': return rng.range(0, 3);
    case 'num_params': return rng.range(0, 5);
    case 'ctx_set_params': return pool.params?.length ? BigInt(rng.pick(pool.params)) : undefined;
    case 'num_bo_handles': return rng.range(0, 3);
    case 'flags': return rng.pick([0, 0, 1, 2, 4, 8]);
    case 'handle': case 'bo_handle': return handles.length ? rng.pick(handles) : 1;
    case 'name_len': case 'date_len': case 'desc_len': return BigInt(rng.pick([0, 1, 4, 10, 64]));
    case 'num_in_syncobjs': case 'num_out_syncobjs': case 'fence_fd': case 'ring_idx': return rng.chance(0.8) ? 0 : 1;
    default: return undefined;
  }
}

const DRM_TYPE = 0x64;

/** A random ioctl number: type mostly 'd', nr biased to 0x00–0x0d / 0x40–0x4b, any direction, size near the row's. */
export function randomCmd(rng: Rng, rows: readonly IoctlRow[]): { cmd: number; row: IoctlRow | undefined } {
  const type = rng.chance(0.93) ? DRM_TYPE : rng.int(256);
  let nr: number;
  const r = rng.next();
  if (r < 0.5) nr = rng.range(0x40, 0x4b);
  else if (r < 0.8) nr = rng.range(0x00, 0x0d);
  else if (r < 0.9) nr = rng.pick([0x0e, 0x2d, 0x3f, 0x4c, 0x9f, 0xa0, 0xbf, 0xff]);
  else nr = rng.int(256);
  const row = rows.find((x) => x.nr === nr);
  const dir = rng.chance(0.6) && row ? row.dir : rng.int(4);
  let size: number;
  const s = rng.next();
  const base = row ? row.layout.size : rng.pick([8, 16, 24, 44, 48, 56, 64]);
  if (s < 0.35) size = base;
  else if (s < 0.75) size = Math.max(0, base + rng.range(-8, 8));
  else if (s < 0.85) size = rng.pick([0, 48, 56, 64, 72]);
  else if (s < 0.95) size = rng.int(256);
  else size = rng.int(0x4000);
  const cmd = ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
  return { cmd, row: type === DRM_TYPE ? row : undefined };
}

/** Interesting field values. */
function u32Value(rng: Rng, handles: number[]): number {
  const r = rng.next();
  if (r < 0.2) return 0;
  if (r < 0.45) return rng.range(1, 10);
  if (r < 0.6 && handles.length) return rng.pick(handles);
  if (r < 0.7) return rng.pick([0x10, 0x1f, 0x20, 0x3f, 0x40, 0xff, 4096, 0xffff, 0x7fffffff, 0x80000000]);
  if (r < 0.8) return 0xffffffff;
  return rng.u32();
}
function u64Value(rng: Rng, pool: PointerPool): bigint {
  const r = rng.next();
  if (r < 0.15) return 0n;
  if (r < 0.3) return BigInt(rng.range(1, 16));
  if (r < 0.65) return BigInt(rng.pick(pool.valid) + rng.pick([0, 0, 8, 100, 4090, 4096 * 3 - 2]));
  if (r < 0.85) return rng.pick(pool.invalid);
  if (r < 0.9) return BigInt(rng.pick([4096, 0x10000, 1 << 20]));
  return rng.u64();
}

/** Arguments: usually the row's struct with random fields, sometimes raw random bytes; length usually IOC_SIZE. */
export function randomArg(rng: Rng, cmd: number, row: IoctlRow | undefined, pool: PointerPool, handles: number[]): Uint8Array {
  const size = (cmd >>> 16) & 0x3fff;
  const len = rng.chance(0.85) ? size : rng.int(128);
  const b = new Uint8Array(len);
  if (!row || rng.chance(0.15)) {
    for (let i = 0; i < len; i++) b[i] = rng.int(256);
    return b;
  }
  const dv = new DataView(b.buffer);
  const put = (off: number, sz: number, v: bigint | number): void => {
    if (off + sz > len) return;
    if (sz === 8) dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
    else if (sz === 4) dv.setUint32(off, Number(v) >>> 0, true);
    else for (let i = 0; i < sz; i++) b[off + i] = rng.int(256);
  };
  const useHints = rng.chance(0.5);
  const walk = (fields: readonly { name: string; type: { kind: string; size: number; fields?: unknown }; offset: number }[], base: number): void => {
    for (const f of fields) {
      const off = base + f.offset;
      const sub = (f.type as { fields?: typeof fields }).fields;
      if (sub) { walk(sub, off); continue; }
      if (f.type.kind === 'pad') { if (rng.chance(0.1)) for (let i = 0; i < f.type.size && off + i < len; i++) b[off + i] = rng.int(256); continue; }
      const hv = useHints && rng.chance(0.9) ? hinted(rng, f.name, pool, handles) : undefined;
      if (hv !== undefined && (f.type.size === 8 || f.type.size === 4)) put(off, f.type.size, hv);
      else if (f.type.size === 8) put(off, 8, u64Value(rng, pool));
      else if (f.type.size === 4) put(off, 4, u32Value(rng, handles));
      else put(off, f.type.size, 0);
    }
  };
  walk(row.layout.fields as never, 0);
  return b;
}

export { cmdOf };
