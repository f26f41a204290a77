// A simulated process address space with page frames, for tests that need no kernel features at all.
// Its events mimic the real watchers: in 'uffd' mode munmap/madvise/mremap/fork report synchronously (as the
// userfaultfd reader does) and mprotect comes from the /proc checker; in 'proc' mode everything is the /proc
// diff (range-diff.ts), computed at drain() like the real ProcWatcher at ioctl entry.
import { EFAULT, ENOMEM, type Errno } from '../errno';
import { NOT_PRESENT, PAGE_SIZE, pageDown, pageUp, USER_ADDR_END, type ClientEnv, type ClientMemory, type Mapping, type NotifierEvent, type NotifierSource, type Backing, type MemlockLimits } from './client-memory';
import { captureRange, diffRange, type RangeState } from './range-diff';

export interface Prot { read: boolean; write: boolean; exec: boolean }
export const PROT_RW: Prot = { read: true, write: true, exec: false };
export const PROT_R: Prot = { read: true, write: false, exec: false };
export const PROT_NONE: Prot = { read: false, write: false, exec: false };

/** A shared memory object (memfd/shm) or a file: its page cache. */
export class SimObject {
  readonly pages = new Map<number, number>(); // page offset -> frame
  constructor(readonly backing: 'shmem' | 'file') {}
}

interface Vma { start: number; end: number; prot: Prot; shared: boolean; backing: Backing; obj: SimObject | null; pgoff: number }
interface Page { frame: number; cow: boolean }

/** Frames and page contents shared by all simulated processes (a machine). */
export class SimMachine {
  private nextFrame = 0x1000;
  private nextPid = 1000;
  readonly data = new Map<number, Uint8Array>();
  allocFrame(): number { return this.nextFrame++; }
  allocPid(): number { return this.nextPid++; }
  process(mode: 'uffd' | 'proc' = 'uffd'): SimProcess { return new SimProcess(this, this.allocPid(), mode); }
}

export class SimProcess implements ClientMemory {
  private vmas: Vma[] = [];
  private readonly pages = new Map<number, Page>(); // private pages by address
  private nextAddr = 0x7f0000000000;
  readonly events: SimEvents;
  exited = false;
  /** RLIMIT_MEMLOCK and CAP_IPC_LOCK as a test sets them (null: unlimited). */
  memlock: MemlockLimits | null = null;

  constructor(readonly machine: SimMachine, readonly pid: number, readonly mode: 'uffd' | 'proc') {
    this.events = new SimEvents(this);
  }

  /** A ClientEnv for core. `released` counts release() calls (leak tests). */
  env(): ClientEnv & { released: number } {
    const self = this;
    const e = { pid: this.pid, memory: this as ClientMemory, events: this.events as NotifierSource, released: 0, release(): void { e.released++; self.events.reset(); } };
    return e;
  }

  // ---- the system calls a test performs ----

  mmap(len: number, prot: Prot = PROT_RW, opts: { shared?: boolean; obj?: SimObject; pgoff?: number; fixed?: number } = {}): number {
    const size = pageUp(len);
    let addr: number;
    if (opts.fixed !== undefined) {
      addr = opts.fixed;
      this.unmapRange(addr, addr + size, true); // MAP_FIXED over existing mappings: an UNMAP for them
    } else {
      this.nextAddr -= size + PAGE_SIZE; // leave a guard gap so neighbours never merge by accident
      addr = this.nextAddr;
    }
    const obj = opts.obj ?? (opts.shared ? new SimObject('shmem') : null);
    this.insertVma({ start: addr, end: addr + size, prot: { ...prot }, shared: !!opts.shared, backing: obj ? obj.backing : 'anon', obj, pgoff: opts.pgoff ?? 0 });
    return addr;
  }

  munmap(addr: number, len: number): void { this.unmapRange(addr, addr + pageUp(len), true); }

  /** MADV_DONTNEED / MADV_FREE / MADV_REMOVE. */
  madvise(addr: number, len: number, advice: 'DONTNEED' | 'FREE' | 'REMOVE'): void {
    const end = addr + pageUp(len);
    if (advice !== 'FREE') {
      for (let a = addr; a < end; a += PAGE_SIZE) {
        this.pages.delete(a);
        if (advice === 'REMOVE') { const v = this.vmaAt(a); if (v?.obj) v.obj.pages.delete(this.pgoffOf(v, a)); }
      }
      this.dropSharedPtes(addr, end);
    }
    this.events.emit({ event: 'CLEAR', start: addr, end, removed: advice !== 'FREE', note: `madvise ${advice}` });
  }

