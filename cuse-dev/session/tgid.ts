// Who made a request. The kernel's request header names the calling thread — fuse_in_header.pid is its TID in the
// server's pid namespace (0 for a caller outside it), uid/gid its fsuid/fsgid — and the client is that thread's
// thread group (its process): the one whose memory the request reads and writes.
//
// A resolution made while a request is handled is exact: a request the server has read holds its caller in the
// kernel until the reply (fuse request_wait_answer: once the request left the pending queue the wait is
// uninterruptible, SIGKILL included), so the caller's tid can be neither freed nor reused meanwhile.
//
// A cached one (pidfdCallerResolver) stays exact because each entry holds a pidfd of the very thread it was
// resolved for (PIDFD_THREAD). The kernel signals it when that thread exits (exit_notify), before its tid is freed
// (release_task; a tid that a non-leader's exec retires is signalled at its release); a holder of that tid again
// needs the free and then the pid allocator to come back to the number (it allocates cyclically: a wrap of
// pid_max, or a pid space kept nearly full). A native thread epoll-waits on the pidfds, closes each exited one and
// publishes the exit in a word per entry. A cache hit is a map lookup, one load of that word and two compares: the
// entry also keeps the fsuid/fsgid of the request that made it, and a request of the same tid with other ids is
// resolved afresh. What is left: an exit signalled but not yet published (the watch thread woken but not run —
// microseconds, it runs SCHED_FIFO where allowed; a scheduling delay otherwise) while the number was freed,
// reallocated, and the new owner's request read; and that owner has the same fsuid and fsgid, so a stale mapping can
// never lend one user's process to another user.
//
// Kernels without thread pidfds (before 6.9; Debian 12 runs 6.1) give a pidfd of a thread group leader only. There
// the cache keeps a leader's entry on its pidfd as above (signalled when the whole group has exited: until then the
// leader's tid stays allocated, a zombie's if it left first), and any other thread's entry is checked at each request
// against /proc/TGID/task/TID: that name exists only while the tid is a thread of that group, and the caller holds
// its tid for the whole request, so a hit is exact again (one access(2), ~0.7 µs, against ~11 µs for reading
// /proc/TID/status, which every request paid before).
//
// Callers that cannot be established are refused: outside the server's pid namespace, or /proc and pidfds refused
// (EACCES: the server may not act for a caller it cannot see); a thread already gone (EINTR: what the kernel's FUSE
// layer answers a request whose caller was killed before the server took it — ESRCH is no ioctl errno, and by the
// rule above no live caller gets EINTR, which libdrm's drmIoctl would retry forever). Out of fds or memory throws,
// and the session answers with its exhaustion errnos.
import * as fs from 'fs';
import { EACCES, EINTR, type Errno } from '../../core/errno';
import type { UffdBinding } from '../../uffd/native-types';

const TGID_RE = /^Tgid:\s*(\d+)$/m;

export interface CallerRefusal {
  readonly errno: Errno;
  /** invisible: the server cannot see the caller; vanished: its thread is gone. Logged once per kind. */
  readonly kind: 'invisible' | 'vanished';
  readonly why: string;
}

export interface CallerStats {
  /** Entries cached now (each holds a pidfd until its thread exits or it is evicted). */
  cached: number;
  /** Resolutions made (first request of a thread, after its exit, after an eviction, at OPEN). */
  resolved: number;
  refused: number;
  /** Entries dropped because their thread had exited. */
  exited: number;
  /** Entries dropped while their thread still ran (the cache was full, fds ran out, OPEN re-resolved). */
  evicted: number;
  /** Pidfds held now (0 for the /proc resolver). */
  pidfds: number;
}

export interface CallerResolver {
  /** The tgid of thread `tid` whose request carries fsuid `uid` and fsgid `gid`, or why it is refused. Throws only out of fds/memory. */
  resolve(tid: number, uid: number, gid: number): number | CallerRefusal;
  /** Drop what is cached for `tid`: its next request is resolved afresh. */
  forget(tid: number): void;
  /** Release every fd and thread it holds. */
  close(): void;
  stats(): CallerStats;
}

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;
const EXHAUSTED = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);
const refusal = (kind: CallerRefusal['kind'], why: string): CallerRefusal => ({ errno: kind === 'vanished' ? EINTR : EACCES, kind, why });
/** A failed look-up of `tid` as a refusal; out of fds or memory is rethrown (the session's exhaustion errnos). */
function refusalOf(e: unknown, what: string): CallerRefusal {
  const code = errCode(e);
  if (code !== undefined && EXHAUSTED.has(code)) throw e;
  if (code === 'ESRCH' || code === 'ENOENT') return refusal('vanished', `${what}: thread gone (${code})`);
  return refusal('invisible', `${what}: ${code ?? String(e)}`);
}
const outsideNamespace = (tid: number): CallerRefusal => refusal('invisible', `tid ${tid}: the caller is outside the server's pid namespace`);

