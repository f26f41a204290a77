// The preload transport's session (docs/preload-protocol.md): lanes adopted from the client channel carry OPEN,
// IOCTL and FORK frames from preloaded clients to the same core device the other transports feed. Runs on a thread
// with an event loop (fdWatch): every lane and every node socket is a watched fd, served when readable.
// - Attribution: a lane belongs to the thread that opened it, checked by the channel at the handshake; every frame's
//   SCM_CREDENTIALS must still be that process (tgid) and uid, so a request acts for the process that sent it.
// - Files: OPEN makes a socket pair, hands one end to the client as its node fd and watches ours; the DRM file is
//   released when ours hangs up (the last copy of the client's end closed, in every process). A request names its
//   file by carrying the node fd, known by its socket cookie.
// - IOCTL: the stateless planner CUSE's RETRY uses (ioctl-bridge.ts planUnrestricted): NEED lists what to send.
// - Hostile input: every malformed frame gets an errno and is logged once per kind; fds that came with it are closed.
import * as fs from 'fs';
import { E2BIG, EACCES, EBADF, EFAULT, EINVAL, EIO, ENFILE, ENODEV, ENOMEM, ENOTTY, EPERM, Errno, isErr, MAX_ERRNO } from '../../core/errno';
import type { Range } from '../../core';
import type { ChannelRequest } from '../../uffd/channel';
import type { UffdBinding, UnixMessage } from '../../uffd/native-types';
import { closeForeign } from '../../uffd/verify';
import {
  LANE_KIND, PRELOAD_PROTOCOL_VERSION, VGE_IOCTL_SAME_FILE, VGE_RANGE_POPULATE_MASK, VGE_RANGE_POPULATE_READ, VGE_RANGE_POPULATE_WRITE, VGE_MAX_BYTES, VGE_MAX_FDS, VGE_MAX_FRAME, VGE_MAX_RANGES, VgeOp, VgeReplyKind,
  vge_fd_item, vge_install, vge_range, vge_reply, vge_req,
} from '../abi/preload';
import type { CoreDevice, CoreFile } from './core-api';
import { FdItems, type FenceFds } from '../../uffd/fence-fd';
import { IovecUser, planUnrestricted, structOut } from './ioctl-bridge';
import { alloc, byteOffsetOf, viewOf } from './slab';

/** A message received on a lane or node socket: as the addon's, its data a view of the session's receive buffer. */
type Message = Omit<UnixMessage, 'data'> & { data: Uint8Array };

export interface LaneLimits {
  /** Lanes (client threads with a connection) of one uid, and in all. */
  perUid: number;
  total: number;
}
export const DEFAULT_LANE_LIMITS: Readonly<LaneLimits> = Object.freeze({ perUid: 1024, total: 8192 });

export interface PreloadStats {
  lanes: number; lanesOpened: number; opens: number; releases: number; clients: number; ioctls: number; needs: number;
  forks: number; malformed: number; refused: number; maps: number;
  /** IOCTL rounds whose ranges the server read from the client itself (no NEED). */
  peeks: number;
}

export interface PreloadSessionOptions {
  dev: CoreDevice;
  u: Pick<UffdBinding, 'unixRecvInto' | 'unixSendFds' | 'unixPair' | 'sockCookie' | 'fdWatch' | 'fdUnwatch' | 'close' | 'closeOffThread' | 'dupFd' | 'pidfdOpen' | 'pidfdExited'
    | 'fdSetCreate' | 'fdSetAdd' | 'fdSetDel' | 'fdSetReady' | 'fdSetBurstBegin' | 'fdSetWait' | 'fdSetBurstEnd'>;
  /**
   * Reads the client's own memory (process_vm_readv): the bytes of `ranges`, concatenated, or an error code. Given,
   * an IOCTL's embedded ranges are read here instead of a NEED round trip while the kernel lets this server read that
   * process (EPERM/ESRCH: the lane asks NEED from then on; EFAULT: this request asks NEED, the client answers EFAULT).
   */
  readClient?: (pid: number, ranges: readonly Range[]) => Uint8Array | string;
  /** Fence fds (FENCE_FD_OUT installs, FENCE_FD_IN waits); absent: fence flags are EOPNOTSUPP as over FUSE. */
  fences?: FenceFds;
  /** One line per kind of event (the server's log limiter's once()). */
  logOnce: (key: string, msg: string) => void;
  limits?: Partial<LaneLimits>;
  /** A thread id is one of the process's (default: /proc/<pid>/task/<tid> exists). */
  isThreadOf?: (pid: number, tid: number) => boolean;
  /** A forked child reported itself (its parent checked by the kernel's /proc); the watcher's business. */
  onFork?: (parent: number, child: number) => void;
  /** The parent of pid as the kernel says (default: /proc/<pid>/stat), -1 when unknown. */
  parentOf?: (pid: number) => number;
}

/** `last`: the file of the node fd this lane's last IOCTL carried (VGE_IOCTL_SAME_FILE names it again). */
/**
 * `peek`: the server reads the IOCTL's ranges from the client itself; `pidfd` (the lane's process, -1: none) proves
 * after each read that the pid was still that process's (not reused by another) while it was read.
 */
