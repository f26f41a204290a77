// Getting a userfaultfd bound to the CLIENT's mm (a uffd watches the mm of the process that created it):
// - our own process (in-process clients, tests): create it;
// - handed over by the preload helper (uffd/preload/handoff.c) through UffdHandoff below, a message kind
//   of the client channel (channel.ts);
// - ptrace injection (inject.ts), when enabled and nothing was handed over.
import * as fs from 'fs';
import * as path from 'path';
import { Channel, CHANNEL_MAGIC, type ChannelOptions, type ChannelRequest } from './channel';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { adoptUffd, closeForeign, isUffdRefused, RefusalLog, type AdoptedUffd } from './verify';

export const ENV_UFFD_SOCK = 'VIRTGPU_EMU_UFFD_SOCK';
export const PRELOAD_FILE = 'virtgpu-emu-preload.so';
/** The preload's message on the client channel: "VGECHAN1 uffd <pid>", its userfaultfd attached (SCM_RIGHTS). */
export const HANDOFF_KIND = 'uffd';
export const HANDOFF_MAGIC = `${CHANNEL_MAGIC} ${HANDOFF_KIND}`;
/** Handed-over uffds one uid may have waiting (not yet taken by a client's first open). */
export const HANDOFF_PER_UID = 16;
/** How often the uffds of processes that exited before becoming clients are closed (ms). */
export const HANDOFF_SWEEP_MS = 250;

/** A uffd of our own process (O_CLOEXEC|O_NONBLOCK; the addon falls back to /dev/userfaultfd). */
export function createOwnUffd(u: UffdBinding = loadUffd()): number {
  const C = u.constants;
  try { return u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK); } catch { return u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK | C.UFFD_USER_MODE_ONLY); }
}

/** The launcher `run` starts its command through, so that the server can inject into it (uffd/native/launch.c). */
export const LAUNCHER_FILE = 'virtgpu-emu-launch';

/** Candidate paths of a file binding.gyp builds (`npm install` puts it into build/Release). */
export function builtPaths(file: string, dir: string = __dirname): string[] {
  const roots = [path.resolve(dir, '..', '..'), path.resolve(dir, '..')];
  const out: string[] = [];
  for (const r of roots) for (const flavour of ['Release', 'Debug']) { const p = path.join(r, 'build', flavour, file); if (!out.includes(p)) out.push(p); }
  return out;
}
function findBuilt(file: string, dir?: string): string | null {
  for (const p of builtPaths(file, dir)) if (fs.existsSync(p)) return p;
  return null;
}
/** Candidate paths of the preload library. */
export const preloadPaths = (dir?: string): string[] => builtPaths(PRELOAD_FILE, dir);
export const findPreload = (dir?: string): string | null => findBuilt(PRELOAD_FILE, dir);
export const findLauncher = (dir?: string): string | null => findBuilt(LAUNCHER_FILE, dir);

/** Where a ClientProvider takes handed-over uffds from (ownership of the fd moves to the caller). */
export interface UffdSource { take(pid: number): AdoptedUffd | null }

/**
 * A cross-thread mailbox of handed-over uffds: (pid, fd, features) in a SharedArrayBuffer. The handshake must run
 * on a thread whose event loop is free (the CLI's main thread) while the provider lives in the serving worker,
 * blocked in read(2) between requests; fds are process-wide, so only the numbers cross. A slot is claimed by
 * compare-exchange on its pid, so the taker and the sweeper never both own an fd. Single writer: the thread that
 * calls put(). The fds are adopted already (verify.ts): the taker must not run UFFDIO_API again.
 */
