// The client channel: how a client process gives the server something of its own (today its userfaultfd; later
// the preload transport's requests) over a unix socket every local user may reach, while the server runs as root.
// Nothing a peer says about itself is believed: the kernel tells who it is.
//
// - Socket: SOCK_SEQPACKET (one message per recvmsg, fds and credentials attached to it), bound at <dir>/sock in a
//   directory of the server's own (created 0700 under /run/virtgpu-emu, opened to 0711 once the socket has its
//   owner and mode; default mode 0666 as the node's). Directories left by killed servers are swept at start.
// - Peer: SO_PEERCRED (pid, uid, gid at connect) and SO_PEERPIDFD (a pidfd of that very process, kernel >= 6.5;
//   before, pidfd_open of the pid) are taken at accept.
// - Message (one per connection): "VGECHAN1 <kind> <pid>[ <arg>...]" (printable ASCII, <= 256 bytes), with its fds
//   as SCM_RIGHTS. The receiving socket has SO_PASSCRED, so the kernel attaches SCM_CREDENTIALS: the sender's real
//   tgid and uid, or the values it sent, which the kernel checked (only CAP_SYS_ADMIN / CAP_SETUID may differ).
//   The message is handled only when <pid> = SCM_CREDENTIALS pid = SO_PEERCRED pid and the uids agree; otherwise
//   "ERR EPERM", whatever it carried (its fds are closed unseen).
// - Answer: one line, "OK[ ...]" or "ERR <ERRNO>[ ...]"; then the connection is closed, unless its handler adopted it.
// - Limits: a connection that has not sent its message within 2 s is closed; at most 64 open connections per uid
//   and 1024 in all (the next one is answered "ERR EAGAIN" and closed); every refusal is counted and logged once
//   per kind, with numbers only (pids, uids), never a path.
// Readiness comes from the addon's fdWatch (a libuv poll handle on the calling thread's event loop).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadUffd } from './load';
import type { UffdBinding, UnixMessage, UnixPeer } from './native-types';
import { closeForeign } from './verify';

export const CHANNEL_MAGIC = 'VGECHAN1';
/** The socket's name inside its directory. */
export const CHANNEL_SOCKET = 'sock';
/** Default parent of the channel directories (a root server's). */
export const CHANNEL_BASE = '/run/virtgpu-emu';

export interface ChannelLimits {
  /** A connection must deliver its message within this long (ms). */
  handshakeMs: number;
  /** Open connections of one uid. */
  perUid: number;
  /** Open connections in all. */
  total: number;
  /** Longest message (bytes) and most fds one message may carry; more is refused (EMSGSIZE). */
  maxBytes: number;
  maxFds: number;
}

export const DEFAULT_CHANNEL_LIMITS: Readonly<ChannelLimits> = Object.freeze({ handshakeMs: 2000, perUid: 64, total: 1024, maxBytes: 256, maxFds: 4 });

/** One message, its sender established by the kernel. */
export interface ChannelRequest {
  readonly kind: string;
  readonly args: readonly string[];
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /**
   * The fds it carried, owned by the handler from the call on: keep or close every one (also when throwing), those
   * not verified with verify.ts closeForeign (their close may hang).
   */
  readonly fds: readonly number[];
  /** The sender's pidfd, owned by the caller from then on (-1 when none could be had). */
  takePidfd(): number;
  /**
   * Keep the connection (a kind whose conversation goes on, e.g. the preload transport's lanes): its fd is the
   * caller's from the call on, the channel no longer watches, limits or closes it; the answer is still sent.
   */
  adopt(): number;
}

/** Returns the answer line without its newline: "OK[ ...]" or "ERR <ERRNO>[ ...]". */
export type ChannelHandler = (req: ChannelRequest) => string;