interface Lane { fd: number; pid: number; tid: number; uid: number; last?: NodeFile; peek: boolean; pidfd: number }
interface NodeFile { cookie: bigint; ours: number; watch: number; file: CoreFile; pid: number }

/** A reply frame and the fds it carries (made by the server, closed once sent, but those in `keep`). */
interface Out { bytes: Uint8Array; fds: number[]; keep?: readonly number[] }

/** Errors thrown from below, as the errno the request gets (the rest: EIO). */
const THROWN_ERRNO: Readonly<Record<string, Errno>> = { EACCES, EPERM, ENOMEM, EMFILE: ENFILE, ENFILE };

// Shared empties of the common request (no fd items, no populate, nothing installed): frozen, never written to.
const NO_RANGES = Object.freeze([]) as unknown as Range[];
const NO_ITEMS = Object.freeze([]) as unknown as { fd: number; attached: boolean }[];
const NO_CLIENT_FDS: ReadonlyMap<number, number> = new Map();
const NO_POPULATE = Object.freeze([]) as unknown as { addr: number; len: number; write: boolean }[];
const NO_INSTALLS = Object.freeze([]) as unknown as Install[];
const NO_FDS = Object.freeze([]) as unknown as number[];

const REQ = vge_req.size, RANGE = vge_range.size, ITEM = vge_fd_item.size, REP = vge_reply.size, INSTALL = vge_install.size;
const LE = true;
/** Reads of the client's memory per IOCTL before it is asked (NEED) instead: a plan resolves in a few. */
const PEEK_ROUNDS = 4;
/** MAP lengths travel in pages. */
const PAGE = 4096;

/**
 * The UserCopy a preload ioctl's handler gets: the fetched ranges and out buffers (IovecUser), plus the generic fd
 * items — clientFd(n): the client's fd n when the request carried it; installFd(fd, at, kept): send fd (ours, closed
 * once sent unless kept) and have the client write its new number at byte `at` of the struct's out bytes.
 */
export class PreloadUser extends IovecUser {
  readonly installs: { fd: number; at: number; kept: boolean }[] = [];
  constructor(inR: readonly Range[], inData: Uint8Array, outR: readonly Range[], private readonly fds: ReadonlyMap<number, number>) { super(inR, inData, outR, true); }
  clientFd(n: number): number | undefined { return this.fds.get(n); }
  installFd(fd: number, at: number, kept = false): void { this.installs.push({ fd, at, kept }); }
}

/** Thrown inside a frame's handling: answered as DONE with this errno, counted and logged once per kind. */
class Malformed { constructor(readonly kind: string, readonly errno: Errno, readonly why: string) {} }

export class PreloadSession {
  readonly stats: PreloadStats = { lanes: 0, lanesOpened: 0, opens: 0, releases: 0, clients: 0, ioctls: 0, needs: 0, forks: 0, malformed: 0, refused: 0, maps: 0, peeks: 0 };
  readonly limits: Readonly<LaneLimits>;
  private readonly lanes = new Map<number, Lane>();
  private readonly perUid = new Map<number, number>();
  private readonly files = new Map<bigint, NodeFile>();
  private readonly seenClients = new Set<number>();
  private readonly planCtx: { dev: CoreDevice; logOnce: (k: string, m: string) => void };
  private closed = false;
  /** The command of the ioctl being handled (for onPlanMiss: one function, not one per request). */
  private cmdNow = 0;
  private readonly onPlanMiss = (what: string): void => this.o.logOnce(`plan-miss:${what}`, `ioctl 0x${this.cmdNow.toString(16)}: handler ${what} (core plan bug): EFAULT`);
  /** Every lane is a member of one fd set, watched as one fd (lanesReadable). */
  private readonly laneSet: { set: number; watch: number };
  /** The receive buffer and its [truncated, pid, uid, gid, nfds, fds...] (unixRecvInto); frames are views of it. */
  private readonly rbuf = Buffer.alloc(VGE_MAX_FRAME);
  /** rbuf as a plain Uint8Array (its views are cheaper than a Buffer's). */
  private readonly rbytes = new Uint8Array(this.rbuf.buffer, this.rbuf.byteOffset, this.rbuf.length);
  private readonly rmeta = new Int32Array(5 + VGE_MAX_FDS + 1);

  constructor(private readonly o: PreloadSessionOptions) {
    this.limits = Object.freeze({ ...DEFAULT_LANE_LIMITS, ...o.limits });
    this.planCtx = { dev: o.dev, logOnce: o.logOnce };
    const set = o.u.fdSetCreate();
    try { this.laneSet = { set, watch: o.u.fdWatch(set, () => this.lanesReadable()) }; } catch (e) { o.u.close(set); throw e; }
  }

  /** Files open now (node sockets not hung up). */
  openFiles(): number { return this.files.size; }

