// One FUSE/CUSE session over any byte stream: `handle(request) → reply | null`. Protocol gates live here
// (INIT first and once, unknown opcode ENOSYS, no-reply opcodes), the dispatch, and the device file's requests
// (open, release, read, ioctl) over the per-open-file map fh → core file. The INIT answers are in init.ts, the
// FUSE namespace in tree.ts. Nothing thrown below escapes handle(): a bug becomes EIO for that request and one log line.
import { EBADF, EINVAL, EINTR, EIO, EISDIR, ENFILE, ENODEV, ENOENT, ENOMEM, ENOSYS, ENOTTY, EAGAIN, Errno } from '../../core/errno';
import * as F from '../abi/fuse';
import { FuseOpcode, opcodeName, opcodeRow } from '../abi/opcodes';
import type { Range } from '../../core';
import type { CoreDevice, CoreFile } from './core-api';
import { bridgeIoctl, type BridgeCtx, type ParkedIoctl } from './ioctl-bridge';
import { cuseInit, fuseInit, type CuseParams, type InitAnswer, type InitCtx, type Proto } from './init';
import { replyError, replyOk, replyStruct } from './reply';
import { readdir, treeRequest, type FileTree, type TreeCtx } from './tree';
import { tgidResolver, type CallerRefusal, type CallerResolver } from './tgid';
import { LogLimiter } from '../../core/log-limit';
import { LITTLE_ENDIAN_HOST } from '../../core/abi/layout';

export type SessionKind = 'fuse' | 'cuse';

/** Transport-level trace events (core's own events are forwarded unchanged by the trace sink). */
export type SessionTraceEvent =
  | { t: 'transport'; op: string; unique: string; pid: number; error?: string; us?: number }
  | { t: 'transport'; op: 'RETRY'; unique: string; pid: number; cmd: number; in: Range[]; out: Range[] }
  | { t: 'transport'; op: 'INIT'; kernel: string; answered: string; flags: number };

export interface SessionOptions {
  kind: SessionKind;
  device: CoreDevice;
  /** FUSE: the namespace served (required for kind 'fuse'). */
  tree?: FileTree;
  /** CUSE: CUSE_INIT answer (required for kind 'cuse'). */
  cuse?: CuseParams;
  /** Opens by this thread-group id are control handles (the serving process waking its own loop), not DRM files. */
  controlPid?: number;
  /** Who made a request (tid → the process whose memory it uses); default: /proc/TID/status per request (tgid.ts). */
  tgid?: CallerResolver;
  log?: (msg: string) => void;
  /** The server's one limiter, shared with core (default: the session's own over `log`). */
  logger?: LogLimiter;
  trace?: (ev: SessionTraceEvent) => void;
  /** The calling thread of the open or ioctl about to reach the device (0 once it returned): the trace stamps it. */
  traceCaller?: (tid: number) => void;
  /** A device file was opened by thread `tid` of `pid`, before the reply (the watcher may begin a ptrace injection). */
  onClientOpen?: (pid: number, tid: number) => void;
  /** max_read/max_write we announce (ioctl data is limited separately to 128 KiB per direction). */
  maxWrite?: number;
  /** Entry/attr cache lifetime for the FUSE tree, seconds. */
  attrTimeout?: number;
  /**
   * The serving loop calls step() between requests (loop.ts): ioctls with a long preparation (a big userptr
   * create) are then parked instead of run at once, so one client cannot stall the others. Off: all synchronous.
   */
  interleave?: boolean;
}

export interface SessionStats {
  requests: number; ioctls: number; retries: number; malformed: number; interrupts: number;
  opens: number; releases: number; clients: number;
  /** Opens and ioctls refused because their caller could not be established (tgid.ts). */
  refusedCallers: number;
}

type Handle = { kind: 'dev'; file: CoreFile; pid: number } | { kind: 'control' } | { kind: 'dir'; ino: number };

