// UffdWatcher: the userfaultfd of one client process → notifier events (spec §4). Ranges are registered in
// UFFDIO_REGISTER_MODE_WP and never write-protected, so only the non-cooperative events arrive (UNMAP, REMOVE,
// REMAP, FORK), no faults to serve. A native reader thread reads them (the client's munmap/madvise/mremap/fork
// blocks until the event is read, so no JS may sit in between); drain() swaps the reader's queue under its mutex,
// so an event read before the client's call returned is always seen by the client's next ioctl (spec §5).
import { PAGE_SIZE, USER_ADDR_END, type NotifierEvent } from '../core/memory/client-memory';
import { decodeReaderRecords, removeVerdict, type UffdRecord } from './abi';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';

export interface UffdWatcherOptions {
  binding?: UffdBinding;
  /** Client thread-group id (the mm the uffd was created in). */
  pid: number;
  /** A uffd created in the client's mm; OWNED by the watcher from now on (closed by release()). */
  uffd: number;
  /** Async wake-up (e.g. () => device.service(pid)); runs on the JS thread that constructed the watcher. */
  onPending?: () => void;
  log?: (msg: string) => void;
  /** false: never start the reader (tests: a daemon that stalls; the client then blocks in munmap). */
  startReader?: boolean;
  /** An eventfd the reader bumps on new events: wakes a serving loop blocked in poll (onPending cannot run there). */
  notifyFd?: number;
}

export type RegisterResult = { ok: true } | { ok: false; code: string; reason: string };

interface Reg { start: number; end: number }

export class UffdWatcher {
  private readonly u: UffdBinding;
  readonly pid: number;
  private fd: number;
  private readerId = -1;
  private hint: Int32Array | null = null;
  private readonly regs = new Map<number, Reg>();
  private queue: NotifierEvent[] = [];
  private readonly onPending?: () => void;
  private readonly notifyFd?: number;
  private readonly log: (msg: string) => void;
  /** Features enabled by our UFFDIO_API (null: the uffd was already initialized by someone else). */
  readonly features: bigint | null;
  /** FORK was refused (no CAP_SYS_PTRACE): a forked child's copies of the ranges are then unwatched (harmless). */
  readonly forkEvents: boolean;
  released = false;
  readonly counters = { records: 0, unmap: 0, remove: 0, remap: 0, fork: 0, pagefault: 0, unknown: 0, forkFdsClosed: 0, unregisterErrors: 0 };

  constructor(opts: UffdWatcherOptions) {
    this.u = opts.binding ?? loadUffd();
    this.pid = opts.pid;
    this.fd = opts.uffd;
    this.onPending = opts.onPending;
    this.notifyFd = opts.notifyFd;
    this.log = opts.log ?? (() => undefined);
    const C = this.u.constants;
    const events = C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP;
    // WP registration of shmem needs WP_HUGETLBFS_SHMEM on some kernels; FORK needs CAP_SYS_PTRACE in the caller.
    const tries = [
      events | C.UFFD_FEATURE_EVENT_FORK | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP | C.UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
      events | C.UFFD_FEATURE_EVENT_FORK | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP,
      events | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP | C.UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
      events | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP,
    ];
    let enabled: bigint | null = null;
    let last = '';
    for (const f of tries) {
      try { this.u.uffdApi(this.fd, f); enabled = f; break; } catch (e) { last = (e as { code?: string }).code ?? String(e); }
    }
    if (enabled === null) this.log(`pid ${this.pid}: UFFDIO_API refused every feature set (${last}); using the uffd as initialized by its creator`);
    this.features = enabled;
    this.forkEvents = enabled !== null && (enabled & C.UFFD_FEATURE_EVENT_FORK) !== 0n;
    if (opts.startReader !== false) {
      try {
        this.readerId = this.u.readerStart(this.fd, { taskSyscallsPid: this.pid, notifyFd: this.notifyFd }, () => this.pending());
      } catch (e) {
        this.u.close(this.fd);
        this.fd = -1;
        throw e;
      }
    }
  }

  /** UFFDIO_REGISTER(MODE_WP) of [start, last]; idempotent per page in the kernel, refcounted per page here. */
  tryRegister(id: number, start: number, last: number): RegisterResult {
    if (this.released) return { ok: false, code: 'EBADF', reason: 'watcher released' };
    const C = this.u.constants;
    try {
      this.u.uffdRegister(this.fd, start, last + 1 - start, C.UFFDIO_REGISTER_MODE_WP);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'EIO';
      const why = code === 'EBUSY' ? 'pages already registered on another userfaultfd (the client\'s own?)'
        : code === 'EINVAL' ? 'mapping type cannot be registered (regular file, special) or not mapped'
          : code === 'EPERM' ? 'not permitted' : 'registration failed';
      return { ok: false, code, reason: `UFFDIO_REGISTER [0x${start.toString(16)}, 0x${last.toString(16)}] -> ${code}: ${why}` };
    }
    this.regs.set(id, { start, end: last + 1 });
    return { ok: true };
  }

  /** Drop a registration; unregister only the pages no other live registration covers (two userptrs may share pages). */
  unregister(id: number): void {
    const r = this.regs.get(id);
    if (!r) return;
    this.regs.delete(id);
    if (this.released) return;
    for (const [s, e] of this.uncovered(r.start, r.end)) this.unregisterRange(s, e);
  }