  /**
   * The client channel's "lane" handler: "VGECHAN1 lane <pid> <tid>" (pid and credentials checked by the channel).
   * Adopts the connection as the lane of thread <tid>, or refuses it.
   */
  adoptLane(req: ChannelRequest): string {
    for (const f of req.fds) closeForeign(this.o.u as UffdBinding, f);
    const tidText = req.args[0];
    if (req.args.length !== 1 || !tidText || !/^[1-9]\d{0,9}$/.test(tidText)) return this.refuse('lane-malformed', `pid ${req.pid}: malformed lane handshake`, 'ERR EINVAL');
    const tid = Number(tidText);
    if (this.closed) return 'ERR ENODEV';
    if (!(this.o.isThreadOf ?? isThreadOf)(req.pid, tid)) return this.refuse('lane-tid', `pid ${req.pid} (uid ${req.uid}) claims thread ${tid}, which is not one of its threads; refused`, 'ERR EPERM');
    const n = this.perUid.get(req.uid) ?? 0;
    if (n >= this.limits.perUid || this.lanes.size >= this.limits.total) {
      return this.refuse('lane-busy', `uid ${req.uid}: ${n} lanes open (limits ${this.limits.perUid} per uid, ${this.limits.total} in all); refused`, 'ERR EAGAIN');
    }
    let pidfd = -1;
    if (this.o.readClient) {
      // The connecting process's pidfd (SO_PEERPIDFD), else one opened now for the pid the channel checked.
      pidfd = req.takePidfd();
      if (pidfd < 0) try { pidfd = this.o.u.pidfdOpen(req.pid); } catch { pidfd = -1; }
    }
    const fd = req.adopt();
    const lane: Lane = { fd, pid: req.pid, tid, uid: req.uid, peek: pidfd >= 0, pidfd };
    try { this.o.u.fdSetAdd(this.laneSet.set, fd); } catch (e) {
      // The kernel refused (out of memory, epoll's per-user limit): the lane is refused, its fd closed once the
      // channel has written that answer on it (the channel answers right after this handler returns).
      if (pidfd >= 0) { try { this.o.u.close(pidfd); } catch { /* closed */ } }
      setImmediate(() => { try { this.o.u.close(fd); } catch { /* closed */ } });
      const code = (e as NodeJS.ErrnoException).code ?? 'ENOMEM';
      return this.refuse('lane-set', `pid ${req.pid}: its lane cannot be watched (${code}); refused`, 'ERR ENOMEM');
    }
    this.lanes.set(fd, lane);
    this.perUid.set(req.uid, n + 1);
    this.stats.lanes = this.lanes.size;
    this.stats.lanesOpened++;
    return `OK ${PRELOAD_PROTOCOL_VERSION}`;
  }

  private refuse(kind: string, why: string, answer: string): string {
    this.stats.refused++;
    this.o.logOnce(`preload:${kind}`, `preload: ${why} (further ones of this kind are counted, not logged)`);
    return answer;
  }

  // ---- lanes ----

  /**
   * Some lane is readable (the lane set's watch fired): serve lanes until the event loop has something to do. The
   * thread blocks in one epoll_wait over the lanes and the loop's own epoll (fdSetWait) instead of returning to the
   * loop after each reply: one wake-up, one recvmsg and one sendmsg per request, no event-loop turn between them.
   * Where the burst cannot begin (the loop has work now), each ready lane is served once.
   */
  private lanesReadable(): void {
    const u = this.o.u, { set, watch } = this.laneSet;
    if (this.closed) return;
    if (!u.fdSetBurstBegin(set, watch)) {
      for (const fd of u.fdSetReady(set)) { const lane = this.lanes.get(fd); if (lane) this.laneReadable(lane); }
      return;
    }
    try {
      for (let fd = u.fdSetWait(set); fd >= 0 && !this.closed; fd = u.fdSetWait(set)) {
        const lane = this.lanes.get(fd);
        if (lane) this.laneReadable(lane); else u.fdSetDel(set, fd); // not a lane of ours: never again
      }
    } finally {
      if (!this.closed) u.fdSetBurstEnd(set, watch);
    }
  }

  private laneReadable(lane: Lane): void {
    // One frame per call (a lane has one request outstanding; the set is level-triggered, so a misbehaving client's
    // queued frames come again): no second recvmsg that would only answer EAGAIN (measured: reading on after the
    // reply, for a client that may already have sent its next request, gains nothing here).
    {
      const m = this.recv(lane.fd);
      if (m === null) return;
      if (m === 'eof') { this.dropLane(lane); return; }
      let out: Out;
      try { out = this.frame(lane, m); } catch (e) {
        for (const f of m.fds) this.closeAny(f);
        if (e instanceof Malformed) {
          this.stats.malformed++;
          this.o.logOnce(`preload:${e.kind}`, `preload: pid ${lane.pid} (uid ${lane.uid}): ${e.why}: answered ${e.errno.code} (further ones of this kind are counted, not logged)`);
          out = { bytes: done(seqOf(m.data), e.errno), fds: [] };
        } else {
          // Thrown from below (a resource the server lacks, a /proc file refused to it): the request fails, the server serves on.
          const code = (e as NodeJS.ErrnoException | null)?.code ?? '';
          const errno = THROWN_ERRNO[code] ?? EIO;
          this.o.logOnce(`preload:thrown:${code}`, `preload: pid ${lane.pid}: request failed (${code || String(e)}): answered ${errno.code}`);
          out = { bytes: done(seqOf(m.data), errno), fds: [] };
        }
      }
      this.send(lane, out);
    }
  }