const IN_HDR = F.fuse_in_header.size;
/** fuse_out_header.unique sits at offset 8 of fuse_in_header too: usable to answer even a truncated header. */
const UNIQUE_OFF = F.fuse_in_header.offsetOf('unique');
const DEV_OPEN_FLAGS = F.FOPEN_DIRECT_IO | F.FOPEN_NONSEEKABLE;
const IOCTL_IN = F.fuse_ioctl_in.size;
// Hot-path field offsets, from the tables.
const IN_LEN = F.fuse_in_header.offsetOf('len');
const IN_OPCODE = F.fuse_in_header.offsetOf('opcode');
const IN_UNIQUE = F.fuse_in_header.offsetOf('unique');
/** No request's unique yet (a negative literal is a BigInt negation at run time). */
const NO_UNIQUE = -1n;
const IN_NODEID = F.fuse_in_header.offsetOf('nodeid');
const IN_PID = F.fuse_in_header.offsetOf('pid');
const IN_UID = F.fuse_in_header.offsetOf('uid');
const IN_GID = F.fuse_in_header.offsetOf('gid');
const IOCTL_FH = F.fuse_ioctl_in.offsetOf('fh');
const IOCTL_FLAGS = F.fuse_ioctl_in.offsetOf('flags');
const IOCTL_CMD = F.fuse_ioctl_in.offsetOf('cmd');
const IOCTL_ARG = F.fuse_ioctl_in.offsetOf('arg');
const IOCTL_IN_SIZE = F.fuse_ioctl_in.offsetOf('in_size');
const IOCTL_OUT_SIZE = F.fuse_ioctl_in.offsetOf('out_size');
const TWO_POW_32 = 2 ** 32;
/** The in-bytes of an ioctl that carries none (shared: nothing writes into an empty array). */
const NO_BYTES = new Uint8Array(0);
/** A little-endian u64 as the nearest number (exact below 2^53), without a bigint. */
const u64Number = (dv: DataView, off: number): number => dv.getUint32(off, true) + dv.getUint32(off + 4, true) * TWO_POW_32;

export class Session {
  readonly kind: SessionKind;
  state: 'new' | 'ready' | 'destroyed' = 'new';
  readonly stats: SessionStats = { requests: 0, ioctls: 0, retries: 0, malformed: 0, interrupts: 0, opens: 0, releases: 0, clients: 0, refusedCallers: 0 };
  /** Protocol version the kernel offered and the one we answered, after INIT. */
  proto?: Proto;
  private readonly dev: CoreDevice;
  private readonly handles = new Map<number, Handle>();
  private readonly seenClients = new Set<number>();
  private nextFh = 1;
  private readonly tgid: CallerResolver;
  private readonly logger: LogLimiter;
  private readonly bridge: BridgeCtx;
  private readonly initOp: number;
  private readonly initCtx: InitCtx;
  /** FUSE: the namespace requests' view of this session. */
  private readonly treeCtx?: TreeCtx;
  /** Ioctls waiting for their preparation, stepped round-robin (interleave only). */
  private parkedJobs: ParkedIoctl[] = [];
  /**
   * The array viewOf() saw last (identity: a loop passes the same read buffer every time) and its byteOffset: a
   * typed array's byteOffset is a builtin call in this V8 (~10 ns), not an inlined load.
   */
  private viewArray: Uint8Array | null = null;
  private viewArrayAt = 0;
  private viewBuffer: ArrayBufferLike | null = null;
  private view: DataView | null = null;
  /** The same buffer's 8-byte words (the header's unique is read as one: DataView's getBigUint64 costs more). */
  private viewQ: BigUint64Array | null = null;
  /** Offset in `view` of the request being handled (its header: the caller's ids). */
  private reqAt = 0;

