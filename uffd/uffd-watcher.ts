// UffdWatcher: the userfaultfd of one client process → notifier events (docs/semantics.md §4). Ranges are registered in
// UFFDIO_REGISTER_MODE_WP and never write-protected, so only the non-cooperative events arrive (UNMAP, REMOVE,
// REMAP, FORK), no faults to serve. Registration covers WHOLE VMAs (looked up with PROCMAP_QUERY, else
// /proc/PID/maps): registering part of a VMA would split it, which the client could see (mremap of the whole
// mapping fails with EFAULT, one more VMA towards vm.max_map_count). Several userptrs share the registration of the
// VMAs they touch ("areas", kept while some registered range meets them; both in interval treaps, so every lookup
// is O(log n) whatever the number of areas or of userptrs in one VMA); events outside every userptr are read and dropped. A native reader thread reads them (the client's munmap/madvise/mremap/fork
// blocks until the event is read, so no JS may sit in between); drain() swaps the reader's queue under its mutex,
// so an event read before the client's call returned is always seen by the client's next ioctl (docs/semantics.md §5).
import { PAGE_SIZE, USER_ADDR_END, type NotifierEvent } from '../core/memory/client-memory';
import { decodeReaderRecords, removeVerdict, type UffdRecord } from './abi';
import { loadUffd } from './load';
import { VmaQuery } from './vma-query';
import type { UffdBinding } from './native-types';
import { adoptUffd, closeIfUffd } from './verify';
import { eventLatency } from './event-latency';
import { IntervalTreap, type TreeNode } from '../core/userptr/interval-tree';

export interface UffdWatcherOptions {
  binding?: UffdBinding;
  /** Client thread-group id (the mm the uffd was created in). */
  pid: number;
  /**
   * A uffd created in the client's mm; OWNED by the watcher from now on (closed by release(), or at once when the
   * constructor throws: UffdRefused when it is not a userfaultfd or UFFDIO_API fails on it).
   */
  uffd: number;
  /** The fd was adopted already (verify.ts adoptUffd, e.g. by the handoff): the features its UFFDIO_API enabled. */
  features?: bigint;
  /**
   * Async wake-up (e.g. () => device.service(pid)); runs on the JS thread that constructed the watcher, through its
   * event loop. Not used with notifyFd: that thread is a serving loop blocked in poll, which the fd wakes instead
   * (its event loop does not turn while it serves: every wake-up would queue a call there until it stops).
   */
  onPending?: () => void;
  log?: (msg: string) => void;
  /** false: never start the reader (tests: a daemon that stalls; the client then blocks in munmap). */
  startReader?: boolean;
  /**
   * An eventfd the reader bumps on new events: wakes a serving loop blocked in poll (onPending cannot run there).
   * A wake queue's fd (wakeQueueCreate) also learns this client's pid with each bump.
   */
  notifyFd?: number;
  /** Shared by the watchers of one provider: how many of them have at least one range registered now. */
  watching?: WatchingCount;
  /**
   * Register whole VMAs (default for another process) or exactly the userptr ranges (default for our own process:
   * its VMAs hold memory of Node and its libraries, whose munmap/madvise would then wait on a reader thread of the
   * same process — glibc trims a heap with MADV_DONTNEED under its arena lock, and the reader allocates).
   */
  wholeVmas?: boolean;
  /** The VMA lookups of this process (ProcessMemory's, so one maps fd serves both); default: the watcher's own. */
  vmas?: VmaQuery;
}

/** Watchers with at least one registered range (a serving loop waits on the wake fd only while n > 0). */
export interface WatchingCount { n: number }

export type RegisterResult = { ok: true } | { ok: false; code: string; reason: string };

/**
 * A node of the watcher's interval treaps over [start, end) (`last` is end - 1): a userptr's registered range (its
 * id), or an area (id -1): whole VMAs registered on the uffd (as far as the events read so far tell), disjoint,
 * touching ones merged (the kernel merges such VMAs), kept while some registered range meets them. One class for
 * both, so the treap's code sees one object shape here.
 */