  /**
   * One message (unixRecvInto: received into one buffer; no object built natively). Its data is a view of that
   * buffer, valid until the next receive: a frame is answered before the next one is read, and core copies what it
   * keeps (as with the FUSE loop's one read buffer).
   */
  private recvOne(fd: number): Message | null {
    const n = this.o.u.unixRecvInto(fd, this.rbuf, this.rmeta);
    if (n < 0) return null;
    const meta = this.rmeta;
    const data = this.rbytes.subarray(0, n);
    const fds: number[] = [];
    for (let i = 0; i < meta[4]!; i++) fds.push(meta[5 + i]!);
    return { data, fds, cred: meta[1]! === -1 ? null : { pid: meta[1]!, uid: meta[2]! >>> 0, gid: meta[3]! >>> 0 }, truncated: meta[0] !== 0 };
  }

  /** One message, 'eof' when the peer hung up, null when none is queued (a zero-length message reads as one). */
  private recv(fd: number): Message | 'eof' | null {
    let m: Message | null;
    try { m = this.recvOne(fd); } catch { return 'eof'; }
    if (!m) return null;
    if (m.data.length > 0 || m.fds.length > 0) return m;
    // recv() returns 0 at hang-up and for an empty message: only hang-up returns 0 again.
    let again: Message | null;
    try { again = this.recvOne(fd); } catch { return 'eof'; }
    if (again && again.data.length === 0 && again.fds.length === 0) return 'eof';
    if (again) for (const f of again.fds) this.closeAny(f);
    return m;
  }

  private send(lane: Lane, out: Out): void {
    let sent: number;
    try { sent = this.o.u.unixSendFds(lane.fd, out.bytes, out.fds); } catch { sent = -2; }
    // The client has its copies now (or never will). Every fd a reply carries is one the server made (a node socket,
    // a memfd copy, a fence eventfd copy): its close never blocks, so no off-thread close and no fd probe.
    for (const f of out.fds) if (!out.keep?.includes(f)) { try { this.o.u.close(f); } catch { /* closed */ } }
    if (sent === -1) {
      this.stats.malformed++;
      this.o.logOnce('preload:stalled', `preload: pid ${lane.pid} does not read its replies (socket buffer full): lane closed`);
    }
    if (sent < 0) this.dropLane(lane);
  }

  private dropLane(lane: Lane): void {
    if (this.lanes.get(lane.fd) !== lane) return;
    this.lanes.delete(lane.fd);
    this.o.u.fdSetDel(this.laneSet.set, lane.fd);
    try { this.o.u.close(lane.fd); } catch { /* closed */ }
    if (lane.pidfd >= 0) { try { this.o.u.close(lane.pidfd); } catch { /* closed */ } lane.pidfd = -1; }
    const n = (this.perUid.get(lane.uid) ?? 1) - 1;
    if (n > 0) this.perUid.set(lane.uid, n); else this.perUid.delete(lane.uid);
    this.stats.lanes = this.lanes.size;
  }

  // ---- frames ----

  private frame(lane: Lane, m: Message): Out {
    if (m.truncated) throw new Malformed('truncated', E2BIG, `a frame longer than ${VGE_MAX_FRAME} bytes or with more than ${VGE_MAX_FDS + 1} fds`);
    // The kernel's word on the sender: the lane's own process and user, or nobody's request.
    if (!m.cred || m.cred.pid !== lane.pid || m.cred.uid !== lane.uid) {
      throw new Malformed('credentials', EPERM, `a frame on the lane of pid ${lane.pid} came from pid ${m.cred?.pid ?? '?'} uid ${m.cred?.uid ?? '?'}`);
    }
    const d = m.data;
    if (d.length < REQ) throw new Malformed('short', EINVAL, `a ${d.length}-byte frame (header ${REQ})`);
    const dv = new DataView(d.buffer, d.byteOffset, d.length);
    const op = dv.getUint32(vge_req.offsetOf('op'), LE);
    const nranges = dv.getUint32(vge_req.offsetOf('nranges'), LE);
    const nfds = dv.getUint32(vge_req.offsetOf('nfds'), LE);
    if (nranges > VGE_MAX_RANGES || nfds > VGE_MAX_FDS) throw new Malformed('counts', EINVAL, `${nranges} ranges and ${nfds} fd items (limits ${VGE_MAX_RANGES}, ${VGE_MAX_FDS})`);
    const seq = dv.getUint32(vge_req.offsetOf('seq'), LE);
    switch (op) {
      case VgeOp.VGE_OP_OPEN: return this.open(lane, m, seq, dv);
      case VgeOp.VGE_OP_IOCTL: return this.ioctl(lane, m, seq, dv, nranges, nfds);
      case VgeOp.VGE_OP_FORK: return this.fork(lane, m, seq, dv);
      case VgeOp.VGE_OP_MAP: return this.map(m, seq, dv);
      default: throw new Malformed('op', EINVAL, `unknown op ${op}`);
    }
  }

  /** Frames that carry no fds: any that came are closed unseen. */
  private noFds(m: Message, out: Out): Out {
    for (const f of m.fds) this.closeAny(f);
    return out;
  }

