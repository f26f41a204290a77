// drm_ioctl(): row lookup by nr, _IOC size negotiation, render-node permission, errno edge (drivers/gpu/drm/drm_ioctl.c).
import { Errno, EACCES, EINVAL, EIO, ENOTTY, EOPNOTSUPP, MAX_ERRNO, isErr } from '../errno';
import { DRM_COMMAND_BASE, DRM_COMMAND_END, DRM_IOCTL_BASE, IOC, IOC_IN, IOC_NR, IOC_OUT, IOC_SIZE, IOC_SIZEMASK, IOC_TYPE } from '../abi/ioc';
import { DRM_CORE_NOT_RENDER, DRM_CORE_RENDER_UNSUPPORTED } from '../abi/drm';
import type { Struct } from '../abi/layout';
import type { UserCopy } from '../memory/client-memory';
import type { DrmFile } from './file';
import type { Client } from '../client';
import type { IoctlFds } from '../virtgpu/fence';

export interface Range { addr: number; len: number }
/**
 * `populate`: client ranges the handler will fault in (a userptr's pin), which a transport whose client runs code of
 * ours may have the client fault in itself first (MADV_POPULATE_WRITE/READ inside the client: no page is touched from
 * outside, where a write could race the client's own); the handler then finds them present. Optional; never required.
 */
export interface PointerPlan { in: Range[]; out: Range[]; populate?: PopulateRange[] }
export interface PopulateRange { addr: number; len: number; write: boolean }

/** What a handler gets besides its struct (the kernel's dev, file): `D` the driver state, `P` its per-file state. */
export interface IoctlCtx<D = any, P = any> {
  readonly dev: D;
  readonly file: DrmFile<P>;
  readonly client: Client;
  readonly user: UserCopy;
  /** Fd passing (fence fds) when the transport can; absent over FUSE/CUSE. */
  readonly fds?: IoctlFds;
}

/** One row of an ioctl table, like DRM_IOCTL_DEF_DRV: the struct layout drives sizes, the number and the trace. */
export interface IoctlRow<T = any, C extends IoctlCtx = IoctlCtx> {
  readonly nr: number;
  readonly name: string;
  readonly layout: Struct<T>;
  /** _IOC direction of the table's own cmd (IOC_WRITE|IOC_READ for _IOWR). */
  readonly dir: number;
  readonly renderAllow: boolean;
  /** Every errno the handler may return (asserted by tests). */
  readonly errnos: readonly Errno[];
  /** Embedded user ranges the handler will read/write, from the struct (+ what `user` can already read): CUSE RETRY. */
  readonly pointers?: (args: T, ctx: C) => PointerPlan;
  /** The client's fd numbers the handler will ask for (FENCE_FD_IN): a transport fetches them first, like pointers. */
  readonly fdsIn?: (args: T) => number[];
  readonly handler: (ctx: C, args: T) => number | Errno;
  /** Long work the handler would do that may run beforehand in bounded steps (Device.prepare); null: none. */
  readonly prepare?: (ctx: C, args: T) => Preparation | null;
}

/**
 * Work an ioctl would do first that can take long (faulting in a big userptr range), cut into bounded steps. A
 * transport runs step() between other requests until it returns true, then issues the ioctl, which decides
 * everything as if nothing had been prepared (a preparation never changes core's state).
 */
export interface Preparation { step(): boolean }

export function defineRow<T, C extends IoctlCtx = IoctlCtx>(row: IoctlRow<T, C>): IoctlRow<T, C> { return row; }
export function cmdOf(row: IoctlRow): number { return IOC(row.dir, DRM_IOCTL_BASE, row.nr, row.layout.size); }

export interface Negotiated { row: IoctlRow; inSize: number; outSize: number; ksize: number }
export interface IoctlResult { result: number | Errno; out: Uint8Array }

const EMPTY = new Uint8Array(0);

export class IoctlTable {
  private readonly rows: (IoctlRow | undefined)[] = new Array(256);
  constructor(rows: readonly IoctlRow<any, any>[]) {
    for (const r of rows) {
      if (this.rows[r.nr]) throw new Error(`ioctl nr 0x${r.nr.toString(16)} defined twice`);
      this.rows[r.nr] = r;
    }
  }
  all(): IoctlRow[] { return this.rows.filter((r): r is IoctlRow => !!r); }
  byNr(nr: number): IoctlRow | undefined { return this.rows[nr]; }

  /** negotiate() by cmd: a UMD uses a handful of numbers over and over (bounded: fuzzers send many). */
  private readonly negotiated = new Map<number, Negotiated | Errno>();
  /** In front of it, the last cmd seen per nr (a cmd's low byte) and its answer: one array index per call. */
  private readonly lastCmd = new Float64Array(256).fill(-1);
  private readonly lastAnswer: (Negotiated | Errno | undefined)[] = new Array<Negotiated | Errno | undefined>(256).fill(undefined);