export interface ChannelOptions {
  binding?: UffdBinding;
  log?: (msg: string) => void;
  /** Parent of the channel's own directory (default /run/virtgpu-emu as root, else the system's temporary directory). */
  base?: string;
  /** The socket's mode (default 0o666) and owner (default: ours). */
  mode?: number;
  uid?: number;
  gid?: number;
  limits?: Partial<ChannelLimits>;
}

interface Conn { peer: UnixPeer; watch: number; timer: NodeJS.Timeout }

export interface ChannelStats {
  accepted: number;
  /** Messages handled (credentials matched). */
  handled: number;
  timedOut: number;
  /** Refusals by reason (busy-uid, busy-total, credentials, malformed, truncated, kind, closed-early, handler). */
  refused: Record<string, number>;
  open: number;
}

export class Channel {
  readonly path: string;
  readonly dir: string;
  readonly limits: Readonly<ChannelLimits>;
  private readonly u: UffdBinding;
  private readonly log: (msg: string) => void;
  private readonly handlers = new Map<string, ChannelHandler>();
  private readonly conns = new Map<number, Conn>();
  private readonly perUid = new Map<number, number>();
  private readonly told = new Set<string>();
  private listenFd: number;
  private listenWatch = -1;
  private resume: NodeJS.Timeout | null = null;
  private readonly st: ChannelStats = { accepted: 0, handled: 0, timedOut: 0, refused: {}, open: 0 };

  constructor(opts: ChannelOptions = {}) {
    this.u = opts.binding ?? loadUffd();
    this.log = opts.log ?? (() => undefined);
    this.limits = Object.freeze({ ...DEFAULT_CHANNEL_LIMITS, ...opts.limits });
    const base = opts.base ?? (process.getuid?.() === 0 ? CHANNEL_BASE : os.tmpdir());
    this.dir = privateDir(base);
    this.path = path.join(this.dir, CHANNEL_SOCKET);
    try {
      this.listenFd = this.u.unixListen(this.path, 512);
      fs.chmodSync(this.path, opts.mode ?? 0o666);
      if (opts.uid !== undefined || opts.gid !== undefined) fs.chownSync(this.path, opts.uid ?? -1, opts.gid ?? -1);
      fs.chmodSync(this.dir, 0o711); // reachable now, by whoever the socket's mode lets in; not listable
    } catch (e) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
    this.listenWatch = this.u.fdWatch(this.listenFd, () => this.acceptAll());
  }

  /** Handle messages of `kind` (lower-case letters, digits, '-'). */
  handle(kind: string, h: ChannelHandler): void {
    if (!/^[a-z0-9-]{1,16}$/.test(kind)) throw new TypeError(`channel kind ${JSON.stringify(kind)}: [a-z0-9-]{1,16}`);
    this.handlers.set(kind, h);
  }

  get stats(): ChannelStats { return { ...this.st, refused: { ...this.st.refused }, open: this.conns.size }; }
  /** Open connections of `uid`. */
  connections(uid: number): number { return this.perUid.get(uid) ?? 0; }

  private refuse(reason: string, detail: string): void {
    this.st.refused[reason] = (this.st.refused[reason] ?? 0) + 1;
    this.tell(reason, detail);
  }

  /** Logs the first event of each kind; later ones are only counted (stats). */
  private tell(kind: string, detail: string): void {
    if (this.told.has(kind)) return;
    this.told.add(kind);
    this.log(`client channel: ${detail} (further ones of this kind are counted, not logged)`);
  }

  private acceptAll(): void {
    for (let i = 0; i < 256 && this.listenFd >= 0; i++) {
      let peer: UnixPeer | null;
      try { peer = this.u.unixAccept(this.listenFd); } catch (e) {
        // EMFILE/ENFILE: the pending connection stays queued; stop listening for a moment instead of spinning.
        const code = (e as { code?: string }).code ?? 'EIO';
        this.refuse(`accept-${code}`, `accept failed (${code}); pausing 100 ms`);
        this.pause(100);
        return;
      }
      if (!peer) return;
      this.admit(peer);
    }
  }