  private open(lane: Lane, m: Message, seq: number, dv: DataView): Out {
    if (dv.byteLength !== REQ) throw new Malformed('length', EINVAL, `OPEN of ${dv.byteLength} bytes`);
    this.noFds(m, { bytes: new Uint8Array(0), fds: [] });
    const [ours, theirs] = this.o.u.unixPair();
    const cookie = this.o.u.sockCookie(theirs);
    if (cookie === null) { this.o.u.close(ours); this.o.u.close(theirs); return { bytes: done(seq, EIO), fds: [] }; }
    const file = this.o.dev.open(lane.pid);
    const nf: NodeFile = { cookie, ours, watch: -1, file, pid: lane.pid };
    nf.watch = this.o.u.fdWatch(ours, () => this.nodeReadable(nf));
    this.files.set(cookie, nf);
    this.stats.opens++;
    if (!this.seenClients.has(lane.pid)) { this.seenClients.add(lane.pid); this.stats.clients++; }
    return { bytes: done(seq, 0), fds: [theirs] };
  }

  /** Our end of a node socket: hang-up releases the file; anything sent on it is read and dropped. */
  private nodeReadable(nf: NodeFile): void {
    for (let i = 0; i < 8; i++) {
      const m = this.recv(nf.ours);
      if (m === null) return;
      if (m === 'eof') { this.release(nf); return; }
      for (const f of m.fds) this.closeAny(f);
      this.stats.malformed++;
      this.o.logOnce('preload:node-traffic', `preload: pid ${nf.pid}'s node fd carried a message (nothing travels there): dropped`);
    }
  }

  private release(nf: NodeFile): void {
    if (this.files.get(nf.cookie) !== nf) return;
    this.files.delete(nf.cookie);
    this.o.u.fdUnwatch(nf.watch);
    try { this.o.u.close(nf.ours); } catch { /* closed */ }
    this.stats.releases++;
    this.o.fences?.forget(nf);
    try { nf.file.close(); } catch (e) { this.o.logOnce('preload:close-bug', `preload: close failed: ${String(e)}`); }
  }

  private ioctl(lane: Lane, m: Message, seq: number, dv: DataView, nranges: number, nfds: number): Out {
    const head = REQ + nranges * RANGE + nfds * ITEM;
    if (dv.byteLength < head) throw new Malformed('length', EINVAL, `IOCTL of ${dv.byteLength} bytes, its counts say at least ${head}`);
    const supplied: Range[] = [];
    // Ranges the client faulted in itself (a NEED asked): named with their flag, no bytes follow for them.
    let populated: Range[] = NO_RANGES;
    let total = 0;
    for (let i = 0; i < nranges; i++) {
      const at = REQ + i * RANGE;
      const addr = dv.getBigUint64(at, LE), len = dv.getUint32(at + 8, LE), rflags = dv.getUint32(at + 12, LE);
      if (rflags & ~VGE_RANGE_POPULATE_MASK) throw new Malformed('range', EINVAL, `range flags 0x${rflags.toString(16)}`);
      if (addr > BigInt(Number.MAX_SAFE_INTEGER)) throw new Malformed('range', EINVAL, `a range at 0x${addr.toString(16)}`);
      if (rflags) { (populated === NO_RANGES ? populated = [] : populated).push({ addr: Number(addr), len }); continue; }
      if (len > VGE_MAX_BYTES) throw new Malformed('range', EINVAL, `a range at 0x${addr.toString(16)} of ${len} bytes`);
      supplied.push({ addr: Number(addr), len });
      total += len;
    }
    if (total > VGE_MAX_BYTES || dv.byteLength !== head + total) throw new Malformed('length', EINVAL, `IOCTL of ${dv.byteLength} bytes, its counts say ${head + total}`);
    const items: { fd: number; attached: boolean }[] = nfds ? [] : NO_ITEMS;
    let attached = 0;
    for (let i = 0; i < nfds; i++) {
      const at = REQ + nranges * RANGE + i * ITEM;
      const it = { fd: dv.getInt32(at, LE), attached: dv.getUint32(at + 4, LE) !== 0 };
      items.push(it);
      if (it.attached) attached++;
    }
    const flags = dv.getUint32(vge_req.offsetOf('flags'), LE);
    if (flags & ~VGE_IOCTL_SAME_FILE) throw new Malformed('flags', EINVAL, `IOCTL flags 0x${flags.toString(16)}`);
    const same = (flags & VGE_IOCTL_SAME_FILE) !== 0;
    const nodeFds = same ? 0 : 1;
    if (m.fds.length !== nodeFds + attached) throw new Malformed('fds', EBADF, `IOCTL with ${m.fds.length} fds, its items say ${nodeFds + attached}${same ? '' : ' (the node fd first)'}`);
    let cookie: bigint | null;
    let nf: NodeFile | undefined;
    if (same) {
      // The file this lane's previous IOCTL proved by carrying its node fd, while it is still open.
      nf = lane.last && this.files.get(lane.last.cookie) === lane.last ? lane.last : undefined;
      cookie = nf ? nf.cookie : null;
    } else {
      cookie = this.o.u.sockCookie(m.fds[0]!);
      nf = cookie === null ? undefined : this.files.get(cookie);
      this.closeAny(m.fds[0]!, cookie !== null);
      lane.last = nf;
    }
    // The client's fds by their numbers in the client, for a handler that names one ("need fd N"); closed after.
    if (attached === 0) return this.ioctlOn(lane, nf, cookie, seq, dv, supplied, populated, head, total, items, NO_CLIENT_FDS);
    const clientFds = new Map<number, number>();
    let k = nodeFds;
    for (const it of items) if (it.attached) clientFds.set(it.fd, m.fds[k++]!);
    try {
      return this.ioctlOn(lane, nf, cookie, seq, dv, supplied, populated, head, total, items, clientFds);
    } finally {
      for (const f of clientFds.values()) this.closeAny(f);
    }
  }

