// The fake mmap offsets of GEM objects (the kernel's drm_vma_offset_manager): page ranges from
// DRM_FILE_PAGE_OFFSET_START up, one per object that was asked for one, never reused. Lookup finds the object whose
// range holds [offset, offset + length) as drm_vma_offset_lookup_locked does; a range that leaves it finds nothing.
// Ranges are handed out in ascending order, so the live ones sit sorted in an array: binary search to look up, a
// tombstone to remove, compaction once half are tombstones (O(log n) lookup, O(1) amortized insert and remove).
import { PAGE_SIZE } from '../memory/client-memory';

/** DRM_FILE_PAGE_OFFSET_START in pages: offsets live above 4 GiB (below are the legacy map offsets). */
const FIRST_PAGE = 0x100000000 / PAGE_SIZE;

interface Node<T> { start: number; pages: number; value: T | null }

export class MapOffsets<T> {
  private nodes: Node<T>[] = [];
  private dead = 0;
  private nextPage = FIRST_PAGE;
  private readonly byValue = new Map<T, Node<T>>();

  get size(): number { return this.byValue.size; }

  /** The byte offset of `v`'s range, allocating `bytes` (rounded up to pages, at least one) at the first call. */
  offsetOf(v: T, bytes: number): bigint {
    let n = this.byValue.get(v);
    if (!n) {
      const pages = Math.max(1, Math.ceil(bytes / PAGE_SIZE));
      n = { start: this.nextPage, pages, value: v };
      this.nextPage += pages;
      this.nodes.push(n);
      this.byValue.set(v, n);
    }
    return BigInt(n.start) * BigInt(PAGE_SIZE);
  }

  /** The object whose range holds [offset, offset + length) and the byte offset inside it; null when none does. */
  lookup(offset: bigint, length: number): { value: T; within: number } | null {
    if (offset < 0n || offset % BigInt(PAGE_SIZE) !== 0n || length <= 0) return null;
    const page = Number(offset / BigInt(PAGE_SIZE));
    const pages = Math.ceil(length / PAGE_SIZE);
    let lo = 0, hi = this.nodes.length - 1, found: Node<T> | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1, n = this.nodes[mid]!;
      if (n.start <= page) { found = n; lo = mid + 1; } else hi = mid - 1;
    }
    if (!found || found.value === null || page + pages > found.start + found.pages) return null;
    return { value: found.value, within: (page - found.start) * PAGE_SIZE };
  }

  /** `v`'s range is gone (its object was freed): a later lookup there finds nothing. */
  remove(v: T): void {
    const n = this.byValue.get(v);
    if (!n) return;
    this.byValue.delete(v);
    n.value = null;
    if (++this.dead * 2 > this.nodes.length) { this.nodes = this.nodes.filter((x) => x.value !== null); this.dead = 0; }
  }
}