  mprotect(addr: number, len: number, prot: Prot): void {
    const end = addr + pageUp(len);
    this.splitAt(addr); this.splitAt(end);
    for (const v of this.vmas) if (v.start >= addr && v.end <= end) v.prot = { ...prot };
    this.events.emitProc({ event: 'PROTECTION_VMA', start: addr, end });
  }

  /** mremap: shrink in place, or move (to `fixed` or a new address) keeping the frames. Returns the new address. */
  mremap(addr: number, oldLen: number, newLen: number, fixed?: number): number | Errno {
    const oldEnd = addr + pageUp(oldLen);
    const newSize = pageUp(newLen);
    // The old range must be one mapped region (the kernel: EFAULT for holes).
    for (let a = addr; a < oldEnd; a += PAGE_SIZE) if (!this.vmaAt(a)) return EFAULT;
    if (newSize <= pageUp(oldLen) && fixed === undefined) {
      this.unmapRange(addr + newSize, oldEnd, true);
      return addr;
    }
    const dst = fixed ?? (this.nextAddr -= newSize + PAGE_SIZE);
    if (fixed !== undefined) this.unmapRange(dst, dst + newSize, true);
    this.splitAt(addr); this.splitAt(oldEnd);
    const moved = this.vmas.filter((v) => v.start >= addr && v.end <= oldEnd);
    const keepLen = Math.min(pageUp(oldLen), newSize);
    for (const v of moved) {
      const off = v.start - addr;
      if (off >= keepLen) continue;
      const nv: Vma = { ...v, start: dst + off, end: dst + Math.min(v.end - addr, keepLen), pgoff: v.pgoff };
      this.insertVma(nv);
    }
    for (let a = addr; a < addr + keepLen; a += PAGE_SIZE) { const p = this.pages.get(a); if (p) { this.pages.set(dst + (a - addr), p); this.pages.delete(a); } }
    if (newSize > keepLen) this.insertVma({ ...moved[moved.length - 1], start: dst + keepLen, end: dst + newSize });
    this.unmapRange(addr, oldEnd, true); // uffd: REMAP then UNMAP of the old range
    return dst;
  }

  /** fork(): the child shares private pages copy-on-write; the parent's userptrs get PROTECTION_PAGE. */
  fork(): SimProcess {
    const child = new SimProcess(this.machine, this.machine.allocPid(), this.mode);
    child.vmas = this.vmas.map((v) => ({ ...v, prot: { ...v.prot } }));
    child.nextAddr = this.nextAddr;
    for (const [a, p] of this.pages) { p.cow = true; child.pages.set(a, { frame: p.frame, cow: true }); }
    this.events.emit({ event: 'PROTECTION_PAGE', start: 0, end: USER_ADDR_END, note: 'fork' });
    return child;
  }

  /** Touch pages (fault them in; a write breaks copy-on-write: a silent frame change, no event). */
  touch(addr: number, len: number, write = true): Errno | undefined {
    for (let a = pageDown(addr); a < addr + len; a += PAGE_SIZE) {
      const e = this.fault(a, write);
      if (e) return e;
    }
    return undefined;
  }

  /** Compaction / THP collapse / KSM: move present pages to new frames, with no event (docs/semantics.md §4 "Frames"). */
  migrate(addr: number, len: number): void {
    for (let a = addr; a < addr + pageUp(len); a += PAGE_SIZE) {
      const p = this.pages.get(a);
      if (p && !p.cow) { const nf = this.machine.allocFrame(); this.copyData(p.frame, nf); p.frame = nf; }
    }
  }

  exit(): void { this.exited = true; this.events.emit({ event: 'RELEASE', start: 0, end: USER_ADDR_END, note: 'exit' }); }

  // ---- ClientMemory ----

  mappings(start: number, end: number): Mapping[] {
    return this.vmas.filter((v) => v.end > start && v.start < end).map((v) => ({ start: v.start, end: v.end, read: v.prot.read, write: v.prot.write, exec: v.prot.exec, shared: v.shared, backing: v.backing }));
  }