  private ioctlOn(lane: Lane, nf: NodeFile | undefined, cookie: bigint | null, seq: number, dv: DataView, supplied: readonly Range[], populated: readonly Range[], head: number, total: number,
    items: readonly { fd: number; attached: boolean }[], clientFds: ReadonlyMap<number, number>): Out {
    const cmd = dv.getUint32(vge_req.offsetOf('cmd'), LE);
    // A socket that is not a node fd of ours: ioctl on it is no DRM ioctl (the kernel's socket answer).
    if (!nf) return { bytes: done(seq, cookie === null ? EBADF : ENOTTY), fds: [] };
    const argBig = dv.getBigUint64(vge_req.offsetOf('arg'), LE);
    if (argBig > BigInt(Number.MAX_SAFE_INTEGER)) return { bytes: done(seq, EFAULT), fds: [] };
    const arg = Number(argBig);
    let data = new Uint8Array(dv.buffer, dv.byteOffset + head, total);
    this.stats.ioctls++;
    let s = planUnrestricted(this.planCtx, nf.file, cmd, arg, data, null, supplied);
    // Ranges the plan needs beyond those sent (embedded pointers, the struct at another size): read from the client
    // here while the kernel allows it, instead of a NEED round trip. The frame's credentials are the lane's process.
    for (let round = 0; s.kind === 'retry' && lane.peek && round < PEEK_ROUNDS; round++) {
      const got = this.peek(lane, s.in);
      if (got === null) break;
      supplied = s.in;
      data = got;
      s = planUnrestricted(this.planCtx, nf.file, cmd, arg, data, null, supplied);
    }
    if (s.kind === 'error') return { bytes: done(seq, s.errno), fds: [] };
    if (s.kind === 'retry') { this.stats.needs++; return { bytes: need(seq, s.in, []), fds: [] }; }
    const { plan, inSize, outSize } = s;
    // "need fd N": a plan may name client fds (its `fds`); each must have been named by the request.
    const wantFds = (plan as { fds?: readonly number[] }).fds ?? [];
    // Pages the handler would fault in from outside: the client faults them in itself first (MADV_POPULATE_*).
    const pop = plan.populate?.length ? populateChunks(plan.populate, VGE_MAX_RANGES - 1 - plan.in.length) : NO_POPULATE;
    const popMissing = pop.length > 0 && pop.some((p) => !populated.some((q) => q.addr === p.addr && q.len === p.len));
    if (popMissing || (wantFds.length > 0 && wantFds.some((n) => !items.some((i) => i.fd === n)))) {
      this.stats.needs++;
      const again: NeedRange[] = [...(inSize > 0 ? [{ addr: arg, len: inSize }] : []), ...plan.in];
      for (const p of pop) again.push({ addr: p.addr, len: p.len, populate: p.write ? 'write' : 'read' });
      return { bytes: need(seq, again, wantFds), fds: [] };
    }
    const user = new PreloadUser(plan.in, s.rest, plan.out, clientFds);
    this.cmdNow = cmd;
    user.onMiss = this.onPlanMiss;
    // Fence fds: the server's own copy of a client fd the request named (a named fd not attached is no fence: EINVAL,
    // as sync_file_get_fence finds none), and each fence fd installed goes out as a copy (sent fds are closed).
    const u = this.o.u;
    const fdItems = this.o.fences ? new FdItems(this.o.fences, nf, (n) => { const f = user.clientFd(n); return f === undefined ? EINVAL : u.dupFd(f); }) : undefined;
    const r = nf.file.ioctl(lane.pid, cmd, s.structIn.subarray(0, inSize), user, fdItems);
    fdItems?.finish(!isErr(r.result), (at, fd, kept) => user.installFd(fd, at, kept));
    const ranges: Range[] = [];
    const bufs: Uint8Array[] = [];
    if (outSize > 0) { ranges.push({ addr: arg, len: outSize }); bufs.push(structOut(r.out, s.structIn, outSize)); }
    for (let i = 0; i < plan.out.length; i++) { ranges.push(plan.out[i]!); bufs.push(user.outBufs[i]!); }
    if (user.installs.length === 0) return { bytes: doneWith(seq, r.result, ranges, bufs, NO_INSTALLS, this.o.logOnce), fds: NO_FDS };
    const installs = user.installs.filter((i) => i.at + 4 <= (ranges[0]?.len ?? 0));
    if (installs.length !== user.installs.length) this.o.logOnce('preload:install-range', `ioctl 0x${cmd.toString(16)}: an fd to install lies outside the struct's out bytes: not installed`);
    const fds = installs.map((i) => i.fd);
    for (const i of user.installs) if (!installs.includes(i) && !i.kept) this.closeAny(i.fd, true);
    const keep = installs.filter((i) => i.kept).map((i) => i.fd);
    return { bytes: doneWith(seq, r.result, ranges, bufs, installs.map((i) => ({ range: 0, at: i.at })), this.o.logOnce), fds, ...(keep.length ? { keep } : {}) };
  }