  private pause(ms: number): void {
    if (this.listenWatch < 0 || this.resume) return;
    this.u.fdUnwatch(this.listenWatch);
    this.listenWatch = -1;
    this.resume = setTimeout(() => {
      this.resume = null;
      if (this.listenFd >= 0) this.listenWatch = this.u.fdWatch(this.listenFd, () => this.acceptAll());
    }, ms);
    this.resume.unref();
  }

  private admit(peer: UnixPeer): void {
    const n = this.perUid.get(peer.uid) ?? 0;
    const busy = n >= this.limits.perUid ? 'busy-uid' : this.conns.size >= this.limits.total ? 'busy-total' : null;
    if (busy) {
      this.refuse(busy, busy === 'busy-uid' ? `uid ${peer.uid} has ${n} connections open (limit ${this.limits.perUid}); refused` : `${this.conns.size} connections open (limit ${this.limits.total}); refused`);
      this.answerAndClose(peer, 'ERR EAGAIN too many connections');
      return;
    }
    if (peer.pidfd < 0) { try { peer.pidfd = this.u.pidfdOpen(peer.pid); } catch { peer.pidfd = -1; } }
    this.st.accepted++;
    this.perUid.set(peer.uid, n + 1);
    const timer = setTimeout(() => {
      this.st.timedOut++;
      this.tell('timeout', `pid ${peer.pid} (uid ${peer.uid}) sent nothing within ${this.limits.handshakeMs} ms; closed`);
      this.drop(peer.fd);
    }, this.limits.handshakeMs);
    timer.unref();
    let watch: number;
    try { watch = this.u.fdWatch(peer.fd, () => this.readable(peer.fd)); } catch (e) {
      clearTimeout(timer);
      this.perUid.set(peer.uid, n);
      this.refuse('watch', `cannot watch a connection (${(e as { code?: string }).code ?? String(e)})`);
      this.closePeer(peer);
      return;
    }
    this.conns.set(peer.fd, { peer, watch, timer });
  }

  private readable(fd: number): void {
    const c = this.conns.get(fd);
    if (!c) return;
    let m: UnixMessage | null;
    try { m = this.u.unixRecv(fd, this.limits.maxBytes, this.limits.maxFds); } catch { this.drop(fd); return; }
    if (!m) return;
    if (m.data.length === 0 && m.fds.length === 0) { this.refuse('closed-early', `pid ${c.peer.pid} (uid ${c.peer.uid}) closed before sending`); this.drop(fd); return; }
    const reply = this.dispatch(c.peer, m, () => {
      const kept = this.forget(fd);
      if (kept && kept.peer.pidfd >= 0) { try { this.u.close(kept.peer.pidfd); } catch { /* closed */ } kept.peer.pidfd = -1; }
      return fd;
    });
    this.answer(fd, reply);
    this.drop(fd);
  }

