// ClientMemory for a real process: bytes through process_vm_readv/writev, mappings of a range from /proc/PID/maps
// (PROCMAP_QUERY per VMA of the range, vma-query.ts), frames from /proc/PID/pagemap, populate by madvise (own process)
// or by touching the pages from outside (another process).
import { EFAULT, ENOMEM, type Errno } from '../core/errno';
import { PAGE_SIZE, type ClientMemory, type Mapping, type MemlockLimits } from '../core/memory/client-memory';
import { readMemlockLimits } from './proc-limits';
import { loadUffd } from './load';
import type { Iov, UffdBinding } from './native-types';
import { PagemapReader, readEntries, PM_EXCLUSIVE, PM_FILE, PM_PRESENT, PM_SWAPPED } from './pagemap';
import { VmaQuery } from './vma-query';

/** How pages of another process are faulted in (see populate()). */
export type PopulateMethod = 'madvise' | 'process_madvise' | 'touch';

export interface ProcessMemoryOptions {
  binding?: UffdBinding;
  /** Fallbacks are announced once per process through this. */
  announce?: (key: string, msg: string) => void;
}

/** Most iovecs per process_vm_* call batch we build here (the addon splits at IOV_MAX anyway). */
const TOUCH_BATCH = 4096;

// Pagemap flag bits as bits of an entry's high u32 (bit 63 = bit 31 of the high half).
const HI_PRESENT = 2 ** (PM_PRESENT - 32), HI_SWAPPED = 2 ** (PM_SWAPPED - 32), HI_FILE = 2 ** (PM_FILE - 32), HI_EXCLUSIVE = 2 ** (PM_EXCLUSIVE - 32);

/** The kernel refused process_madvise(MADV_POPULATE_*) once: every later client goes straight to 'touch'. */
let processMadviseRefused = false;
/** The fallback to touching, said at the first page any client's populate touches (undefined: nothing to say). */
let touchNote: string | undefined;

export class ProcessMemory implements ClientMemory {
  private readonly u: UffdBinding;
  private readonly pagemap: PagemapReader;
  /** The mappings of a range, asked for that range only (shared with the /proc checker of this process). */
  readonly vmas: VmaQuery;
  private readonly announce: (key: string, msg: string) => void;
  private readonly self: boolean;
  /** process_madvise(MADV_POPULATE_*) is refused with EINVAL by every kernel so far (only COLD/PAGEOUT/WILLNEED/COLLAPSE are allowed); tried once, then 'touch'. */
  populateMethod: PopulateMethod;
  private closed = false;

  constructor(readonly pid: number, opts: ProcessMemoryOptions = {}) {
    this.u = opts.binding ?? loadUffd();
    this.announce = opts.announce ?? (() => undefined);
    this.self = pid === process.pid;
    this.populateMethod = this.self ? 'madvise' : processMadviseRefused ? 'touch' : 'process_madvise';
    this.pagemap = new PagemapReader(pid);
    this.vmas = new VmaQuery(pid, this.u);
  }

  // ---- UserCopy ----

  read(addr: number, len: number): Uint8Array | Errno {
    if (len === 0) return new Uint8Array(0);
    try { return this.u.processVmRead(this.pid, [{ addr, len }]); } catch { return EFAULT; }
  }

  write(addr: number, data: Uint8Array): Errno | undefined {
    if (data.length === 0) return undefined;
    try { this.u.processVmWrite(this.pid, addr, data); return undefined; } catch { return EFAULT; }
  }

  // ---- ClientMemory ----

  memlockLimits(): MemlockLimits | null { return readMemlockLimits(this.pid); }

  /** Raw maps text ('' once the process is gone). */
  mapsText(): string { return this.vmas.mapsText(); }

  /** Mappings overlapping [start, end) ([] once the process is gone). */
  mappings(start: number, end: number): Mapping[] { return this.vmas.mappings(start, end) ?? []; }

  /** Mappings of [start, end) with their protection only (backing not classified); null once the process is gone. */
  protections(start: number, end: number): Mapping[] | null { return this.vmas.mappings(start, end, false); }

  /** A new ioctl entry or timer pass: the last range's mappings are asked of the kernel again (vma-query.ts). */
  forget(): void { this.vmas.forget(); }

  frames(start: number, npages: number): Float64Array {
    const scan = this.lastScan;
    this.lastScan = null;
    if (scan && scan.start === start && scan.frames.length === npages) return scan.frames;
    try { return this.pagemap.frames(start, npages); } catch { return new Float64Array(npages); }
  }