  memlockLimits(): MemlockLimits | null { return this.memlock; }

  populate(start: number, len: number, write: boolean): Errno | undefined {
    for (let a = start; a < start + len; a += PAGE_SIZE) {
      const v = this.vmaAt(a);
      if (!v || (!v.prot.read && !v.prot.write) || (write && !v.prot.write)) return ENOMEM;
      const e = this.fault(a, write);
      if (e) return ENOMEM;
    }
    return undefined;
  }

  frames(start: number, npages: number): Float64Array {
    const r = new Float64Array(npages);
    for (let i = 0; i < npages; i++) r[i] = this.frameAt(start + i * PAGE_SIZE);
    return r;
  }

  read(addr: number, len: number): Uint8Array | Errno {
    const out = new Uint8Array(len);
    for (let off = 0; off < len;) {
      const a = addr + off;
      const pa = pageDown(a);
      const v = this.vmaAt(pa);
      if (!v || !v.prot.read || this.fault(pa, false)) return EFAULT;
      const n = Math.min(len - off, pa + PAGE_SIZE - a);
      const d = this.machine.data.get(this.frameAt(pa));
      if (d) out.set(d.subarray(a - pa, a - pa + n), off);
      off += n;
    }
    return out;
  }

  write(addr: number, data: Uint8Array): Errno | undefined {
    for (let off = 0; off < data.length;) {
      const a = addr + off;
      const pa = pageDown(a);
      const v = this.vmaAt(pa);
      if (!v || !v.prot.write || this.fault(pa, true)) return EFAULT;
      const n = Math.min(data.length - off, pa + PAGE_SIZE - a);
      const f = this.frameAt(pa);
      let d = this.machine.data.get(f);
      if (!d) { d = new Uint8Array(PAGE_SIZE); this.machine.data.set(f, d); }
      // The whole of `data` as it is: a subarray of a small on-heap array would make V8 materialize its buffer.
      d.set(off === 0 && n === data.length ? data : data.subarray(off, off + n), a - pa);
      off += n;
    }
    return undefined;
  }

  /** Present frame at a page (NOT_PRESENT if none). */
  frameAt(a: number): number {
    const v = this.vmaAt(a);
    if (!v) return NOT_PRESENT;
    if (v.shared && v.obj) return this.sharedPtes.has(a) ? (v.obj.pages.get(this.pgoffOf(v, a)) ?? NOT_PRESENT) : NOT_PRESENT;
    return this.pages.get(a)?.frame ?? NOT_PRESENT;
  }

  // ---- internals ----

  /** Shared mappings: which PTEs are present (DONTNEED zaps them; the page-cache page stays). */
  private readonly sharedPtes = new Set<number>();

  private fault(a: number, write: boolean): Errno | undefined {
    const v = this.vmaAt(a);
    if (!v) return EFAULT;
    if (write && !v.prot.write) return EFAULT;
    if (v.shared && v.obj) {
      const off = this.pgoffOf(v, a);
      if (!v.obj.pages.has(off)) v.obj.pages.set(off, this.machine.allocFrame());
      this.sharedPtes.add(a);
      return undefined;
    }
    const p = this.pages.get(a);
    if (!p) { this.pages.set(a, { frame: this.machine.allocFrame(), cow: false }); return undefined; }
    if (write && p.cow) { const nf = this.machine.allocFrame(); this.copyData(p.frame, nf); p.frame = nf; p.cow = false; }
    return undefined;
  }

  private copyData(from: number, to: number): void { const d = this.machine.data.get(from); if (d) this.machine.data.set(to, d.slice()); }
  private pgoffOf(v: Vma, a: number): number { return v.pgoff + (a - v.start) / PAGE_SIZE; }
  private dropSharedPtes(s: number, e: number): void { for (let a = s; a < e; a += PAGE_SIZE) this.sharedPtes.delete(a); }

  vmaAt(a: number): Vma | undefined {
    for (const v of this.vmas) if (v.start <= a && a < v.end) return v;
    return undefined;
  }

  private insertVma(v: Vma): void { this.vmas.push(v); this.vmas.sort((x, y) => x.start - y.start); }