  private unregisterRange(s: number, e: number): void {
    try { this.u.uffdUnregister(this.fd, s, e - s); } catch { this.counters.unregisterErrors++; } // range gone: nothing registered there
  }

  /** Sub-ranges of [s, e) not covered by any live registration. */
  private uncovered(s: number, e: number): Array<[number, number]> {
    const cov = [...this.regs.values()].filter((r) => r.start < e && r.end > s).sort((a, b) => a.start - b.start);
    const out: Array<[number, number]> = [];
    let at = s;
    for (const r of cov) {
      if (r.start > at) out.push([at, Math.min(r.start, e)]);
      at = Math.max(at, r.end);
      if (at >= e) break;
    }
    if (at < e) out.push([at, e]);
    return out;
  }

  /** True iff [start, last] lies inside live registrations (removals there are reported synchronously). */
  exact(start: number, last: number): boolean {
    if (this.released) return false;
    return this.uncovered(start, last + 1).length === 0;
  }

  registrations(): number { return this.regs.size; }

  /** The native reader's onPending: pull now (closes FORK uffds at once), then wake core. */
  private pending(): void {
    if (this.released) return;
    const had = this.queue.length;
    try { this.pull(); } catch (e) { this.log(`pid ${this.pid}: reader drain failed: ${String(e)}`); }
    if (this.queue.length > had) {
      try { this.onPending?.(); } catch (e) { this.log(`pid ${this.pid}: onPending threw: ${String(e)}`); }
    }
  }

  private pull(): void {
    if (this.readerId < 0) return;
    // Hot path (every ioctl entry): skip the native drain when the reader says nothing was read since the last one.
    const h = this.hint ??= this.u.readerPendingView(this.readerId);
    if (Atomics.load(h, 0) === 0 && Atomics.load(h, 1) === 0) return;
    const buf = this.u.readerDrain(this.readerId);
    if (buf.length) this.convert(decodeReaderRecords(buf));
  }

  private convert(recs: UffdRecord[]): void {
    for (const r of recs) {
      this.counters.records++;
      switch (r.kind) {
        case 'UNMAP':
          this.counters.unmap++;
          this.queue.push({ event: 'UNMAP', start: r.start, end: r.end, note: 'uffd UNMAP' });
          break;
        case 'REMOVE': {
          this.counters.remove++;
          const v = removeVerdict(r.snapshot, r.start, r.end);
          this.queue.push({ event: 'CLEAR', start: r.start, end: r.end, removed: v.removed, note: v.note });
          break;
        }
        case 'REMAP':
          // The UNMAP of the old range follows and does the invalidation. The registration moved with the VMA: drop
          // it at the destination unless a live registration covers it (else it would outlive every userptr).
          this.counters.remap++;
          if (!this.released) for (const [s, e] of this.uncovered(r.to, r.to + r.len)) this.unregisterRange(s, e);
          break;
        case 'FORK':
          // A new uffd for the child's mm, installed in OUR process: close it at once (the child is not watched; a
          // child that becomes a client gets its own uffd), or its munmaps of inherited ranges would block.
          this.counters.fork++;
          this.closeForkFd(r.ufd);
          this.queue.push({ event: 'PROTECTION_PAGE', start: 0, end: USER_ADDR_END, note: 'uffd FORK' });
          break;
        case 'PAGEFAULT':
          // Never expected (MODE_WP, nothing write-protected): wake the thread rather than leave it blocked.
          this.counters.pagefault++;
          try { this.u.uffdWriteProtect(this.fd, r.address - (r.address % PAGE_SIZE), PAGE_SIZE, false); } catch { /* raced with unmap */ }
          this.log(`pid ${this.pid}: unexpected uffd PAGEFAULT at 0x${r.address.toString(16)} flags ${r.flags}; un-protected`);
          break;
        default:
          this.counters.unknown++;
          this.log(`pid ${this.pid}: unknown uffd event ${r.event}`);
      }
    }
  }

  private closeForkFd(fd: number): void {
    try { this.u.close(fd); this.counters.forkFdsClosed++; } catch { /* already closed */ }
  }

  drain(): readonly NotifierEvent[] {
    if (!this.released) this.pull();
    if (this.queue.length === 0) return EMPTY;
    const q = this.queue;
    this.queue = [];
    return q;
  }

  /** Reader statistics (tests, doctor). */
  readerStats(): ReturnType<UffdBinding['readerStats']> | null {
    return this.readerId >= 0 && !this.released ? this.u.readerStats(this.readerId) : null;
  }

  /**
   * Stop the reader and close the uffd: registrations vanish with it and any client thread blocked on an unread
   * event is released at once. Undrained FORK records still carry child uffds: closed too.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.readerId >= 0) {
      const rest = this.u.readerStop(this.readerId);
      this.readerId = -1;
      this.hint = null;
      for (const r of decodeReaderRecords(rest)) if (r.kind === 'FORK') this.closeForkFd(r.ufd);
    } else if (this.fd >= 0) {
      this.u.close(this.fd);
    }
    this.fd = -1;
    this.regs.clear();
    this.queue = [];
  }
}

const EMPTY: readonly NotifierEvent[] = Object.freeze([]);
