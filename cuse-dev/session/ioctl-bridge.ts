// FUSE_IOCTL → core. Two regimes (fs/fuse/ioctl.c):
//  restricted (FUSE files; CUSE without CUSE_UNRESTRICTED_IOCTL): the kernel already copied _IOC_SIZE bytes in and
//    copies back what we return; embedded pointers go through the caller's ClientMemory (core's default UserCopy);
//  unrestricted (CUSE): the kernel decodes nothing; each pass we recompute from (cmd, arg, in-data) which iovecs are
//    still missing and answer FUSE_IOCTL_RETRY until they are all present (stateless, as libfuse example/cuse.c).
import { EFAULT, EIO, ENOMEM, Errno, isErr } from '../../core/errno';
import type { UserCopy } from '../../core/memory/client-memory';
import { FUSE_IOCTL_MAX_BYTES, FUSE_IOCTL_MAX_IOV, FUSE_IOCTL_UNRESTRICTED } from '../abi/fuse';
import type { Preparation, Range } from '../../core';
import type { CoreDevice, CoreFile, IoctlPlan } from './core-api';
import { replyError, replyIoctl, replyIoctlRetry, type BadErrnoSink } from './reply';

export interface IoctlRequest {
  unique: bigint;
  pid: number; // thread-group id of the caller
  flags: number;
  cmd: number;
  arg: number;
  /** Concatenated in-iovec data (restricted: the _IOC_SIZE struct). */
  inData: Uint8Array;
  /** Bytes the kernel will scatter over its out iovecs at most. */
  outSize: number;
}

/** Plans may only grow by appending as data arrives; more rounds than this means a plan that never converges. */
const MAX_PLAN_ROUNDS = 16;
const EMPTY = new Uint8Array(0);

export interface BridgeCtx {
  dev: CoreDevice;
  bad: BadErrnoSink;
  logOnce: (key: string, msg: string) => void;
  /** Counts RETRY replies, for the trace and tests (`req` names the request being retried). */
  onRetry?: (req: IoctlRequest, inIov: readonly Range[], outIov: readonly Range[]) => void;
  /**
   * Set by a serving loop that can interleave: an ioctl with a long preparation is handed over here instead of
   * being run (bridgeIoctl then returns null); the loop runs prep.step() between other requests and finally
   * run(), whose reply it writes then. Unset: everything runs at once (in-process, stream tests).
   */
  park?: (job: ParkedIoctl) => void;
}

/** An ioctl waiting for its preparation: the request's unique, the steps, and the dispatch that makes the reply. */
export interface ParkedIoctl { unique: bigint; pid: number; prep: Preparation; run: () => Uint8Array }

/** The reply, or null when the request was parked (ctx.park) and is answered later. */
export function bridgeIoctl(ctx: BridgeCtx, file: CoreFile, req: IoctlRequest): Uint8Array | null {
  if (req.flags & FUSE_IOCTL_UNRESTRICTED) return unrestricted(ctx, file, req);
  // The hot path of every FUSE ioctl: no closure unless the request is parked.
  const prep = preparation(ctx, file, req, req.inData);
  return prep ? park(ctx, req, prep, (inData) => restricted(ctx, file, req, inData)) : restricted(ctx, file, req, req.inData);
}

/** A restricted ioctl run now: the kernel copied the struct in and copies back what we return. */
function restricted(ctx: BridgeCtx, file: CoreFile, req: IoctlRequest, inData: Uint8Array): Uint8Array {
  const r = file.ioctl(req.pid, req.cmd, inData);
  // Never hand back more than the kernel mapped: more than out_size makes the caller's ioctl fail with EIO.
  const out = r.out.length > req.outSize ? r.out.subarray(0, req.outSize) : r.out;
  return replyIoctl(req.unique, r.result, out, ctx.bad);
}

/** The preparation of a request that runs long (parked, then run between other requests), or null: run it now. */
function preparation(ctx: BridgeCtx, file: CoreFile, req: IoctlRequest, structIn: Uint8Array): Preparation | null {
  return ctx.park && file.prepare ? file.prepare(req.pid, req.cmd, structIn) : null;
}

/** Hand the request to the loop with its preparation; run() later gets a copy (the loop's buffer is reused). */
function park(ctx: BridgeCtx, req: IoctlRequest, prep: Preparation, run: (inData: Uint8Array) => Uint8Array): null {
  const inData = Uint8Array.from(req.inData); // a copy even of a Buffer (whose slice() is a view)
  ctx.park!({ unique: req.unique, pid: req.pid, prep, run: () => run(inData) });
  return null;
}