  constructor(private readonly opts: SessionOptions) {
    this.kind = opts.kind;
    this.dev = opts.device;
    if (opts.kind === 'fuse' && !opts.tree) throw new Error('a FUSE session needs a tree');
    if (opts.kind === 'cuse' && !opts.cuse) throw new Error('a CUSE session needs CUSE parameters');
    this.initOp = opts.kind === 'fuse' ? FuseOpcode.FUSE_INIT : FuseOpcode.CUSE_INIT;
    this.tgid = opts.tgid ?? tgidResolver();
    const log = opts.log;
    this.logger = opts.logger ?? new LogLimiter({ sink: (m) => log?.(m) });
    const trace = opts.trace;
    this.initCtx = { logOnce: (k, m) => this.logOnce(k, m), maxWrite: opts.maxWrite };
    if (opts.kind === 'fuse') {
      this.treeCtx = {
        tree: opts.tree!, attrTimeout: opts.attrTimeout ?? 1, logOnce: (k, m) => this.logOnce(k, m),
        openDir: (ino) => { const fh = this.nextFh++; this.handles.set(fh, { kind: 'dir', ino }); return fh; },
        dirOf: (fh) => { const h = this.handles.get(fh); return h?.kind === 'dir' ? h.ino : undefined; },
      };
    }
    this.bridge = {
      dev: this.dev,
      bad: (what) => this.logOnce(`bad:${what}`, `reply edge: ${what}`),
      logOnce: (k, m) => this.logOnce(k, m),
      park: opts.interleave ? (job) => { this.parkedJobs.push(job); this.opts.trace?.({ t: 'transport', op: 'PARK', unique: job.unique.toString(), pid: job.pid }); } : undefined,
      onRetry: (req, inIov, outIov) => {
        this.stats.retries++;
        if (trace) trace({ t: 'transport', op: 'RETRY', unique: req.unique.toString(), pid: req.pid, cmd: req.cmd, in: [...inIov], out: [...outIov] });
      },
    };
  }

  /** Parked ioctls not answered yet. */
  parked(): number { return this.parkedJobs.length; }

