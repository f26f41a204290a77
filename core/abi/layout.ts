// Layout tables: one declaration per C struct drives decode, encode, size, _IOC number, trace dump and fuzzing.
// Offsets follow the C ABI of x86-64 (natural alignment, size rounded to the largest member) and are never
// written by hand; explicit `pad` fields mirror the header's own padding members. All integers little endian.

export interface FieldType<T> {
  readonly kind: string;
  /** DataView accessor suffix for scalars ('Uint32', 'BigUint64', …): lets Struct compile straight-line codecs. */
  readonly accessor?: string;
  readonly size: number;
  readonly align: number;
  read(dv: DataView, off: number): T;
  write(dv: DataView, off: number, v: T): void;
  zero(): T;
  dump(v: T): unknown;
}

const LE = true;
const hex = (v: bigint | number): string => '0x' + v.toString(16);

function scalar<T>(kind: string, size: number, accessor: string, read: FieldType<T>['read'], write: FieldType<T>['write'], zero: T, dump: (v: T) => unknown = (v) => v): FieldType<T> {
  return { kind, size, align: size, accessor, read, write, zero: () => zero, dump };
}

export const u8 = scalar<number>('u8', 1, 'Uint8', (d, o) => d.getUint8(o), (d, o, v) => d.setUint8(o, v), 0);
export const u16 = scalar<number>('u16', 2, 'Uint16', (d, o) => d.getUint16(o, LE), (d, o, v) => d.setUint16(o, v, LE), 0);
export const u32 = scalar<number>('u32', 4, 'Uint32', (d, o) => d.getUint32(o, LE), (d, o, v) => d.setUint32(o, v, LE), 0);
export const i32 = scalar<number>('i32', 4, 'Int32', (d, o) => d.getInt32(o, LE), (d, o, v) => d.setInt32(o, v, LE), 0);
/** u64 stays a bigint at the codec edge; addresses are converted once with `addrOf` (core/memory/client-memory.ts). */
export const u64 = scalar<bigint>('u64', 8, 'BigUint64', (d, o) => d.getBigUint64(o, LE), (d, o, v) => d.setBigUint64(o, v, LE), 0n, hex);

/** Padding: decodes to nothing, encode leaves the caller's bytes as they were (the kernel copies them back untouched). */
export interface PadType extends FieldType<undefined> { readonly kind: 'pad' }
export function pad(size: number, align = 1): PadType {
  return { kind: 'pad', size, align, read: () => undefined, write: () => undefined, zero: () => undefined, dump: () => undefined };
}

export function array<T>(elem: FieldType<T>, n: number): FieldType<T[]> {
  return {
    kind: `${elem.kind}[${n}]`, size: elem.size * n, align: elem.align,
    read: (d, o) => { const r: T[] = new Array(n); for (let i = 0; i < n; i++) r[i] = elem.read(d, o + i * elem.size); return r; },
    write: (d, o, v) => { for (let i = 0; i < n; i++) elem.write(d, o + i * elem.size, v[i] ?? elem.zero()); },
    zero: () => Array.from({ length: n }, () => elem.zero()),
    dump: (v) => v.map((x) => elem.dump(x)),
  };
}

/** Fixed-size byte string (char name[N]). */
export function bytes(n: number): FieldType<Uint8Array> {
  return {
    kind: `u8[${n}]`, size: n, align: 1,
    read: (d, o) => new Uint8Array(d.buffer, d.byteOffset + o, n).slice(),
    write: (d, o, v) => { const dst = new Uint8Array(d.buffer, d.byteOffset + o, n); dst.fill(0); dst.set(v.subarray(0, n)); },
    zero: () => new Uint8Array(n),
    dump: (v) => Buffer.from(v).toString('hex'),
  };
}

type Fields = Record<string, FieldType<any>>;
export type Infer<F extends Fields> = { -readonly [K in keyof F as F[K] extends PadType ? never : K]: F[K] extends FieldType<infer T> ? T : never };

export interface FieldInfo { readonly name: string; readonly type: FieldType<unknown>; readonly offset: number }

export class Struct<T> implements FieldType<T> {
  readonly kind: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly FieldInfo[];
  private readonly live: readonly FieldInfo[];

  constructor(readonly name: string, spec: Fields) {
    this.kind = name;
    let off = 0;
    let align = 1;
    const fields: FieldInfo[] = [];
    for (const [fname, type] of Object.entries(spec)) {
      off = alignUp(off, type.align);
      fields.push({ name: fname, type, offset: off });
      off += type.size;
      align = Math.max(align, type.align);
    }
    this.fields = fields;
    this.live = fields.filter((f) => f.type.kind !== 'pad');
    this.align = align;
    this.size = alignUp(off, align);
    const c = compile(this.live);
    this.read = c.read as (dv: DataView, off: number) => T;
    this.write = c.write as (dv: DataView, off: number, v: T) => void;
    this.readAt0 = c.readAt0 as (dv: DataView, q: BigUint64Array) => T;
    this.writeAt0 = c.writeAt0 as (dv: DataView, q: BigUint64Array, v: T) => void;
  }

  offsetOf(field: keyof T & string): number {
    const f = this.fields.find((x) => x.name === field);
    if (!f) throw new Error(`${this.name} has no field ${field}`);
    return f.offset;
  }