class Span implements TreeNode {
  last: number;
  treeSeq = 0;
  treeLeft: TreeNode | null = null;
  treeRight: TreeNode | null = null;
  treeMax = 0;
  treePrio = 0;
  constructor(public start: number, end: number, readonly id = -1) { this.last = end - 1; }
  get end(): number { return this.last + 1; }
}
type Reg = Span;
type Area = Span;

export class UffdWatcher {
  private readonly u: UffdBinding;
  readonly pid: number;
  private fd: number;
  private readerId = -1;
  private hint: Int32Array | null = null;
  private readonly regs = new Map<number, Reg>();
  /** The registrations by range (which userptrs an event touches: no walk over an area's userptrs). */
  private regTree = new IntervalTreap<Reg>();
  /** Disjoint; touching areas are merged (the kernel merges such VMAs). */
  private areas = new IntervalTreap<Area>();
  /** VMA lookups (PROCMAP_QUERY of a range, else the maps text); `gone` once the client's mm is (ESRCH). */
  private readonly vmas: VmaQuery;
  private readonly ownVmas: boolean;
  private readonly q = new Float64Array(2);
  private readonly wholeVmas: boolean;
  private queue: NotifierEvent[] = [];
  /** readNs of the oldest record behind the queued events (0n: none queued). */
  private queueReadNs = 0n;
  private readonly onPending?: () => void;
  private readonly notifyFd?: number;
  private readonly watching?: WatchingCount;
  private readonly log: (msg: string) => void;
  /** Features enabled by our UFFDIO_API. */
  readonly features: bigint;
  /** FORK was refused (no CAP_SYS_PTRACE): a forked child's copies of the ranges are then unwatched (harmless). */
  readonly forkEvents: boolean;
  released = false;
  readonly counters = { records: 0, unmap: 0, remove: 0, remap: 0, fork: 0, pagefault: 0, unknown: 0, forkFdsClosed: 0, forkFdsRefused: 0, unregisterErrors: 0, vmaRegisters: 0, vmaUnregisters: 0, dropped: 0 };

  constructor(opts: UffdWatcherOptions) {
    this.u = opts.binding ?? loadUffd();
    this.pid = opts.pid;
    this.fd = opts.uffd;
    this.onPending = opts.onPending;
    this.notifyFd = opts.notifyFd;
    this.watching = opts.watching;
    this.wholeVmas = opts.wholeVmas ?? opts.pid !== process.pid;
    this.log = opts.log ?? (() => undefined);
    this.ownVmas = !opts.vmas;
    this.vmas = opts.vmas ?? new VmaQuery(this.pid, this.u);
    // The one verification (verify.ts): a userfaultfd, and UFFDIO_API succeeds on it, or it is closed and refused.
    const adopted = opts.features !== undefined ? { fd: opts.uffd, features: opts.features } : adoptUffd(this.u, opts.uffd);
    this.features = adopted.features;
    this.forkEvents = (adopted.features & this.u.constants.UFFD_FEATURE_EVENT_FORK) !== 0n;
    if (opts.startReader !== false) {
      try {
        const opts = { taskSyscallsPid: this.pid, notifyFd: this.notifyFd, notifyToken: this.pid };
        this.readerId = this.notifyFd === undefined ? this.u.readerStart(this.fd, opts, () => this.pending()) : this.u.readerStart(this.fd, opts);
      } catch (e) {
        this.u.close(this.fd);
        this.fd = -1;
        throw e;
      }
    }
  }