/** Thread → tgid from /proc/TID/status. `read` is injectable for tests. */
function procTgid(read: (path: string) => string, tid: number): number {
  const m = TGID_RE.exec(read(`/proc/${tid}/status`));
  if (!m) throw Object.assign(new Error(`/proc/${tid}/status has no Tgid line`), { code: 'EPROTO' });
  return Number(m[1]);
}

/**
 * Every request resolved through /proc/TID/status, nothing cached: exact by the rule above, one open+read per
 * request. The session's default (tests, in-process) and the server's fallback where thread pidfds are missing.
 */
export function tgidResolver(read: (path: string) => string = (p) => fs.readFileSync(p, 'latin1')): CallerResolver {
  let resolved = 0, refused = 0;
  return {
    resolve(tid: number): number | CallerRefusal {
      if (tid <= 0) { refused++; return outsideNamespace(tid); }
      try { const tgid = procTgid(read, tid); resolved++; return tgid; } catch (e) { const r = refusalOf(e, `tid ${tid}`); refused++; return r; }
    },
    forget: () => undefined,
    close: () => undefined,
    stats: () => ({ cached: 0, resolved, refused, exited: 0, evicted: 0, pidfds: 0 }),
  };
}

/** Default entries of the pidfd cache: a pidfd each (bounded further by the fd limit, see callerResolver). */
export const CALLER_CACHE_SLOTS = 256;

/** slot: the pid watch's slot of the entry's pidfd; NO_PIDFD: a non-leader on a kernel without thread pidfds. */
class Entry {
  constructor(readonly tgid: number, readonly slot: number, readonly uid: number, readonly gid: number) {}
}
const NO_PIDFD = -1;

export interface PidfdResolverOptions {
  slots?: number;
  /** Ask for SCHED_FIFO on the watch thread (best effort). Default true. */
  realtime?: boolean;
  /** /proc reader for kernels without PIDFD_GET_INFO (before 6.13); injectable for tests. */
  read?: (path: string) => string;
  /**
   * Whether the kernel has thread pidfds (PIDFD_THREAD, >= 6.9). Default true. false: pidfds of thread group leaders
   * only, every other thread's entry checked by `member` at each request (see the top of this file).
   */
  threadPidfds?: boolean;
  /** Whether thread `tid` belongs to thread group `tgid` now (/proc/TGID/task/TID exists); injectable for tests. */
  member?: (tgid: number, tid: number) => boolean;
}

/** /proc/TGID/task/TID exists: the tid is a thread of that group now. */
export function procMember(tgid: number, tid: number): boolean {
  try { fs.accessSync(`/proc/${tgid}/task/${tid}`); return true; } catch { return false; }
}

/**
 * The cached resolver over pidfds: of every thread (kernel >= 6.9), or of thread group leaders with the others checked
 * through /proc (`threadPidfds: false`). Throws when the watch cannot start (use callerResolver).
 */
export class PidfdCallerResolver implements CallerResolver {
  /** Entries at most (a pidfd each). */
  readonly slots: number;
  private readonly cache = new Map<number, Entry>();
  private readonly free: number[] = [];
  private readonly id: number;
  private readonly exitedView: Int32Array;
  private readonly read: (path: string) => string;
  private readonly member: (tgid: number, tid: number) => boolean;
  /** The pidfd_open flag of a thread's pidfd; 0 without thread pidfds (then only a leader's opens). */
  private readonly pidfdFlags: number;
  private readonly threadPidfds: boolean;
  /** PIDFD_GET_INFO answers (kernel >= 6.13); else /proc/TID/status read between pidfd_open and an exit check. */
  private infoIoctl = true;
  private closed = false;
  private readonly counts = { resolved: 0, refused: 0, exited: 0, evicted: 0 };