  /**
   * One bounded step of the oldest parked ioctl (then it goes to the back of the queue); when its preparation is
   * done, the ioctl runs and its reply is returned. Ordering: the ioctl takes effect when it runs, after every
   * request served meanwhile — as if the caller's thread had issued it then; its other threads' memory events are
   * drained at that entry as for any ioctl, and the kernel lets those threads run concurrently anyway.
   */
  step(): Uint8Array | null {
    const job = this.parkedJobs.shift();
    if (!job) return null;
    let done = true;
    try { done = job.prep.step(); } catch (e) { this.logOnce(`bug:prepare:${String(e)}`, `BUG in an ioctl preparation: ${e instanceof Error ? e.stack ?? e.message : String(e)}`); }
    if (!done) { this.parkedJobs.push(job); return null; }
    try { return job.run(); } catch (e) {
      this.logOnce(`bug:parked:${String(e)}`, `BUG running a parked ioctl: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      return replyError(job.unique, EIO);
    }
  }

  /** Answer every parked ioctl with ENODEV (the server stops: the device is gone), so no caller stays blocked. */
  abandonParked(): Uint8Array[] {
    const out = this.parkedJobs.map((j) => replyError(j.unique, ENODEV));
    this.parkedJobs = [];
    return out;
  }

  /** Control handles (the serving process's own wake-up opens) not yet released. */
  controlHandles(): number { let n = 0; for (const h of this.handles.values()) if (h.kind === 'control') n++; return n; }

  /** Open device files (DRM files held for clients). */
  openFiles(): number { let n = 0; for (const h of this.handles.values()) if (h.kind === 'dev') n++; return n; }

  /** Log a message the first time `key` is seen (bounded and rate-limited: see LogLimiter.once). */
  logOnce(key: string, msg: string): void { this.logger.once(key, msg); }

  /**
   * One request in, at most one reply out (the caller writes it with a single write(2)). Never throws. The request is
   * the first `n` bytes of `buf` (all of it by default): a loop passes its one read buffer, no view per request.
   */
  handle(buf: Uint8Array, n = buf.length): Uint8Array | null {
    this.stats.requests++;
    let unique = NO_UNIQUE;
    let op = -1;
    try {
      if (n < IN_HDR) {
        this.stats.malformed++;
        if (n < UNIQUE_OFF + 8) { this.logOnce('short-drop', `dropped a ${n}-byte request (no header)`); return null; }
        unique = new DataView(buf.buffer, buf.byteOffset, n).getBigUint64(UNIQUE_OFF, true);
        this.logOnce('short', `request of ${n} bytes is shorter than fuse_in_header: EINVAL`);
        return replyError(unique, EINVAL);
      }
      // The header fields read in place (one cached DataView over the loop's buffer): no decoded object per request.
      const dv = this.viewOf(buf), at = this.viewArrayAt;
      this.reqAt = at;
      const len = dv.getUint32(at + IN_LEN, true);
      unique = (at & 7) === 0 && LITTLE_ENDIAN_HOST ? this.viewQ![(at + IN_UNIQUE) >> 3]! : dv.getBigUint64(at + IN_UNIQUE, true);
      op = dv.getUint32(at + IN_OPCODE, true);
      const row = opcodeRow(op);
      const noReply = row?.noReply ?? false;
      if (len !== n) {
        this.stats.malformed++;
        this.logOnce(`len:${op}`, `${opcodeName(op)}: header len ${len} but ${n} bytes read: ${noReply ? 'dropped' : 'EINVAL'}`);
        return noReply ? null : replyError(unique, EINVAL);
      }
      // The body's length alone until a handler needs its bytes (an ioctl reads them in place).
      const bodyLen = len - IN_HDR;
      // Gate 1: INIT first and once (libfuse fuse_session_process_buf_int).
      if (this.state === 'new') {
        if (op === this.initOp && row) {
          if (bodyLen < row.minBody) return this.malformed(unique, op, bodyLen);
          const body = buf.subarray(IN_HDR, n);
          return this.init(this.kind === 'fuse' ? fuseInit(this.initCtx, unique, body) : cuseInit(this.initCtx, this.opts.cuse!, unique, body));
        }
        if (noReply) return null;
        this.logOnce(`preinit:${op}`, `${opcodeName(op)} before INIT: EIO`);
        return replyError(unique, EIO);
      }
      if (op === FuseOpcode.FUSE_INIT || op === FuseOpcode.CUSE_INIT) {
        this.logOnce('init-twice', `${opcodeName(op)} after INIT: EIO`);
        return replyError(unique, EIO);
      }
      // Gate 2: unknown opcodes, and known ones not served.
      if (!row || row.quietEnosys) {
        if (!row) this.logOnce(`enosys:${op}`, `${opcodeName(op)} not implemented: ENOSYS`);
        return replyError(unique, ENOSYS);
      }
      if (bodyLen < row.minBody) return noReply ? (this.stats.malformed++, null) : this.malformed(unique, op, bodyLen);
      // The hot path: an ioctl reads its fields in place (no node id, no view of the body).
      if (op === FuseOpcode.FUSE_IOCTL) return this.ioctl(unique, dv.getUint32(at + IN_PID, true), buf, n);
      return this.dispatch(op, unique, dv.getBigUint64(at + IN_NODEID, true), dv.getUint32(at + IN_PID, true), buf.subarray(IN_HDR, n));
    } catch (e) {
      const row = opcodeRow(op);
      const exhausted = exhaustionErrno(e, op);
      if (exhausted) {
        this.logOnce(`exhausted:${op}:${(e as NodeJS.ErrnoException).code}`, `${opcodeName(op)}: the server is out of ${exhausted === ENOMEM ? 'memory' : 'file descriptors'} (${(e as Error).message}): answered ${exhausted.code}`);
      } else {
        this.logOnce(`bug:${op}`, `BUG handling ${opcodeName(op)}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
      if (unique < 0n || row?.noReply) return null;
      return replyError(unique, exhausted ?? EIO);
    }
  }

  private malformed(unique: bigint, op: number, got: number): Uint8Array {
    this.stats.malformed++;
    this.logOnce(`body:${op}`, `${opcodeName(op)}: body of ${got} bytes is too short: EINVAL`);
    return replyError(unique, EINVAL);
  }

  private dispatch(op: number, unique: bigint, nodeid: bigint, tid: number, body: Uint8Array): Uint8Array | null {
    switch (op) {
      case FuseOpcode.FUSE_OPEN: return this.open(unique, nodeid, tid);
      case FuseOpcode.FUSE_FLUSH: return replyOk(unique);
      case FuseOpcode.FUSE_RELEASE: return this.release(unique, body);
      case FuseOpcode.FUSE_RELEASEDIR: return this.release(unique, body);
      case FuseOpcode.FUSE_INTERRUPT:
        // Requests run to completion before the next read, so the interrupted one is already answered (or is answered
        // now by the kernel with EINTR); a reply that arrives too late fails with ENOENT and is ignored by the writer.
        this.stats.interrupts++;
        // unique = the interrupted request (a client killed mid-ioctl shows up here); the header's own pid is 0.
        {
          const target = F.fuse_interrupt_in.decode(body).unique;
          this.opts.trace?.({ t: 'transport', op: 'INTERRUPT', unique: target.toString(), pid: 0 });
          // A parked ioctl has not run yet: it ends now with EINTR, as a signal ends a driver's interruptible wait.
          const i = this.parkedJobs.findIndex((j) => j.unique === target);
          if (i >= 0) { this.parkedJobs.splice(i, 1); return replyError(target, EINTR); }
        }
        return null;
      case FuseOpcode.FUSE_FORGET:
      case FuseOpcode.FUSE_BATCH_FORGET:
      case FuseOpcode.FUSE_NOTIFY_REPLY:
        return null; // the tree is static: lookup counts do not matter
      case FuseOpcode.FUSE_READ: return this.read(unique, body);
      case FuseOpcode.FUSE_WRITE: return replyError(unique, EINVAL); // a DRM node has no write()
      case FuseOpcode.FUSE_POLL: return replyError(unique, ENOSYS); // kernel then reports DEFAULT_POLLMASK
      case FuseOpcode.FUSE_DESTROY:
        this.state = 'destroyed';
        return replyOk(unique);
      default:
        if (this.treeCtx) return treeRequest(this.treeCtx, op, unique, nodeid, body);
        this.logOnce(`enosys:${op}`, `${opcodeName(op)} on CUSE: ENOSYS`);
        return replyError(unique, ENOSYS);
    }
  }

  // ---- INIT ----

  /** A successful INIT makes the session ready (init.ts answers it). */
  private init(a: InitAnswer): Uint8Array {
    if (a.proto) {
      this.state = 'ready';
      this.proto = a.proto;
      this.opts.trace?.({ t: 'transport', op: 'INIT', kernel: `${F.FUSE_KERNEL_VERSION}.${a.proto.kernelMinor}`, answered: `${F.FUSE_KERNEL_VERSION}.${a.proto.minor}`, flags: a.proto.flags });
    }
    return a.reply;
  }

  // ---- files ----

  private open(unique: bigint, nodeid: bigint, tid: number): Uint8Array {
    if (this.kind === 'fuse') {
      const n = this.opts.tree!.get(Number(nodeid));
      if (!n) return replyError(unique, ENOENT);
      if (n.dir) return replyError(unique, EISDIR);
    }
    // The file's client is settled here: resolve afresh, with no cache between (tgid.ts).
    this.tgid.forget(tid);
    const pid = this.caller(tid);
    if (typeof pid !== 'number') return this.refuse(unique, FuseOpcode.FUSE_OPEN, tid, pid);
    const fh = this.nextFh++;
    if (this.opts.controlPid !== undefined && pid === this.opts.controlPid) {
      this.handles.set(fh, { kind: 'control' });
      this.tgid.forget(tid); // the server's own waking thread makes no ioctl: hold no pidfd of it
    } else {
      this.opts.traceCaller?.(tid);
      let file: CoreFile;
      try { file = this.dev.open(pid); } finally { this.opts.traceCaller?.(0); }
      this.handles.set(fh, { kind: 'dev', file, pid });
      try { this.opts.onClientOpen?.(pid, tid); } catch (e) { this.logOnce(`client-open:${String(e)}`, `client open hook failed: ${String(e)}`); }
      this.stats.opens++;
      if (!this.seenClients.has(pid)) { this.seenClients.add(pid); this.stats.clients++; }
    }
    return replyStruct(unique, F.fuse_open_out, { fh: BigInt(fh), open_flags: DEV_OPEN_FLAGS, backing_id: 0 });
  }

  private release(unique: bigint, body: Uint8Array): Uint8Array {
    const r = F.fuse_release_in.decode(body);
    const fh = Number(r.fh);
    const h = this.handles.get(fh);
    if (h) {
      this.handles.delete(fh);
      if (h.kind === 'dev') { this.stats.releases++; h.file.close(); }
    } else {
      this.logOnce('release-unknown', `RELEASE of unknown fh ${fh}: answered 0`);
    }
    return replyOk(unique);
  }

  private read(unique: bigint, body: Uint8Array): Uint8Array {
    const r = F.fuse_read_in.decode(body);
    const h = this.handles.get(Number(r.fh));
    if (h?.kind === 'dir') return readdir(this.opts.tree!, unique, h.ino, r.offset, r.size);
    // drm_read() with no pending event: the emulator never queues DRM events (no vblank/page flip on a render node).
    return replyError(unique, EAGAIN);
  }

  /** FUSE_IOCTL: the `n`-byte request `req` handle() just viewed, its fuse_ioctl_in after the header. */
  private ioctl(unique: bigint, tid: number, req: Uint8Array, n: number): Uint8Array | null {
    // fuse_ioctl_in read in place (the hot path): u64s straight to numbers, as Number(bigint) would round them.
    const dv = this.view!, at = this.reqAt + IN_HDR, bodyLen = n - IN_HDR;
    const inSize = dv.getUint32(at + IOCTL_IN_SIZE, true);
    if (bodyLen < IOCTL_IN + inSize) return this.malformed(unique, FuseOpcode.FUSE_IOCTL, bodyLen);
    const h = this.handles.get(u64Number(dv, at + IOCTL_FH));
    if (!h) return replyError(unique, EBADF);
    if (h.kind !== 'dev') return replyError(unique, ENOTTY);
    // Whose memory the ioctl uses: the process of the thread that made it, whoever opened the file.
    const pid = this.caller(tid);
    if (typeof pid !== 'number') return this.refuse(unique, FuseOpcode.FUSE_IOCTL, tid, pid);
    this.stats.ioctls++;
    const traceCaller = this.opts.traceCaller;
    traceCaller?.(tid);
    try {
      return bridgeIoctl(this.bridge, h.file, {
        unique, pid, flags: dv.getUint32(at + IOCTL_FLAGS, true), cmd: dv.getUint32(at + IOCTL_CMD, true),
        arg: u64Number(dv, at + IOCTL_ARG), inData: inSize ? req.subarray(IN_HDR + IOCTL_IN, IN_HDR + IOCTL_IN + inSize) : NO_BYTES, outSize: dv.getUint32(at + IOCTL_OUT_SIZE, true),
      });
    } finally { traceCaller?.(0); }
  }

  /** The process of the request's calling thread `tid`, with the header's fsuid/fsgid (the hot path: tgid.ts). */
  private caller(tid: number): number | CallerRefusal {
    const dv = this.view!, at = this.reqAt;
    return this.tgid.resolve(tid, dv.getUint32(at + IN_UID, true), dv.getUint32(at + IN_GID, true));
  }

  /** A request whose caller cannot be established: its errno, logged once per kind. */
  private refuse(unique: bigint, op: number, tid: number, r: CallerRefusal): Uint8Array {
    this.stats.refusedCallers++;
    this.logOnce(`caller:${r.kind}`, `${opcodeName(op)}: caller thread ${tid} cannot be established (${r.why}): answered ${r.errno.code}`);
    return replyError(unique, r.errno);
  }

  /**
   * A DataView over ALL of `buf`'s ArrayBuffer (read at viewArrayAt + off), cached: the loop reads into one buffer.
   * The same array as last time (a loop's read buffer) is known without asking for its `.buffer` or `.byteOffset`.
   */
  private viewOf(buf: Uint8Array): DataView {
    if (buf === this.viewArray) return this.view!;
    if (buf.buffer !== this.viewBuffer) {
      this.viewBuffer = buf.buffer;
      this.view = new DataView(buf.buffer);
      this.viewQ = new BigUint64Array(buf.buffer, 0, buf.buffer.byteLength >> 3);
    }
    this.viewArray = buf;
    this.viewArrayAt = buf.byteOffset;
    return this.view!;
  }

  /** Close every open device file (server stop): core sees a RELEASE for each. */
  closeAll(): void {
    for (const [fh, h] of this.handles) {
      this.handles.delete(fh);
      if (h.kind === 'dev') { try { h.file.close(); } catch (e) { this.logOnce('close-bug', `close failed: ${String(e)}`); } }
    }
  }
}

/**
 * A resource the server itself ran out of, thrown from below (an fd it must open, memory): answered as a driver
 * would — OPEN gets ENFILE for a file-table limit (the client's own table is not full: EMFILE would mislead it) and
 * ENOMEM for memory, any other request ENOMEM. Undefined for anything else (a bug: EIO).
 */
export function exhaustionErrno(e: unknown, op: number): Errno | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOMEM') return ENOMEM;
  if (code === 'EMFILE' || code === 'ENFILE') return op === FuseOpcode.FUSE_OPEN ? ENFILE : ENOMEM;
  return undefined;
}