  /** The kernel's checks before any copy: type, table entry, render permission, sizes. */
  negotiate(cmd: number): Negotiated | Errno {
    const i = cmd & 0xff;
    if (this.lastCmd[i] === cmd) return this.lastAnswer[i]!;
    let n = this.negotiated.get(cmd);
    if (n === undefined) {
      if (this.negotiated.size >= 1024) this.negotiated.clear();
      n = this.negotiateUncached(cmd);
      this.negotiated.set(cmd, n);
    }
    this.lastCmd[i] = cmd;
    this.lastAnswer[i] = n;
    return n;
  }

  private negotiateUncached(cmd: number): Negotiated | Errno {
    if (IOC_TYPE(cmd) !== DRM_IOCTL_BASE) return ENOTTY;
    const nr = IOC_NR(cmd);
    const row = this.rows[nr];
    if (!row) {
      if (nr < DRM_COMMAND_BASE || nr >= DRM_COMMAND_END) {
        if (DRM_CORE_NOT_RENDER[nr]) return EACCES;
        if (DRM_CORE_RENDER_UNSUPPORTED[nr]) return EOPNOTSUPP;
      }
      return EINVAL;
    }
    if (!row.renderAllow) return EACCES;
    const rowCmd = cmdOf(row);
    let inSize = IOC_SIZE(cmd);
    let outSize = inSize;
    if (((cmd & rowCmd & IOC_IN) >>> 0) === 0) inSize = 0;
    if (((cmd & rowCmd & IOC_OUT) >>> 0) === 0) outSize = 0;
    return { row, inSize, outSize, ksize: Math.max(inSize, outSize, row.layout.size) };
  }

  /** Build the zero-filled kernel buffer from the caller's in-bytes (copy min, zero-fill the rest). */
  static kbuf(n: Negotiated, argIn: Uint8Array): Uint8Array {
    const k = new Uint8Array(n.ksize);
    k.set(argIn.length > n.inSize ? argIn.subarray(0, n.inSize) : argIn);
    return k;
  }

  /**
   * The kernel buffer: one scratch area per table, reused by every call (handlers never re-enter dispatch).
   * A fresh small Uint8Array would be cheap, but its `.buffer` is not: V8 materializes it (~300 ns).
   */
  private readonly scratch = new ArrayBuffer(IOC_SIZEMASK + 1);
  private readonly kdv = new DataView(this.scratch);
  private readonly kbytes = new Uint8Array(this.scratch);
  private readonly kq = new BigUint64Array(this.scratch);
  /** The scratch as 8-byte words, for zeroing: stores of 0 clear all 64 bits. */
  private readonly kw = new Float64Array(this.scratch);

  /**
   * Zero scratch bytes [from, to). A struct's worth is zeroed a word at a time in JS: TypedArray.prototype.fill is a
   * runtime call in this V8 (~18 ns for 64 bytes, more than the rest of a no-op's dispatch).
   */
  private zero(from: number, to: number): void {
    const k = this.kbytes;
    if (to - from > 256) { k.fill(0, from, to); return; }
    let i = from;
    for (; i < to && (i & 7) !== 0; i++) k[i] = 0;
    const kw = this.kw;
    for (; i + 8 <= to; i += 8) kw[i >> 3] = 0;
    for (; i < to; i++) k[i] = 0;
  }

  /** Run one ioctl. Nothing thrown by a handler escapes: a bug becomes EIO and is reported through `onBug`. */
  call(cmd: number, argIn: Uint8Array, ctx: IoctlCtx, onBug: (e: unknown, row: IoctlRow) => void): IoctlResult & { row?: IoctlRow; args?: unknown } {
    const n = this.negotiate(cmd);
    if (isErr(n)) return { result: n, out: EMPTY };
    const k = this.kbytes;
    const len = argIn.length > n.inSize ? n.inSize : argIn.length;
    if (len > 0) k.set(len < argIn.length ? argIn.subarray(0, len) : argIn);
    if (len < n.ksize) this.zero(len, n.ksize);
    const dv = this.kdv;
    const args = n.row.layout.readAt0(dv, this.kq);
    let result: number | Errno;
    try {
      result = n.row.handler(ctx, args);
      if (!isErr(result) && (!Number.isInteger(result) || result < 0)) throw new Error(`handler returned ${String(result)}`);
      if (isErr(result) && (result.errno < 1 || result.errno > MAX_ERRNO)) throw new Error(`errno ${result.errno} out of range`);
    } catch (e) {
      onBug(e, n.row);
      result = EIO;
    }
    n.row.layout.writeAt0(dv, this.kq, args);
    // drm_ioctl copies `out_size` bytes back even when the handler failed.
    return { result, out: n.outSize ? k.slice(0, n.outSize) : EMPTY, row: n.row, args };
  }
}