  constructor(private readonly u: UffdBinding, opts: PidfdResolverOptions = {}) {
    const slots = this.slots = opts.slots ?? CALLER_CACHE_SLOTS;
    const w = u.pidWatchStart(slots, { realtime: opts.realtime ?? true });
    this.id = w.id;
    this.exitedView = w.exited;
    for (let s = slots - 1; s >= 0; s--) this.free.push(s);
    this.read = opts.read ?? ((p) => fs.readFileSync(p, 'latin1'));
    this.member = opts.member ?? procMember;
    this.threadPidfds = opts.threadPidfds ?? true;
    this.pidfdFlags = this.threadPidfds ? u.constants.PIDFD_THREAD : 0;
  }

  /**
   * The hot path: a hit costs a map lookup, one load and three compares (see the top of this file); without thread
   * pidfds, a non-leader's hit one access(2) more.
   */
  resolve(tid: number, uid: number, gid: number): number | CallerRefusal {
    const e = this.cache.get(tid);
    // A plain load of the exit word: one word, nothing ordered after it depends on it, and Atomics.load is a builtin
    // call in this V8 (~8 ns) where an element load is inlined; either may read a just-published exit a moment late.
    if (e !== undefined && e.uid === uid && e.gid === gid && (e.slot >= 0 ? this.exitedView[e.slot] === 0 : this.member(e.tgid, tid))) return e.tgid;
    return this.miss(tid, uid, gid, e);
  }