  /**
   * Watch [start, last] for userptr `id` (a new id, or a new range for a known one: the old one is released after
   * the new one is in place, so no event falls in between): UFFDIO_REGISTER(MODE_WP) of every whole VMA the range
   * touches. Re-registering a VMA already ours is a no-op in the kernel, so no VMA is ever split.
   */
  tryRegister(id: number, start: number, last: number): RegisterResult {
    if (this.released) return { ok: false, code: 'EBADF', reason: 'watcher released' };
    const old = this.regs.get(id);
    const end = last + 1;
    let spans: Array<[number, number]> | null;
    let code = 'ESRCH';
    try { spans = this.vmaSpans(start, end); } catch (e) { spans = null; code = (e as { code?: string }).code ?? 'EIO'; }
    if (!spans) {
      if (old) this.unregister(id);
      return { ok: false, code, reason: `VMA lookup of [0x${start.toString(16)}, 0x${last.toString(16)}] -> ${code}` };
    }
    const C = this.u.constants;
    const done: Array<[number, number]> = [];
    for (const [s, e] of spans) {
      try {
        this.u.uffdRegister(this.fd, s, e - s, C.UFFDIO_REGISTER_MODE_WP);
        this.counters.vmaRegisters++;
        done.push([s, e]);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'EIO';
        // Undo what only this call registered (VMAs no area holds yet), then drop the old range too.
        for (const [ds, de] of done) if (!this.overlaps(ds, de)) this.unregisterRange(ds, de);
        if (old) this.unregister(id);
        const why = code === 'EBUSY' ? 'pages already registered on another userfaultfd (the client\'s own?)'
          : code === 'EINVAL' ? 'mapping type cannot be registered (regular file, special) or not mapped'
            : code === 'EPERM' ? 'not permitted' : 'registration failed';
        return { ok: false, code, reason: `UFFDIO_REGISTER [0x${s.toString(16)}, 0x${(e - 1).toString(16)}] (the VMA holding [0x${start.toString(16)}, 0x${last.toString(16)}]) -> ${code}: ${why}` };
      }
    }
    for (const [s, e] of spans) this.addArea(s, e);
    if (this.regs.size === 0 && !old && this.watching) this.watching.n++;
    const reg: Reg = new Span(start, end, id);
    if (old) this.regTree.remove(old);
    this.regs.set(id, reg);
    this.regTree.insert(reg);
    if (old) this.letGoOf(old.start, old.end);
    return { ok: true };
  }

  has(id: number): boolean { return this.regs.has(id); }

  /** Drop a registration; unregister the VMAs no other live userptr touches. */
  unregister(id: number): void {
    const r = this.regs.get(id);
    if (!r) return;
    this.regs.delete(id);
    this.regTree.remove(r);
    if (this.regs.size === 0 && this.watching) this.watching.n--;
    this.letGoOf(r.start, r.end);
  }

  /** The areas meeting [s, e) that no registered range meets any more are unregistered. */
  private letGoOf(s: number, e: number): void {
    for (const a of this.areas.overlapping(s, e - 1)) {
      if (this.regTree.first(a.start, a.last)) continue;
      this.areas.remove(a);
      if (!this.released) this.unregisterArea(a.start, a.end);
    }
  }

  /**
   * The VMAs overlapping [start, end), touching ones joined: [[vmaStart, vmaEnd), ...] (or the range itself); null
   * when the process is gone.
   */
  private vmaSpans(start: number, end: number): Array<[number, number]> | null {
    if (!this.wholeVmas) return [[start, end]];
    const maps = this.vmas.mappings(start, end, false);
    if (!maps) return null;
    const out: Array<[number, number]> = [];
    for (const m of maps) {
      const l = out[out.length - 1];
      if (l && l[1] === m.start) l[1] = m.end; else out.push([m.start, m.end]);
    }
    return out;
  }

  /** True iff an area overlaps [s, e). */
  private overlaps(s: number, e: number): boolean { return this.areas.first(s, e - 1) !== null; }

  /** Add [s, e), merged with every area it overlaps or touches. */
  private addArea(s: number, e: number): void {
    const near = this.areas.overlapping(s - 1, e); // the areas meeting or touching [s, e)
    if (near.length === 1 && near[0]!.start <= s && near[0]!.end >= e) return; // already watched (a VMA's next userptr)
    let lo = s, hi = e;
    for (const a of near) { this.areas.remove(a); lo = Math.min(lo, a.start); hi = Math.max(hi, a.end); }
    const into = near[0] ?? new Span(lo, hi);
    into.start = lo;
    into.last = hi - 1;
    this.areas.insert(into);
  }