  /** The bytes of `ranges` read from the lane's process, or null (NEED them): a refusal turns reading off for the lane. */
  private peek(lane: Lane, ranges: readonly Range[]): Uint8Array | null {
    let n = 0;
    for (const r of ranges) n += r.len;
    if (ranges.length > VGE_MAX_RANGES || n > VGE_MAX_BYTES) return null;
    const got = this.o.readClient!(lane.pid, ranges);
    if (typeof got !== 'string') {
      // Read by pid: the bytes are the lane's process's only if it was still alive after the read (a live process's
      // pid is never reused). An exited one is asked NEED, which its lane no longer answers.
      if (this.o.u.pidfdExited(lane.pidfd)) return null;
      this.stats.peeks++;
      return got;
    }
    if (got !== 'EFAULT') {
      lane.peek = false;
      this.o.logOnce(`preload:peek-${got}`, `preload: pid ${lane.pid}'s memory cannot be read by the server (${got}): its lanes send embedded ranges after a NEED`);
    }
    return null;
  }

  /**
   * MAP {arg = offset, cmd = length in pages, flags = prot}, the node fd attached: the object's memfd (a copy, closed
   * once sent) and the offset inside it (aux); the kernel's errnos otherwise (docs/semantics.md §10). The library maps
   * the memfd itself, at the caller's address and flags.
   */
  private map(m: Message, seq: number, dv: DataView): Out {
    if (dv.byteLength !== REQ) throw new Malformed('length', EINVAL, `MAP of ${dv.byteLength} bytes`);
    if (m.fds.length !== 1) throw new Malformed('fds', EBADF, `MAP with ${m.fds.length} fds (the node fd alone)`);
    const cookie = this.o.u.sockCookie(m.fds[0]!);
    const nf = cookie === null ? undefined : this.files.get(cookie);
    this.closeAny(m.fds[0]!, cookie !== null);
    // mmap of a socket that is no node fd of ours: ENODEV, the kernel's answer for a socket.
    if (!nf) return { bytes: done(seq, cookie === null ? EBADF : ENODEV), fds: [] };
    const offset = dv.getBigUint64(vge_req.offsetOf('arg'), LE);
    const pages = dv.getUint32(vge_req.offsetOf('cmd'), LE);
    this.stats.maps++;
    const t = nf.file.map ? nf.file.map(offset, pages * PAGE) : ENODEV;
    if (isErr(t)) return { bytes: done(seq, t), fds: [] };
    if (t.memory.fd === undefined) return { bytes: done(seq, ENODEV), fds: [] }; // memory with no fd cannot leave this process
    const fd = this.o.u.dupFd(t.memory.fd);
    const bytes = done(seq, 0);
    viewOf(bytes).setBigUint64(byteOffsetOf(bytes) + vge_reply.offsetOf('aux'), BigInt(t.offset), LE);
    return { bytes, fds: [fd] };
  }

  /** FORK {flags = the parent}: sent by the child; the parent is taken from the kernel, never from the frame. */
  private fork(lane: Lane, m: Message, seq: number, dv: DataView): Out {
    if (dv.byteLength !== REQ) throw new Malformed('length', EINVAL, `FORK of ${dv.byteLength} bytes`);
    this.noFds(m, { bytes: new Uint8Array(0), fds: [] });
    const claimed = dv.getUint32(vge_req.offsetOf('flags'), LE);
    const parent = (this.o.parentOf ?? parentOf)(lane.pid);
    if (parent !== claimed) throw new Malformed('fork-parent', EPERM, `FORK names parent ${claimed}, the kernel says ${parent}`);
    this.stats.forks++;
    this.o.onFork?.(parent, lane.pid);
    return { bytes: done(seq, 0), fds: [] };
  }

  /** Close an fd a client sent: a socket's close never blocks; anything else may (a FUSE file's flush): off-thread. */
  private closeAny(fd: number, isSocket?: boolean): void {
    const sock = isSocket ?? this.o.u.sockCookie(fd) !== null;
    if (sock) { try { this.o.u.close(fd); } catch { /* closed */ } return; }
    closeForeign(this.o.u as UffdBinding, fd);
  }

  /** Stop serving: every lane closed (a client blocked on one gets ENODEV), every file released. */
  closeAll(): number {
    if (this.closed) return 0;
    this.closed = true;
    for (const lane of [...this.lanes.values()]) this.dropLane(lane);
    this.o.u.fdUnwatch(this.laneSet.watch);
    try { this.o.u.close(this.laneSet.set); } catch { /* closed */ }
    const open = this.files.size;
    for (const nf of [...this.files.values()]) this.release(nf);
    return open;
  }
}

function seqOf(d: Uint8Array): number {
  return d.length >= 8 ? new DataView(d.buffer, d.byteOffset, d.length).getUint32(vge_req.offsetOf('seq'), LE) : 0;
}