export class HandoffMailbox implements UffdSource {
  static readonly SLOTS = 256;
  private static readonly WIDTH = 3; // pid, fd, features (every UFFD_FEATURE_* bit is below 2^32)
  readonly sab: SharedArrayBuffer;
  private readonly a: Int32Array;
  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(HandoffMailbox.SLOTS * HandoffMailbox.WIDTH * Int32Array.BYTES_PER_ELEMENT);
    this.a = new Int32Array(this.sab);
  }
  /** Publish a uffd for pid (fd and features first, then the pid that makes the slot visible). False when full. */
  put(pid: number, u: AdoptedUffd): boolean {
    for (let i = 0; i < this.a.length; i += HandoffMailbox.WIDTH) {
      if (Atomics.load(this.a, i) !== 0) continue;
      Atomics.store(this.a, i + 1, u.fd);
      Atomics.store(this.a, i + 2, Number(BigInt.asIntN(32, u.features)));
      if (Atomics.compareExchange(this.a, i, 0, pid) === 0) return true;
    }
    return false;
  }
  take(pid: number): AdoptedUffd | null {
    for (let i = 0; i < this.a.length; i += HandoffMailbox.WIDTH) {
      if (Atomics.load(this.a, i) !== pid) continue;
      const fd = Atomics.load(this.a, i + 1);
      const features = BigInt.asUintN(32, BigInt(Atomics.load(this.a, i + 2)));
      if (Atomics.compareExchange(this.a, i, pid, 0) === pid) return { fd, features };
    }
    return null;
  }
  /** Pids with an unclaimed uffd. */
  pids(): number[] {
    const r: number[] = [];
    for (let i = 0; i < this.a.length; i += HandoffMailbox.WIDTH) { const p = Atomics.load(this.a, i); if (p) r.push(p); }
    return r;
  }
}

export interface UffdHandoffOptions extends Omit<ChannelOptions, 'binding' | 'log'> {
  /** Publish accepted uffds here (for a provider on another thread) instead of keeping them for take(). */
  mailbox?: HandoffMailbox;
  binding?: UffdBinding;
  log?: (msg: string) => void;
  /** Channel to add the handoff to (default: a new one, closed with the handoff). */
  channel?: Channel;
}

/** A uffd waiting for its process's first open: the pidfd (the peer's own, from the channel) tells when it exits. */
interface Held { pid: number; uid: number; pidfd: number; uffd: AdoptedUffd | null /* null: in the mailbox */ }

/**
 * The server's side of the preload handoff: one message kind ("uffd") of the client channel. A client process
 * connects at load time and sends "VGECHAN1 uffd <pid>" with its userfaultfd attached; the channel has checked
 * that the kernel's credentials are those of <pid>, so the fd comes from that very process and is kept for it —
 * the server never reaches into another process for it. The fd must be a userfaultfd that takes our UFFDIO_API
 * (verify.ts), else it is closed and refused (ERR EBADF / the API's errno); at most 16 may wait per uid
 * (ERR ENOSPC). Answer "OK" once it is ours; the client then closes its copy.
 * Uffds of processes that exit before becoming clients are closed by a sweep every 250 ms (their pidfd polls
 * readable), the rest at close().
 */
export class UffdHandoff implements UffdSource {
  private readonly u: UffdBinding;
  private readonly held = new Map<number, Held>();
  private readonly waiters = new Map<number, Array<(ok: boolean) => void>>();
  private readonly log: (msg: string) => void;
  private readonly mailbox: HandoffMailbox | undefined;
  private readonly ownsChannel: boolean;
  private readonly timer: NodeJS.Timeout;
  readonly channel: Channel;
  readonly refusals: RefusalLog;
  accepted = 0;
  refused = 0;

  private constructor(opts: UffdHandoffOptions) {
    this.u = opts.binding ?? loadUffd();
    this.log = opts.log ?? (() => undefined);
    this.mailbox = opts.mailbox;
    this.refusals = new RefusalLog(this.log);
    this.ownsChannel = !opts.channel;
    this.channel = opts.channel ?? new Channel({ ...opts, binding: this.u, log: this.log });
    this.channel.handle(HANDOFF_KIND, (req) => this.accept(req));
    this.timer = setInterval(() => this.sweep(), HANDOFF_SWEEP_MS);
    this.timer.unref(); // the handoff alone does not keep the daemon alive
  }

  static async listen(opts: UffdHandoffOptions = {}): Promise<UffdHandoff> {
    return new UffdHandoff(opts);
  }

  /** The socket clients connect to (VIRTGPU_EMU_UFFD_SOCK). */
  get name(): string { return this.channel.path; }

  /** Environment for a client: the socket path, and LD_PRELOAD with our library prepended (when built). */
  env(base: NodeJS.ProcessEnv = process.env, preload: string | null = findPreload()): Record<string, string> {
    const out: Record<string, string> = { [ENV_UFFD_SOCK]: this.name };
    if (preload) out.LD_PRELOAD = base.LD_PRELOAD ? `${preload}:${base.LD_PRELOAD}` : preload;
    return out;
  }

