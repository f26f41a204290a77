// Memory a test owns for its whole life. Node's own threads (libuv pool, V8, malloc arenas) map memory at any moment,
// so a test that munmaps a range and later maps at, or unmaps, that address again may destroy memory that is no
// longer its own. A Reservation is one PROT_NONE MAP_NORESERVE mapping that is never given up: ranges are carved in
// it with MAP_FIXED, and "unmapped" by mapping PROT_NONE MAP_FIXED over them (the kernel still reports the replaced
// mapping as unmapped: userfaultfd UNMAP, see reservation.test.ts). Where a test needs a true hole (a real munmap,
// or the old range of an mremap move), `refill` takes the address back with MAP_FIXED_NOREPLACE, and a range
// something else took in between is marked lost and never touched again.
import { loadTestkit } from '../../../uffd/load';

const u = loadTestkit();
const C = u.constants;
const PG = C.PAGE_SIZE;
const RW = C.PROT_READ | C.PROT_WRITE;
const ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS;
const NONE_FLAGS = ANON | C.MAP_NORESERVE;

export class Reservation {
  readonly base: number;
  readonly size: number;
  /** Ranges something else mapped into after a true hole: never touched again. */
  readonly lost: Array<[number, number]> = [];
  private next: number;

  /** Reserve `bytes` (rounded to pages) at an address the kernel picks, aligned to `align` bytes. */
  constructor(bytes = 64 << 20, align = PG) {
    const len = Math.ceil(bytes / PG) * PG;
    const raw = u.mmap(0, len + align, C.PROT_NONE, NONE_FLAGS, -1, 0);
    // The reservation keeps the slack too (never unmapped): the usable part starts at the aligned address.
    this.base = Math.ceil(raw / align) * align;
    this.size = len;
    this.next = this.base + PG; // a guard page before the first range
  }

  /** Inside the reservation and not lost. */
  owns(addr: number, len: number): boolean {
    if (addr < this.base || addr + len > this.base + this.size) return false;
    return !this.lost.some(([a, l]) => addr < a + l && a < addr + len);
  }

  private check(addr: number, len: number, what: string): void {
    if (!this.owns(addr, len)) throw new Error(`${what}: [0x${addr.toString(16)}, +0x${len.toString(16)}) is not owned by this reservation`);
  }

  /** A fresh address range of `len` bytes, aligned to `align`, followed by a guard page (not mapped: PROT_NONE). */
  take(len: number, align = PG): number {
    const a = Math.ceil(this.next / align) * align;
    const bytes = Math.ceil(len / PG) * PG;
    if (a + bytes + PG > this.base + this.size) throw new Error('reservation exhausted');
    this.next = a + bytes + PG;
    return a;
  }

  /** MAP_FIXED a mapping over an owned range (anonymous private RW by default; a file mapping with `fd`). */
  mapAt(addr: number, len: number, prot = RW, flags = ANON, fd = -1): number {
    this.check(addr, len, 'mapAt');
    return u.mmap(addr, len, prot, flags | C.MAP_FIXED, fd, 0);
  }

  /** A fresh anonymous RW mapping of `pages` pages, each touched (page i holds byte i + 1), like mapAnon. */
  map(pages: number, opts: { align?: number; touch?: boolean } = {}): number {
    const a = this.mapAt(this.take(pages * PG, opts.align), pages * PG);
    if (opts.touch !== false) for (let i = 0; i < pages; i++) u.poke(a + i * PG, Buffer.from([i + 1]));
    return a;
  }

  /** "munmap" that keeps the address: PROT_NONE MAP_FIXED over the range (the old mapping is unmapped). */
  unmap(addr: number, len: number): void {
    this.check(addr, len, 'unmap');
    u.mmap(addr, len, C.PROT_NONE, NONE_FLAGS | C.MAP_FIXED, -1, 0);
  }

  /** A real munmap of an owned range; the caller must `refill` it (at once, or after observing the hole). */
  munmap(addr: number, len: number): void {
    this.check(addr, len, 'munmap');
    u.munmap(addr, len);
  }

  /**
   * Take a true hole back (after `munmap`, or the old range of an mremap move) with MAP_FIXED_NOREPLACE. When
   * something else mapped into it meanwhile, the range is marked lost and left alone; returns whether it was refilled.
   */
  refill(addr: number, len: number): boolean {
    this.check(addr, len, 'refill');
    try {
      const got = u.mmap(addr, len, C.PROT_NONE, NONE_FLAGS | C.MAP_FIXED_NOREPLACE, -1, 0);
      if (got === addr) return true;
      // A kernel without MAP_FIXED_NOREPLACE treats it as a hint: give back what we did not ask for.
      u.munmap(got, len);
    } catch { /* EEXIST: something is there now */ }
    // Take back every page that is still free, and mark only the taken ones lost.
    for (let p = addr; p < addr + len; p += PG) {
      try {
        const got = u.mmap(p, PG, C.PROT_NONE, NONE_FLAGS | C.MAP_FIXED_NOREPLACE, -1, 0);
        if (got !== p) { u.munmap(got, PG); this.lost.push([p, PG]); }
      } catch { this.lost.push([p, PG]); }
    }
    return false;
  }
}

let shared: Reservation | null = null;

/** One reservation per test process (256 MiB of address space, 2 MiB aligned), kept until the process exits. */
export function reservation(): Reservation {
  if (shared === null) shared = new Reservation(256 << 20, 2 << 20);
  return shared;
}