/** Writes the vge_reply header of a reply whose byte 0 is at `at` of `dv` (a slab reply: alloc(), viewOf()). */
function header(dv: DataView, at: number, kind: VgeReplyKind, seq: number, result: number, err: number, nranges: number, nfds: number): void {
  dv.setUint32(at + R_KIND, kind, LE);
  dv.setUint32(at + R_SEQ, seq, LE);
  dv.setInt32(at + R_RESULT, result, LE);
  dv.setUint32(at + R_ERR, err, LE);
  dv.setUint32(at + R_NRANGES, nranges, LE);
  dv.setUint32(at + R_NFDS, nfds, LE);
}
const R_KIND = vge_reply.offsetOf('kind'), R_SEQ = vge_reply.offsetOf('seq'), R_RESULT = vge_reply.offsetOf('result'), R_ERR = vge_reply.offsetOf('err');
const R_NRANGES = vge_reply.offsetOf('nranges'), R_NFDS = vge_reply.offsetOf('nfds');

/** DONE with no data: the result (0) or an errno. */
export function done(seq: number, e: Errno | 0): Uint8Array {
  const buf = alloc(REP);
  header(viewOf(buf), byteOffsetOf(buf), VgeReplyKind.VGE_DONE, seq, 0, e === 0 ? 0 : checked(e), 0, 0);
  return buf;
}

function checked(e: Errno): number { return Number.isInteger(e.errno) && e.errno >= 1 && e.errno <= MAX_ERRNO ? e.errno : EIO.errno; }

/** A vge_range's len is 32 bits: populate ranges go in chunks of 1 GiB; more chunks than `room`: none (the pin then faults the pages in itself). */
const POPULATE_CHUNK = 1 << 30;
function populateChunks(ranges: readonly { addr: number; len: number; write: boolean }[], room: number): { addr: number; len: number; write: boolean }[] {
  const out: { addr: number; len: number; write: boolean }[] = [];
  for (const r of ranges) {
    for (let off = 0; off < r.len; off += POPULATE_CHUNK) {
      if (out.length >= room) return [];
      out.push({ addr: r.addr + off, len: Math.min(POPULATE_CHUNK, r.len - off), write: r.write });
    }
  }
  return out;
}

/** A range a NEED asks for: its bytes, or (populate) that the client fault it in itself and name it back. */
export interface NeedRange extends Range { populate?: 'write' | 'read' }

/** NEED: the complete list of ranges to send next (the struct first) and the fd numbers to attach. */
export function need(seq: number, ranges: readonly NeedRange[], fds: readonly number[]): Uint8Array {
  const buf = alloc(REP + ranges.length * RANGE + fds.length * ITEM);
  const dv = viewOf(buf), base = byteOffsetOf(buf);
  header(dv, base, VgeReplyKind.VGE_NEED, seq, 0, 0, ranges.length, fds.length);
  let at = base + REP;
  for (const r of ranges) {
    dv.setBigUint64(at, BigInt(r.addr), LE); dv.setUint32(at + 8, r.len, LE);
    dv.setUint32(at + 12, r.populate === 'write' ? VGE_RANGE_POPULATE_WRITE : r.populate === 'read' ? VGE_RANGE_POPULATE_READ : 0, LE);
    at += RANGE;
  }
  for (const f of fds) { dv.setInt32(at, f, LE); at += ITEM; }
  return buf;
}

/** An fd the reply carries and where its number goes: byte `at` of out range `range`. */
export interface Install { range: number; at: number }

/** DONE of an ioctl: its result (or errno), the out ranges with their bytes, the install items of the fds it carries. */
export function doneWith(seq: number, result: number | Errno, ranges: readonly Range[], bufs: readonly Uint8Array[], installs: readonly Install[], logOnce?: (k: string, m: string) => void): Uint8Array {
  let res = 0, err = 0;
  if (isErr(result)) err = checked(result);
  else if (Number.isInteger(result) && result >= 0 && result <= 0x7fffffff) res = result;
  else { logOnce?.('preload:bad-result', `ioctl result ${String(result)} is not an int >= 0, answered EIO`); err = EIO.errno; }
  let n = REP + ranges.length * RANGE + installs.length * INSTALL;
  for (const r of ranges) n += r.len;
  const buf = alloc(n);
  const dv = viewOf(buf), base = byteOffsetOf(buf);
  header(dv, base, VgeReplyKind.VGE_DONE, seq, res, err, ranges.length, installs.length);
  let at = base + REP;
  for (const r of ranges) { dv.setBigUint64(at, BigInt(r.addr), LE); dv.setUint32(at + 8, r.len, LE); at += RANGE; }
  for (const i of installs) { dv.setUint32(at, i.range, LE); dv.setUint32(at + 4, i.at, LE); at += INSTALL; }
  at -= base;
  for (let i = 0; i < ranges.length; i++) { buf.set(bufs[i]!.subarray(0, ranges[i]!.len), at); at += ranges[i]!.len; }
  return buf;
}

function isThreadOf(pid: number, tid: number): boolean {
  try { return fs.statSync(`/proc/${pid}/task/${tid}`).isDirectory(); } catch { return false; }
}

function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return -1; }
}