  /** Straight-line codecs compiled from the table (see `compile`): one object shape per struct, no per-field calls. */
  readonly read: (dv: DataView, off: number) => T;
  readonly write: (dv: DataView, off: number, v: T) => void;
  /**
   * The same codecs at offset 0 of a buffer that `q` also views from its first byte (the dispatcher's kernel buffer):
   * u64 fields go through `q`'s elements, several times cheaper in V8 than DataView's BigUint64 accessors. The
   * struct's u64 fields sit at multiples of 8 (natural alignment); on a big-endian host these are read and write.
   */
  readonly readAt0: (dv: DataView, q: BigUint64Array) => T;
  readonly writeAt0: (dv: DataView, q: BigUint64Array, v: T) => void;

  zero(): T {
    const o: Record<string, unknown> = {};
    for (const f of this.live) o[f.name] = f.type.zero();
    return o as T;
  }

  /** Decode from `buf` at `off`; bytes past the end of `buf` read as zero (like the kernel's zero-filled kbuf). */
  decode(buf: Uint8Array, off = 0): T {
    if (buf.length - off >= this.size) return this.read(view(buf), off);
    const tmp = new Uint8Array(this.size);
    tmp.set(buf.subarray(off, off + this.size));
    return this.read(view(tmp), 0);
  }

  /** Encode into `buf` (allocated zeroed when absent); padding bytes already there are kept. */
  encode(v: T, buf: Uint8Array = new Uint8Array(this.size), off = 0): Uint8Array {
    this.write(view(buf), off, v);
    return buf;
  }

  /** True iff every pad byte is zero (for the ioctls whose kernel handler rejects non-zero padding). */
  padIsZero(buf: Uint8Array, off = 0): boolean {
    for (const f of this.fields) {
      if (f.type.kind !== 'pad') continue;
      for (let i = 0; i < f.type.size; i++) if (buf[off + f.offset + i]) return false;
    }
    return true;
  }

  /** Human-readable fields for traces: u64 as hex strings, pads omitted. */
  dump(v: T): Record<string, unknown> {
    const r = v as Record<string, unknown>;
    const o: Record<string, unknown> = {};
    for (const f of this.live) o[f.name] = f.type.dump(r[f.name] as never);
    return o;
  }
}

/**
 * Compile a table into two straight-line functions (the hot path of every ioctl decodes and encodes a struct):
 * scalars become direct DataView calls at constant offsets, other field types call their own read/write.
 * Only table data reaches the generated source: names are JSON-quoted, offsets and accessors are our own constants.
 */
function compile(live: readonly FieldInfo[]): {
  read: (dv: DataView, off: number) => unknown; write: (dv: DataView, off: number, v: unknown) => void;
  readAt0: (dv: DataView, q: BigUint64Array) => unknown; writeAt0: (dv: DataView, q: BigUint64Array, v: unknown) => void;
} {
  const key = (n: string): string => JSON.stringify(n);
  const r: string[] = [], w: string[] = [], r0: string[] = [], w0: string[] = [];
  live.forEach((f, i) => {
    const acc = f.type.accessor;
    const le = acc && acc !== 'Uint8' ? ', true' : '';
    // A u64 at a multiple of 8 goes through the element view in the offset-0 codecs (little-endian hosts only).
    const viaQ = acc === 'BigUint64' && f.offset % 8 === 0 && LITTLE_ENDIAN_HOST;
    if (acc) {
      r.push(`${key(f.name)}: dv.get${acc}(o + ${f.offset}${le})`);
      r0.push(viaQ ? `${key(f.name)}: q[${f.offset / 8}]` : `${key(f.name)}: dv.get${acc}(${f.offset}${le})`);
      const zero = acc.startsWith('Big') ? '0n' : '0';
      w.push(`dv.set${acc}(o + ${f.offset}, v[${key(f.name)}] ?? ${zero}${le});`);
      w0.push(viaQ ? `q[${f.offset / 8}] = v[${key(f.name)}] ?? 0n;` : `dv.set${acc}(${f.offset}, v[${key(f.name)}] ?? ${zero}${le});`);
    } else {
      r.push(`${key(f.name)}: T[${i}].read(dv, o + ${f.offset})`);
      r0.push(`${key(f.name)}: T[${i}].read(dv, ${f.offset})`);
      w.push(`{ const x = v[${key(f.name)}]; T[${i}].write(dv, o + ${f.offset}, x === undefined ? T[${i}].zero() : x); }`);
      w0.push(`{ const x = v[${key(f.name)}]; T[${i}].write(dv, ${f.offset}, x === undefined ? T[${i}].zero() : x); }`);
    }
  });
  const types = live.map((f) => f.type);
  /* eslint-disable @typescript-eslint/no-implied-eval */
  const read = new Function('T', `return function read(dv, o) { return { ${r.join(', ')} }; };`)(types);
  const write = new Function('T', `return function write(dv, o, v) { ${w.join(' ')} };`)(types);
  const readAt0 = new Function('T', `return function readAt0(dv, q) { return { ${r0.join(', ')} }; };`)(types);
  const writeAt0 = new Function('T', `return function writeAt0(dv, q, v) { ${w0.join(' ')} };`)(types);
  /* eslint-enable @typescript-eslint/no-implied-eval */
  return { read, write, readAt0, writeAt0 };
}

/** BigUint64Array elements are in the host's byte order; the uAPI's are little endian. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new BigUint64Array([1n]).buffer)[0] === 1;

export function struct<F extends Fields>(name: string, spec: F): Struct<Infer<F>> {
  return new Struct<Infer<F>>(name, spec);
}

export function alignUp(n: number, a: number): number { return Math.ceil(n / a) * a; }

export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