  /** Checks the message and its credentials; hands it (and its fds) to the kind's handler or closes them. */
  private dispatch(peer: UnixPeer, m: UnixMessage, adopt: () => number): string {
    const closeAll = (): void => { for (const f of m.fds) closeForeign(this.u, f); };
    const who = `pid ${peer.pid} (uid ${peer.uid})`;
    if (m.truncated) { closeAll(); this.refuse('truncated', `${who}: message longer than ${this.limits.maxBytes} bytes or with more than ${this.limits.maxFds} fds`); return 'ERR EMSGSIZE'; }
    const text = m.data.toString('latin1').replace(/\n$/, '');
    const words = /^[\x21-\x7e]+( [\x21-\x7e]+)*$/.test(text) ? text.split(' ') : [];
    const [magic, kind, pidText, ...args] = words;
    if (magic !== CHANNEL_MAGIC || !kind || !pidText || !/^[1-9]\d{0,9}$/.test(pidText)) { closeAll(); this.refuse('malformed', `${who}: malformed message`); return 'ERR EINVAL'; }
    const claimed = Number(pidText);
    const cred = m.cred;
    if (!cred || cred.pid !== peer.pid || cred.uid !== peer.uid || claimed !== peer.pid) {
      closeAll();
      this.refuse('credentials', `${who}: the message claims pid ${claimed}, the kernel says pid ${cred ? cred.pid : '?'} uid ${cred ? cred.uid : '?'}; refused`);
      return 'ERR EPERM';
    }
    const h = this.handlers.get(kind);
    if (!h) { closeAll(); this.refuse('kind', `${who}: unknown message kind`); return 'ERR ENOSYS'; }
    let taken = false;
    const req: ChannelRequest = {
      kind, args, pid: peer.pid, uid: peer.uid, gid: peer.gid, fds: m.fds,
      takePidfd: () => { if (taken) return -1; taken = true; const p = peer.pidfd; peer.pidfd = -1; return p; },
      adopt,
    };
    try {
      this.st.handled++;
      return h(req);
    } catch (e) {
      this.refuse('handler', `${who}: ${kind} handler failed: ${(e as { code?: string }).code ?? (e as Error).message}`);
      return 'ERR EIO';
    }
  }

  private answer(fd: number, line: string): void {
    try { this.u.unixSend(fd, Buffer.from(line + '\n', 'latin1')); } catch { /* the peer is gone */ }
  }

  private answerAndClose(peer: UnixPeer, line: string): void {
    this.answer(peer.fd, line);
    this.closePeer(peer);
  }

  private closePeer(peer: UnixPeer): void {
    try { this.u.close(peer.fd); } catch { /* closed */ }
    if (peer.pidfd >= 0) { try { this.u.close(peer.pidfd); } catch { /* closed */ } peer.pidfd = -1; }
  }

  private drop(fd: number): void {
    const c = this.forget(fd);
    if (c) this.closePeer(c.peer);
  }

  /** Stop tracking a connection (its fd stays open; its pidfd is closed unless taken). */
  private forget(fd: number): Conn | undefined {
    const c = this.conns.get(fd);
    if (!c) return undefined;
    this.conns.delete(fd);
    clearTimeout(c.timer);
    this.u.fdUnwatch(c.watch);
    const n = (this.perUid.get(c.peer.uid) ?? 1) - 1;
    if (n > 0) this.perUid.set(c.peer.uid, n); else this.perUid.delete(c.peer.uid);
    return c;
  }

  close(): void {
    if (this.listenFd < 0) return;
    if (this.resume) { clearTimeout(this.resume); this.resume = null; }
    if (this.listenWatch >= 0) { this.u.fdUnwatch(this.listenWatch); this.listenWatch = -1; }
    for (const fd of [...this.conns.keys()]) this.drop(fd);
    this.u.close(this.listenFd);
    this.listenFd = -1;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A new directory of our own under `base` (mode 0700 until the socket is ready). A shared base must be ours and
 * writable by no one else (a symlink or someone else's directory there is refused), and directories of channels
 * whose server is gone are removed first.
 */
function privateDir(base: string): string {
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(base);
  const me = process.geteuid?.() ?? 0;
  const sticky = (st.mode & 0o1000) !== 0;
  if (!st.isDirectory() || (!sticky && (st.uid !== me || (st.mode & 0o022) !== 0))) {
    throw new Error(`${base} is not a directory of this user writable by no one else: no client channel there`);
  }
  for (const e of fs.readdirSync(base)) {
    const m = /^chan-(\d+)-/.exec(e);
    if (!m || alive(Number(m[1]))) continue;
    const p = path.join(base, e);
    try { if (fs.lstatSync(p).uid === me) fs.rmSync(p, { recursive: true, force: true }); } catch { /* raced */ }
  }
  return fs.mkdtempSync(path.join(base, `chan-${process.pid}-`));
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as { code?: string }).code === 'EPERM'; }
}