  /** One "uffd" message (credentials already checked by the channel) → answer line. */
  private accept(req: ChannelRequest): string {
    const [fd, ...extra] = req.fds;
    for (const f of extra) closeForeign(this.u, f);
    const who = `pid ${req.pid} (uid ${req.uid})`;
    if (fd === undefined || extra.length || req.args.length) {
      if (fd !== undefined) closeForeign(this.u, fd);
      this.refused++;
      this.refusals.refuse('handoff', who, { key: 'malformed', message: 'one fd and no argument expected' });
      return 'ERR EINVAL';
    }
    this.sweep();
    const prior = this.held.get(req.pid);
    if (!prior && this.heldBy(req.uid) >= HANDOFF_PER_UID) {
      closeForeign(this.u, fd);
      this.refused++;
      this.refusals.refuse('handoff', `uid ${req.uid}`, { key: 'per-uid', message: `${HANDOFF_PER_UID} uffds of this uid wait already` });
      return 'ERR ENOSPC';
    }
    let adopted: AdoptedUffd;
    try { adopted = adoptUffd(this.u, fd); } catch (e) {
      this.refused++;
      if (!isUffdRefused(e)) throw e;
      this.refusals.refuse('handoff', who, e);
      return `ERR ${e.code}`;
    }
    this.drop(req.pid); // an exec'd process hands over again: the old uffd belongs to its old mm
    const pidfd = req.takePidfd();
    const h: Held = { pid: req.pid, uid: req.uid, pidfd, uffd: adopted };
    if (this.mailbox) {
      if (!this.mailbox.put(req.pid, adopted)) {
        this.u.close(adopted.fd);
        if (pidfd >= 0) this.u.close(pidfd);
        this.refused++;
        this.refusals.refuse('handoff', who, { key: 'mailbox-full', message: `all ${HandoffMailbox.SLOTS} mailbox slots taken` });
        return 'ERR ENOSPC';
      }
      h.uffd = null;
    }
    this.held.set(req.pid, h);
    this.accepted++;
    for (const w of this.waiters.get(req.pid) ?? []) w(true);
    this.waiters.delete(req.pid);
    return 'OK';
  }

  private heldBy(uid: number): number {
    let n = 0;
    for (const h of this.held.values()) if (h.uid === uid) n++;
    return n;
  }

  /** The uffd handed over by `pid` (ownership moves to the caller; adopted already), or null. */
  take(pid: number): AdoptedUffd | null {
    this.sweep();
    const h = this.held.get(pid);
    if (!h || !h.uffd) return null;
    this.held.delete(pid);
    if (h.pidfd >= 0) this.u.close(h.pidfd);
    return h.uffd;
  }

  /** Resolves when `pid` has handed over a uffd (true) or after `ms` (false). */
  wait(pid: number, ms: number): Promise<boolean> {
    if (this.held.has(pid)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      const list = this.waiters.get(pid) ?? [];
      list.push((ok) => { clearTimeout(t); resolve(ok); });
      this.waiters.set(pid, list);
    });
  }

  /** Uffds held for processes not yet taken. */
  get size(): number { this.sweep(); return this.held.size; }

  private drop(pid: number): void {
    const h = this.held.get(pid);
    if (!h) return;
    this.held.delete(pid);
    const u = h.uffd ?? this.mailbox?.take(pid) ?? null;
    if (u) this.u.close(u.fd);
    if (h.pidfd >= 0) this.u.close(h.pidfd);
  }

  /**
   * Forget what the serving thread took from the mailbox, close the uffds of processes that exited without
   * becoming clients. Runs every HANDOFF_SWEEP_MS and before each handoff.
   */
  sweep(): void {
    const waiting = this.mailbox ? new Set(this.mailbox.pids()) : null;
    for (const [pid, h] of [...this.held]) {
      if (!h.uffd && waiting && !waiting.has(pid)) { // taken by the provider: its pidfd is no longer needed here
        this.held.delete(pid);
        if (h.pidfd >= 0) this.u.close(h.pidfd);
      } else if (h.pidfd < 0 || this.u.pidfdExited(h.pidfd)) {
        this.drop(pid);
      }
    }
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    for (const pid of [...this.held.keys()]) this.drop(pid);
    for (const ws of this.waiters.values()) for (const w of ws) w(false);
    this.waiters.clear();
    if (this.ownsChannel) this.channel.close();
    return Promise.resolve();
  }
}