  /**
   * UFFDIO_UNREGISTER of an area that no userptr needs. Widened to the whole VMAs at its ends (a VMA may have grown
   * in place since) unless that reaches another area; a range gone or now another uffd's fails quietly (counted).
   */
  private unregisterArea(s: number, e: number): void {
    let ws = s, we = e;
    if (this.wholeVmas) {
      // one query when one VMA holds the whole area
      let whole = false;
      if (this.vmaAt(s)) { ws = Math.min(ws, this.q[0]); whole = this.q[1] >= e; if (whole) we = Math.max(we, this.q[1]); }
      if (!whole && this.vmaAt(e - 1)) we = Math.max(we, this.q[1]);
      if (this.overlaps(ws, we)) { ws = s; we = e; }
    }
    if (this.vmas.gone) return;
    this.counters.vmaUnregisters++;
    if (this.u.uffdUnregisterErrno(this.fd, ws, we - ws) === 0) return;
    if ((ws !== s || we !== e) && this.u.uffdUnregisterErrno(this.fd, s, e - s) === 0) return;
    this.counters.unregisterErrors++;
  }

  /**
   * The VMA holding addr into this.q (PROCMAP_QUERY; false: none, or no way to ask). A gone process answers ESRCH:
   * noted once, so a dead client's userptrs are let go without a syscall or an exception each.
   */
  private vmaAt(addr: number): boolean { return this.vmas.at(addr, this.q); }

  private unregisterRange(s: number, e: number): void {
    if (this.vmas.gone) return;
    if (this.u.uffdUnregisterErrno(this.fd, s, e - s) !== 0) this.counters.unregisterErrors++;
  }

  /** Sub-ranges of [s, e) not covered by any area. */
  private uncovered(s: number, e: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let at = s;
    for (const r of this.areas.overlapping(s, e - 1)) {
      if (r.start > at) out.push([at, r.start]);
      at = Math.max(at, r.end);
      if (at >= e) break;
    }
    if (at < e) out.push([at, e]);
    return out;
  }

  /** True iff some live userptr range overlaps [s, e) (events elsewhere in a watched VMA are dropped). */
  private wanted(s: number, e: number): boolean { return this.regTree.first(s, e - 1) !== null; }

  /**
   * The VMAs of [s, e) were unmapped (their registration went with them): cut the areas. A remaining piece no
   * userptr touches any more is unregistered now (an unmap in the middle of a VMA leaves two registered VMAs).
   */
  private cutAreas(s: number, e: number): void {
    const empty: Array<[number, number]> = [];
    for (const a of this.areas.overlapping(s, e - 1)) {
      this.areas.remove(a);
      const head = a.start < s, tail = a.end > e;
      if (head) this.keepPiece(a.start, s, empty);
      if (tail) this.keepPiece(e, a.end, empty);
    }
    for (const [ps, pe] of empty) this.unregisterArea(ps, pe);
  }

  /** A piece of a cut area: an area again while a registered range meets it, else noted in `empty`. */
  private keepPiece(s: number, e: number, empty: Array<[number, number]>): void {
    if (this.regTree.first(s, e - 1)) this.areas.insert(new Span(s, e)); else empty.push([s, e]);
  }

  /**
   * A registered VMA moved to [to, to + len) with its registration (REMAP; the UNMAP of the old range follows; a
   * grow moves it into a larger VMA, registered whole). No userptr lives there: unregister that whole VMA, unless it
   * merged into a VMA of an area (then it joins that area). A VMA holding the destination is ours whole: the kernel
   * merges VMAs of one userfaultfd only.
   */
  private remapped(to: number, len: number): void {
    let s = to, e = to + len;
    if (this.vmaAt(to)) {
      s = Math.min(s, this.q[0]);
      e = Math.max(e, this.q[1]);
      if (this.overlaps(s, e)) {
        this.addArea(s, e);
        return;
      }
    }
    for (const [us, ue] of this.uncovered(s, e)) this.unregisterRange(us, ue);
  }