/** A UserCopy over the iovec data the kernel handed us (reads) and capture buffers for the out iovecs (writes). */
export class IovecUser implements UserCopy {
  readonly outBufs: Uint8Array[];
  constructor(private readonly inR: readonly Range[], private readonly inData: Uint8Array, private readonly outR: readonly Range[] = [], private readonly strict = false) {
    this.outBufs = outR.map((o) => {
      const b = new Uint8Array(o.len);
      // Bytes the handler does not write must reach the caller unchanged: seed from the same bytes fetched as input.
      const src = this.slice(o.addr, o.len);
      if (src) b.set(src);
      return b;
    });
  }
  /** Offset-mapped copy of [addr, addr+len) if one fetched range holds it entirely. */
  private slice(addr: number, len: number): Uint8Array | undefined {
    let off = 0;
    for (const r of this.inR) {
      if (addr >= r.addr && addr + len <= r.addr + r.len && off + (addr - r.addr) + len <= this.inData.length) {
        const s = off + (addr - r.addr);
        return this.inData.slice(s, s + len);
      }
      off += r.len;
    }
    return undefined;
  }
  /** Missing bytes are EFAULT: during planning that means "not fetched yet", after planning a plan that missed a range. */
  read(addr: number, len: number): Uint8Array | Errno {
    if (len === 0) return EMPTY;
    return this.slice(addr, len) ?? (this.missed('read', addr, len), EFAULT);
  }
  write(addr: number, data: Uint8Array): Errno | undefined {
    for (let i = 0; i < this.outR.length; i++) {
      const o = this.outR[i]!;
      if (addr >= o.addr && addr + data.length <= o.addr + o.len) { this.outBufs[i]!.set(data, addr - o.addr); return undefined; }
    }
    this.missed('write', addr, data.length);
    return EFAULT;
  }
  onMiss?: (what: string) => void;
  private missed(op: string, addr: number, len: number): void {
    if (this.strict) this.onMiss?.(`${op} of ${len} bytes at 0x${addr.toString(16)} outside the planned iovecs`);
  }
}

const NO_USER = new IovecUser([], EMPTY);
const sum = (rs: readonly Range[]): number => { let n = 0; for (const r of rs) n += r.len; return n; };
const sameRange = (a: Range, b: Range): boolean => a.addr === b.addr && a.len === b.len;

/**
 * One pass of the stateless planner of unrestricted ioctls (CUSE's RETRY; the preload transport's NEED): from
 * (cmd, arg) and the bytes fetched so far — the struct first, then the embedded ranges, in the order the last
 * answer asked for them — either the complete list of ranges still to fetch (`retry`: the struct first), an errno,
 * or the converged plan with its data split into the struct and the rest. `outSize`: the bytes the caller mapped
 * for its out iovecs (CUSE: the kernel's out_size, which must match the plan exactly), or null when the out ranges
 * travel with the reply (preload). `supplied`: the ranges the bytes came from, when the caller says so (preload);
 * CUSE's kernel fetched exactly the last RETRY's list.
 */
export type UnrestrictedStep =
  | { kind: 'error'; errno: Errno }
  | { kind: 'retry'; in: Range[]; out: Range[] }
  | { kind: 'ready'; plan: IoctlPlan; inSize: number; outSize: number; structIn: Uint8Array; rest: Uint8Array };