  /**
   * Frames seen by the last 'touch' populate that found every page ready (nothing to fault in): a pin asks for
   * exactly those right after (core's pin: populate, then frames), and gets them without a second pagemap pass.
   * Taken by the next frames() call whatever it asks; any other populate replaces it.
   */
  private lastScan: { start: number; frames: Float64Array } | null = null;

  /** True once a present page was seen with PFN 0 (no CAP_SYS_ADMIN): frames are per-page identities (pagemap.ts). */
  get framesApproximate(): boolean { return this.pagemap.hiddenPfns; }

  /**
   * Fault in [start, start+len): MADV_POPULATE_WRITE (or _READ when !write) on our own process; for another process
   * process_madvise(MADV_POPULATE_*) when the kernel allows it, else 'touch': one process_vm_readv of the first byte
   * of every page that needs a fault (read fault), and for write, one process_vm_writev of those same bytes back
   * (write fault: allocates the private page / breaks copy-on-write like the kernel's FOLL_WRITE pin does).
   * Pages needing it: not present; for write on private mappings also present pages not exclusively mapped (the
   * zero page, pages shared copy-on-write with a forked child, private file pages not yet copied).
   * RACE (documented approximation): a client thread writing that very byte between our read and write-back loses
   * its write; only pages not yet written by the client (or shared COW) are touched, during its own create ioctl.
   */
  populate(start: number, len: number, write: boolean): Errno | undefined {
    if (len <= 0) return undefined;
    const C = this.u.constants;
    const advice = write ? C.MADV_POPULATE_WRITE : C.MADV_POPULATE_READ;
    if (this.populateMethod === 'madvise') {
      try { this.u.madvise(start, len, advice); return undefined; } catch { return ENOMEM; }
    }
    if (this.populateMethod === 'process_madvise') {
      let pidfd = -1;
      try {
        pidfd = this.u.pidfdOpen(this.pid);
        this.u.processMadvise(pidfd, [{ addr: start, len }], advice);
        return undefined;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'ENOSYS') return ENOMEM;
        this.populateMethod = 'touch';
        processMadviseRefused = true; // a property of the kernel: said once, not once per client
        // Said when a page is first touched: a client that faults its pages in itself (the preload does) never is.
        touchNote = `pid ${this.pid}: process_madvise(MADV_POPULATE_${write ? 'WRITE' : 'READ'}) -> ${code}; populating by touching pages through process_vm_readv/writev`;
      } finally {
        if (pidfd >= 0) this.u.close(pidfd);
      }
    }
    return this.touch(start, len, write);
  }

  private touch(start: number, len: number, write: boolean): Errno | undefined {
    const npages = Math.ceil((start % PAGE_SIZE + len) / PAGE_SIZE);
    const first = start - (start % PAGE_SIZE);
    const maps = write ? this.mappings(first, first + npages * PAGE_SIZE) : [];
    let mi = 0;
    let seen: Float64Array | null = new Float64Array(npages);
    this.lastScan = null;
    // TOUCH_BATCH pages at a time: one pread of their pagemap entries, decoded in place from u32 halves (no object
    // per page), then one process_vm_readv (+ writev) of the pages that need a fault.
    try {
      for (let b = 0; b < npages; b += TOUCH_BATCH) {
        const n = Math.min(TOUCH_BATCH, npages - b);
        const at = first + b * PAGE_SIZE;
        const raw = readEntries(this.pagemap.file(), at, n);
        const w = new Uint32Array(raw.buffer, raw.byteOffset, n * 2);
        const iovs: Iov[] = [];
        for (let i = 0; i < n; i++) {
          const hi = w[2 * i + 1];
          const a = at + i * PAGE_SIZE;
          let need = (hi & HI_PRESENT) === 0 || (hi & HI_SWAPPED) !== 0;
          if (!need && write) {
            while (mi < maps.length && maps[mi].end <= a) mi++;
            const m: Mapping | undefined = maps[mi] && maps[mi].start <= a ? maps[mi] : undefined;
            need = !!m && !m.shared && ((hi & HI_EXCLUSIVE) === 0 || (hi & HI_FILE) !== 0);
          }
          if (need) iovs.push({ addr: a, len: 1 });
        }
        if (iovs.length === 0) { if (seen) this.pagemap.decode(raw, at, seen, b); continue; }
        seen = null;
        if (touchNote) { this.announce('populate', touchNote); touchNote = undefined; }
        const bytes = this.u.processVmRead(this.pid, iovs);
        if (write) this.u.processVmWritev(this.pid, iovs, bytes);
      }
    } catch {
      return ENOMEM;
    }
    if (seen) this.lastScan = { start: first, frames: seen };
    return undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pagemap.close();
    this.vmas.release();
  }
}