  private splitAt(a: number): void {
    const v = this.vmaAt(a);
    if (!v || v.start === a) return;
    const right: Vma = { ...v, prot: { ...v.prot }, start: a, pgoff: v.pgoff + (a - v.start) / PAGE_SIZE };
    v.end = a;
    this.insertVma(right);
  }

  private unmapRange(s: number, e: number, event: boolean): void {
    if (e <= s) return;
    this.splitAt(s); this.splitAt(e);
    const had = this.vmas.some((v) => v.start < e && v.end > s);
    this.vmas = this.vmas.filter((v) => !(v.start >= s && v.end <= e));
    for (let a = s; a < e; a += PAGE_SIZE) this.pages.delete(a);
    this.dropSharedPtes(s, e);
    if (event && had) this.events.emit({ event: 'UNMAP', start: s, end: e });
  }
}

/**
 * One registration of the simulated watcher (`state`: the range at its last diff, 'proc' mode only). A class, not an
 * object literal: V8 tracks the survival of literal allocation sites, and one whose objects live long (every live
 * userptr has one) gets pretenured, which puts every later short-lived registration straight into old space.
 */
class SimRegistration {
  constructor(readonly start: number, readonly last: number, public state: RangeState | null) {}
}

/** The simulated watcher of one process. */
export class SimEvents implements NotifierSource {
  private queue: NotifierEvent[] = [];
  /** state: the range at its last diff ('proc' mode only: in 'uffd' mode nothing is diffed, as the real uffd watcher keeps none). */
  private readonly regs = new Map<number, SimRegistration>();
  constructor(private readonly p: SimProcess) {}

  /** A synchronous (userfaultfd-like) event; dropped in 'proc' mode, where only the diff at drain() reports. */
  emit(ev: NotifierEvent): void {
    if (this.p.mode === 'proc' && ev.event !== 'RELEASE') return;
    if (!this.overlapsAny(ev.start, ev.end)) return; // uffd only reports registered ranges
    this.queue.push(ev);
  }
  /** What the /proc checker reports even next to a userfaultfd (protection changes). */
  emitProc(ev: NotifierEvent): void {
    if (this.p.mode === 'proc') return; // the diff will see it
    if (this.overlapsAny(ev.start, ev.end)) this.queue.push(ev);
  }
  private overlapsAny(s: number, e: number): boolean {
    for (const r of this.regs.values()) if (r.start < e && r.last >= s) return true;
    return false;
  }

  /** The largest id registered so far: a larger one is new (the device hands ids out ascending) and needs no delete. */
  private maxId = 0;

  register(id: number, start: number, last: number): void {
    const n = (last + 1 - start) / PAGE_SIZE;
    if (id <= this.maxId) this.regs.delete(id); // a re-registered id goes last, as after unregister + register (the diff's event order)
    else this.maxId = id;
    this.regs.set(id, new SimRegistration(start, last, this.p.mode === 'proc' ? captureRange(start, n, this.p.mappings(start, last + 1), this.p.frames(start, n)) : null));
  }
  unregister(id: number): void { this.regs.delete(id); }
  registrations(): number { return this.regs.size; }
  exact(): boolean { return this.p.mode === 'uffd'; }

  drain(): readonly NotifierEvent[] {
    if (this.p.mode === 'proc') {
      for (const r of this.regs.values()) {
        const n = (r.last + 1 - r.start) / PAGE_SIZE;
        const now = captureRange(r.start, n, this.p.mappings(r.start, r.last + 1), this.p.frames(r.start, n));
        this.queue.push(...diffRange(r.state!, now, true));
        r.state = now;
      }
    }
    if (this.queue.length === 0) return EMPTY;
    const q = this.queue;
    this.queue = [];
    return q;
  }
  /** Pending events (not drained yet). */
  pending(): number { return this.queue.length; }
  reset(): void { this.queue = []; this.regs.clear(); }
}
const EMPTY: readonly NotifierEvent[] = Object.freeze([]);


/** A ClientProvider over a SimMachine: each pid gets (or creates) a SimProcess. */
export function simProvider(machine: SimMachine, procs: Map<number, SimProcess>) {
  return (pid: number): ClientEnv => {
    let p = procs.get(pid);
    if (!p) { p = new SimProcess(machine, pid, 'uffd'); procs.set(pid, p); }
    return p.env();
  };
}
