// /proc/PID/pagemap: one u64 per virtual page (Documentation/admin-guide/mm/pagemap.rst). Pure entry decode plus a
// reader doing ONE pread per range (1 GiB = 262144 entries = 2 MiB in ~3 ms; one pread per page is 140x slower).
import * as fs from 'fs';
import { NOT_PRESENT, PAGE_SIZE } from '../core/memory/client-memory';

export const PAGEMAP_ENTRY_SIZE = 8;
const PFN_MASK = (1n << 55n) - 1n; // bits 0-54: PFN when present (zero without CAP_SYS_ADMIN)
export const PM_SOFT_DIRTY = 55;
export const PM_EXCLUSIVE = 56; // page exclusively mapped (not shared COW with a forked child)
export const PM_UFFD_WP = 57;
export const PM_FILE = 61; // file page or shared anon
export const PM_SWAPPED = 62;
export const PM_PRESENT = 63;

export interface PagemapEntry { present: boolean; swapped: boolean; file: boolean; exclusive: boolean; softDirty: boolean; uffdWp: boolean; pfn: number }

const bit = (v: bigint, b: number): boolean => ((v >> BigInt(b)) & 1n) === 1n;

export function decodeEntry(v: bigint): PagemapEntry {
  const present = bit(v, PM_PRESENT);
  return {
    present, swapped: bit(v, PM_SWAPPED), file: bit(v, PM_FILE), exclusive: bit(v, PM_EXCLUSIVE),
    softDirty: bit(v, PM_SOFT_DIRTY), uffdWp: bit(v, PM_UFFD_WP), pfn: present ? Number(v & PFN_MASK) : 0,
  };
}

/** Raw entries of `npages` pages from `start` (page aligned) in one pread. Short reads (end of address space) → 0. */
export function readEntries(fd: number, start: number, npages: number): BigUint64Array {
  const buf = Buffer.alloc(npages * PAGEMAP_ENTRY_SIZE);
  let got = 0;
  const pos = Math.floor(start / PAGE_SIZE) * PAGEMAP_ENTRY_SIZE;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos + got);
    if (n <= 0) break;
    got += n;
  }
  return new BigUint64Array(buf.buffer, buf.byteOffset, npages);
}

/**
 * Frames of one process. A swapped page counts as NOT_PRESENT (a pinned page is never swapped; swap-in gives a new
 * frame anyway).
 *
 * Hidden PFNs (reader without CAP_SYS_ADMIN: present bit set, PFN 0): a per-page identity stands in for the frame.
 * It is stable while the page is seen present at every check and changes once the page has been seen not present
 * (DONTNEED/munmap + refault). APPROXIMATION: a replacement that happens entirely between two observations
 * (DONTNEED + refault, migration, COW break) keeps the same identity — with a userfaultfd on the client, REMOVE/UNMAP
 * events still mark removals exactly; with the /proc checker alone such a change goes unseen.
 */
export class PagemapReader {
  /** -1 until opened: at the server's fd limit the client is still served, and the first read opens it (fd-budget.ts). */
  private fd = -1;
  /** Identity per page address, only used when PFNs are hidden. */
  private readonly ident = new Map<number, number>();
  private nextIdent = 1;
  hiddenPfns = false;

  constructor(readonly pid: number) {
    try { this.fd = fs.openSync(`/proc/${pid}/pagemap`, 'r'); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // EACCES: a non-dumpable client of an unprivileged server (the preload transport serves it all the same);
      // reads try the open again and fail then.
      if (code !== 'EMFILE' && code !== 'ENFILE' && code !== 'ENOMEM' && code !== 'EACCES' && code !== 'EPERM') throw e;
    }
  }

  private closed = false;

  /** The open /proc/PID/pagemap fd, opened now if the open at attach time found no fd left. */
  file(): number {
    if (this.closed) throw Object.assign(new Error(`pagemap of ${this.pid} read after close`), { code: 'EBADF' });
    if (this.fd < 0) this.fd = fs.openSync(`/proc/${this.pid}/pagemap`, 'r');
    return this.fd;
  }

  frames(start: number, npages: number): Float64Array {
    const out = new Float64Array(npages);
    if (npages === 0) return out;
    this.decode(readEntries(this.file(), start, npages), start, out, 0);
    return out;
  }

  /** Frames of the raw entries of the pages from `start` into out[at…]. */
  decode(raw: BigUint64Array, start: number, out: Float64Array, at: number): void {
    const npages = raw.length;
    // u32 halves instead of BigInt shifts (10x faster per entry): hi bit 31 = present (63), bit 30 = swapped (62),
    // PFN = (hi & 0x7fffff) * 2^32 + lo (bits 0-54).
    const w = new Uint32Array(raw.buffer, raw.byteOffset, npages * 2);
    for (let i = 0; i < npages; i++) {
      const hi = w[2 * i + 1];
      const present = (hi & 0x80000000) !== 0 && (hi & 0x40000000) === 0;
      if (!present) {
        if (this.hiddenPfns) this.ident.delete(start + i * PAGE_SIZE);
        out[at + i] = NOT_PRESENT;
        continue;
      }
      const pfn = (hi & 0x7fffff) * 0x100000000 + w[2 * i];
      if (pfn !== 0) { out[at + i] = pfn; continue; }
      this.hiddenPfns = true;
      const addr = start + i * PAGE_SIZE;
      let id = this.ident.get(addr);
      if (id === undefined) { id = this.nextIdent++; this.ident.set(addr, id); }
      out[at + i] = id;
    }
  }

  /** Raw entries (diagnostics, tests). */
  entries(start: number, npages: number): PagemapEntry[] {
    return [...readEntries(this.file(), start, npages)].map(decodeEntry);
  }

  close(): void {
    this.closed = true;
    if (this.fd >= 0) { fs.closeSync(this.fd); this.fd = -1; }
    this.ident.clear();
  }
}