  forget(tid: number): void {
    const e = this.cache.get(tid);
    if (e) this.drop(tid, e, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    this.u.pidWatchStop(this.id);
  }

  stats(): CallerStats {
    const s = this.closed ? 0 : this.u.pidWatchStats(this.id).open;
    return { cached: this.cache.size, ...this.counts, pidfds: s };
  }

  /** Whether the watch thread got SCHED_FIFO (for the log and tests). */
  realtime(): boolean { return !this.closed && this.u.pidWatchStats(this.id).realtime; }

  private miss(tid: number, uid: number, gid: number, stale: Entry | undefined): number | CallerRefusal {
    // A pidfd entry's drop asks the watch whether its thread exited; an entry checked through /proc failed the check
    // when its ids matched (the thread is no longer in that group), else it was evicted for the other ids.
    if (stale) this.drop(tid, stale, stale.uid === uid && stale.gid === gid);
    if (tid <= 0) { this.counts.refused++; return outsideNamespace(tid); }
    let slot = NO_PIDFD;
    let pidfd = -1;
    try {
      pidfd = this.openPidfd(tid);
      // No pidfd (a non-leader without thread pidfds): cached without one, checked through /proc at each hit.
      // A leader's pidfd without thread pidfds: its tid is the group's id.
      const tgid = pidfd < 0 ? procTgid(this.read, tid) : this.threadPidfds ? this.tgidOf(pidfd, tid) : tid;
      slot = this.room(pidfd >= 0);
      if (pidfd >= 0) this.u.pidWatchAdd(this.id, slot, pidfd); // the watch owns the pidfd from here
      this.cache.set(tid, new Entry(tgid, slot, uid, gid));
      this.counts.resolved++;
      return tgid;
    } catch (e) {
      if (pidfd >= 0) { try { this.u.close(pidfd); } catch { /* closed */ } }
      if (slot !== NO_PIDFD) this.free.push(slot);
      const r = refusalOf(e, `tid ${tid}`); // rethrows exhaustion
      this.counts.refused++;
      return r;
    }
  }

  /**
   * pidfd_open(tid, PIDFD_THREAD), or without thread pidfds pidfd_open(tid, 0): -1 when tid is no thread group
   * leader (EINVAL before 6.9, ENOENT on later kernels; ENOSYS before 5.3: no pidfds at all; a tid nobody holds is
   * ESRCH, and /proc tells the rest). Out of fds, the cache gives half its pidfds back and tries once more.
   */
  private openPidfd(tid: number): number {
    try {
      return this.u.pidfdOpen(tid, this.pidfdFlags);
    } catch (e) {
      const code = errCode(e);
      if (!this.threadPidfds && (code === 'EINVAL' || code === 'ENOENT' || code === 'ENOSYS')) return -1;
      if ((code !== 'EMFILE' && code !== 'ENFILE') || this.cache.size === 0) throw e;
      this.evictOldest(Math.ceil(this.cache.size / 2));
      return this.u.pidfdOpen(tid, this.pidfdFlags);
    }
  }

  /** The thread group of the pidfd's task, never of another holder of the number. */
  private tgidOf(pidfd: number, tid: number): number {
    if (this.infoIoctl) {
      try { return this.u.pidfdGetInfo(pidfd).tgid; } catch (e) {
        const code = errCode(e);
        if (code !== 'ENOTTY' && code !== 'EINVAL') throw e;
        this.infoIoctl = false;
      }
    }
    // /proc names whoever holds the number now: it is the pidfd's task if that task still runs after the read.
    const tgid = procTgid(this.read, tid);
    if (this.u.pidfdExited(pidfd)) throw Object.assign(new Error(`thread ${tid} exited`), { code: 'ESRCH' });
    return tgid;
  }

  /**
   * Room for one more entry, the cache kept to `slots` entries in all, and with `slot` a free slot for its pidfd
   * (returned; else NO_PIDFD): entries of exited threads swept, else the oldest evicted until there is.
   */
  private room(slot: boolean): number {
    const full = (): boolean => this.cache.size >= this.slots || (slot && this.free.length === 0);
    if (full()) {
      for (const [tid, e] of this.cache) if (e.slot >= 0 && Atomics.load(this.exitedView, e.slot) !== 0) this.drop(tid, e, true);
    }
    while (full() && this.cache.size > 0) this.evictOldest(1);
    return slot ? this.free.pop()! : NO_PIDFD;
  }

  private evictOldest(n: number): void {
    for (const [tid, e] of this.cache) {
      if (n-- <= 0) break;
      this.drop(tid, e, false);
    }
  }

  /** `gone`, for an entry without a pidfd: its /proc check failed (counted as exited), else it is evicted. */
  private drop(tid: number, e: Entry, gone: boolean): void {
    this.cache.delete(tid);
    if (e.slot === NO_PIDFD) { if (gone) this.counts.exited++; else this.counts.evicted++; return; }
    // true: the pidfd was still open, so the thread ran (or its exit was not published yet); false: it had exited.
    if (this.u.pidWatchRemove(this.id, e.slot)) this.counts.evicted++; else this.counts.exited++;
    this.free.push(e.slot);
  }
}

/**
 * The server's resolver: thread pidfds with their exits watched (kernel >= 6.9); else leaders' pidfds, the other
 * threads checked through /proc/TGID/task/TID at each request; /proc/TID/status per request only without the addon
 * or the watch. `note` says what was taken instead of thread pidfds, and why (for the log).
 */
export function callerResolver(u: UffdBinding | undefined, opts: PidfdResolverOptions & { fdLimit?: number } = {}): { resolver: CallerResolver; note?: string } {
  if (!u) return { resolver: tgidResolver(opts.read), note: 'no native addon: callers resolved through /proc/TID/status at every request' };
  let note: string | undefined;
  let threadPidfds = true;
  try {
    // PIDFD_THREAD (kernel >= 6.9) on our own main thread: EINVAL on older kernels.
    u.close(u.pidfdOpen(process.pid, u.constants.PIDFD_THREAD));
  } catch (e) {
    threadPidfds = false;
    note = `no thread pidfds (pidfd_open(PIDFD_THREAD): ${errCode(e) ?? String(e)}; kernel >= 6.9 has them): a process's main thread is cached on its pidfd, other threads are checked against /proc/TGID/task/TID at every request`;
  }
  // A pidfd per cached thread: at most an eighth of the fd limit, so a low RLIMIT_NOFILE stays for opens and clients.
  const byLimit = opts.fdLimit !== undefined && Number.isFinite(opts.fdLimit) ? Math.max(8, Math.floor(opts.fdLimit / 8)) : Infinity;
  const slots = Math.min(opts.slots ?? CALLER_CACHE_SLOTS, byLimit);
  try {
    return { resolver: new PidfdCallerResolver(u, { ...opts, slots, threadPidfds }), note };
  } catch (e) {
    return { resolver: tgidResolver(opts.read), note: `pidfd watch not started (${String(e)}): callers resolved through /proc/TID/status at every request` };
  }
}