  /** True iff [start, last] lies inside watched VMAs (removals there are reported synchronously). */
  exact(start: number, last: number): boolean {
    if (this.released) return false;
    return this.uncovered(start, last + 1).length === 0;
  }

  registrations(): number { return this.regs.size; }
  /** Watched VMA ranges (tests, doctor). */
  watchedAreas(): Array<[number, number]> { return this.areas.values().map((a) => [a.start, a.end]); }

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
    if (Atomics.load(h, 0) === 0) return;
    const recs = drainRecords(this.u, this.readerId);
    if (recs.length) this.convert(decodeReaderRecords(recs));
  }

  private convert(recs: UffdRecord[]): void {
    for (const r of recs) {
      this.counters.records++;
      switch (r.kind) {
        case 'UNMAP': {
          this.counters.unmap++;
          const want = this.wanted(r.start, r.end);
          if (!this.released) this.cutAreas(r.start, r.end);
          if (want) this.enqueue({ event: 'UNMAP', start: r.start, end: r.end, note: 'uffd UNMAP' }, r.readNs); else this.counters.dropped++;
          break;
        }
        case 'REMOVE': {
          this.counters.remove++;
          if (!this.wanted(r.start, r.end)) { this.counters.dropped++; break; }
          const v = removeVerdict(r.snapshot, r.start, r.end);
          this.enqueue({ event: 'CLEAR', start: r.start, end: r.end, removed: v.removed, note: v.note }, r.readNs);
          break;
        }
        case 'REMAP':
          // The UNMAP of the old range follows and does the invalidation. The registration moved with the VMA.
          this.counters.remap++;
          if (!this.released) this.remapped(r.to, r.len);
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

  private enqueue(e: NotifierEvent, readNs: bigint): void {
    if (this.queueReadNs === 0n || readNs < this.queueReadNs) this.queueReadNs = readNs;
    this.queue.push(e);
  }

  /** The child's uffd the kernel installed in our process; anything else a record names is left alone (logged once). */
  private closeForkFd(fd: number): void {
    if (closeIfUffd(this.u, fd)) { this.counters.forkFdsClosed++; return; }
    if (this.counters.forkFdsRefused++ === 0) this.log(`pid ${this.pid}: a uffd FORK record names fd ${fd}, which is not a userfaultfd: left open`);
  }

  drain(): readonly NotifierEvent[] {
    if (!this.released) this.pull();
    if (this.queue.length === 0) return EMPTY;
    const q = this.queue;
    this.queue = [];
    if (this.queueReadNs !== 0n) eventLatency.drained(this.queueReadNs);
    this.queueReadNs = 0n;
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
    if (this.ownVmas) this.vmas.release();
    if (this.regs.size > 0 && this.watching) this.watching.n--;
    this.regs.clear();
    this.regTree = new IntervalTreap<Reg>();
    this.areas = new IntervalTreap<Area>();
    this.queue = [];
  }
}

const EMPTY: readonly NotifierEvent[] = Object.freeze([]);

/**
 * Where the watchers of this JS thread drain their readers' records (decoded at once: nothing keeps a view of it),
 * grown to the largest drain up to SCRATCH_MAX; a larger one gets a buffer of its own (readerDrain).
 */
let scratch = new Uint8Array(4096);
const SCRATCH_MAX = 1 << 20;

/** The records queued by reader `id`, drained (a view of `scratch`, valid until the next drain). */
function drainRecords(u: UffdBinding, id: number): Uint8Array {
  for (;;) {
    const n = u.readerDrainInto(id, scratch);
    if (n >= 0) return scratch.subarray(0, n);
    if (-n > SCRATCH_MAX) return u.readerDrain(id); // all queued by now (more than -n if the reader read meanwhile)
    let size = scratch.length;
    while (size < -n) size *= 2;
    scratch = new Uint8Array(size);
  }
}