export function planUnrestricted(ctx: Pick<BridgeCtx, 'dev' | 'logOnce'>, file: CoreFile, cmd: number, arg: number, inData: Uint8Array, outMapped: number | null, supplied?: readonly Range[]): UnrestrictedStep {
  const { dev } = ctx;
  let p = dev.plan(cmd, null, file, NO_USER);
  if (isErr(p)) return { kind: 'error', errno: p };
  const inSize = p.inSize;
  const outSize = p.outSize;
  const structIov = (n: number): Range[] => (n > 0 ? [{ addr: arg, len: n }] : []);
  const retry = (inIov: Range[], outIov: Range[]): UnrestrictedStep => retryStep(ctx, cmd, inIov, outIov);
  // Pass 1 of a data-carrying ioctl always lands here: in_size = out_size = 0.
  if (inData.length < inSize) return retry(structIov(inSize), structIov(outSize));
  if (supplied && inSize > 0 && !(supplied[0] && sameRange(supplied[0], { addr: arg, len: inSize }))) return retry(structIov(inSize), structIov(outSize));
  const structIn = inData.subarray(0, inSize);
  const rest = inData.subarray(inSize);
  let known: Range[] = [];
  for (let round = 0; ; round++) {
    if (round >= MAX_PLAN_ROUNDS) {
      ctx.logOnce('plan-diverges', `ioctl 0x${cmd.toString(16)}: pointer plan did not converge in ${MAX_PLAN_ROUNDS} rounds, answered EIO`);
      return { kind: 'error', errno: EIO };
    }
    p = dev.plan(cmd, structIn, file, new IovecUser(known, rest));
    if (isErr(p)) return { kind: 'error', errno: p };
    if (p.inSize !== inSize || p.outSize !== outSize || !known.every((r, i) => p && !isErr(p) && p.in[i] && sameRange(r, p.in[i]!))) {
      ctx.logOnce('plan-unstable', `ioctl 0x${cmd.toString(16)}: pointer plan is not prefix-stable, answered EIO`);
      return { kind: 'error', errno: EIO };
    }
    if (p.in.length === known.length) break;
    if (sum(p.in) > rest.length) return retry([...structIov(inSize), ...p.in], [...structIov(outSize), ...p.out]);
    known = p.in;
  }
  const plan: IoctlPlan = p;
  // The bytes must have come from exactly the planned ranges (preload names them; CUSE's kernel fetched the last RETRY's).
  const fromPlan = supplied === undefined || (supplied.length === (inSize > 0 ? 1 : 0) + plan.in.length && plan.in.every((r, i) => sameRange(r, supplied[i + (inSize > 0 ? 1 : 0)]!)));
  // All input present; CUSE's kernel must also have mapped exactly the out iovecs the handler will write.
  if (!fromPlan || (outMapped !== null && outMapped !== outSize + sum(plan.out))) {
    return retry([...structIov(inSize), ...plan.in], [...structIov(outSize), ...plan.out]);
  }
  return { kind: 'ready', plan, inSize, outSize, structIn, rest };
}

/** The struct's out bytes, exactly `outSize` long: what the handler wrote over the bytes that came in. */
export function structOut(out: Uint8Array, structIn: Uint8Array, outSize: number): Uint8Array {
  if (out.length === outSize) return out;
  const fixed = new Uint8Array(outSize);
  fixed.set(structIn.subarray(0, outSize));
  fixed.set(out.subarray(0, outSize));
  return fixed;
}

function unrestricted(ctx: BridgeCtx, file: CoreFile, req: IoctlRequest): Uint8Array | null {
  const { bad } = ctx;
  const s = planUnrestricted(ctx, file, req.cmd, req.arg, req.inData, req.outSize);
  if (s.kind === 'error') return replyError(req.unique, s.errno, bad);
  if (s.kind === 'retry') {
    ctx.onRetry?.(req, s.in, s.out);
    return replyIoctlRetry(req.unique, s.in, s.out);
  }
  const { plan, inSize, outSize } = s;
  const run = (inData: Uint8Array): Uint8Array => {
    const structIn = inData.subarray(0, inSize), rest = inData.subarray(inSize);
    const user = new IovecUser(plan.in, rest, plan.out, true);
    user.onMiss = (what) => ctx.logOnce(`plan-miss:${what}`, `ioctl 0x${req.cmd.toString(16)}: handler ${what} (core plan bug): EFAULT`);
    const r = file.ioctl(req.pid, req.cmd, structIn, user);
    // The out iovecs are laid out by position: the struct part must be exactly outSize bytes.
    return replyIoctl(req.unique, r.result, [structOut(r.out, structIn, outSize), ...user.outBufs], bad);
  };
  const prep = preparation(ctx, file, req, s.structIn);
  return prep ? park(ctx, req, prep, run) : run(req.inData);
}

/** A RETRY of these iovecs, or ENOMEM where the kernel would fail the caller for either excess (fs/fuse/ioctl.c fuse_do_ioctl). */
function retryStep(ctx: Pick<BridgeCtx, 'logOnce'>, cmd: number, inIov: Range[], outIov: Range[]): UnrestrictedStep {
  if (inIov.length + outIov.length > FUSE_IOCTL_MAX_IOV || sum(inIov) > FUSE_IOCTL_MAX_BYTES || sum(outIov) > FUSE_IOCTL_MAX_BYTES) {
    ctx.logOnce('too-big', `ioctl 0x${cmd.toString(16)}: ${inIov.length + outIov.length} iovecs, ${sum(inIov)} B in, ${sum(outIov)} B out exceed CUSE limits (${FUSE_IOCTL_MAX_IOV}, ${FUSE_IOCTL_MAX_BYTES} B): ENOMEM`);
    return { kind: 'error', errno: ENOMEM };
  }
  return { kind: 'retry', in: inIov, out: outIov };
}
