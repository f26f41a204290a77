// The GPU VM range of an HSAKMT context: the guest library maps PROT_NONE over it with MAP_FIXED (clobbering whatever
// is there), so it must be a hole in that client's address space as its mappings are now. Allocations (MEMORY ALLOC)
// get addresses inside it.
import { USER_ADDR_END, type Mapping } from '../../memory/client-memory';

/** Size of the range handed out (4 GiB: what the guest library works with). */
export const VM_SIZE = 2 ** 32;
/** The range is aligned to its own size **[decision]** (easy to spot in maps and traces). */
const VM_ALIGN = VM_SIZE;
/** Lowest address considered: the first 4 GiB hold a non-PIE program and its heap. */
const VM_FLOOR = 2 ** 32;

/**
 * The middle of the largest hole of [VM_FLOOR, USER_ADDR_END) that holds `size` bytes aligned to VM_ALIGN, far from
 * the heap growing up and the mmap area growing down; null when none. `maps`: the client's mappings, sorted.
 */
export function findVmHole(maps: readonly Mapping[], size = VM_SIZE): number | null {
  let best: { lo: number; hi: number } | null = null;
  let prev = VM_FLOOR;
  const consider = (lo: number, hi: number): void => {
    const a = Math.ceil(lo / VM_ALIGN) * VM_ALIGN;
    if (a + size > hi) return;
    if (!best || hi - lo > best.hi - best.lo) best = { lo, hi };
  };
  for (const m of maps) {
    if (m.end <= prev) continue;
    if (m.start > prev) consider(prev, m.start);
    prev = Math.max(prev, m.end);
  }
  if (prev < USER_ADDR_END) consider(prev, USER_ADDR_END);
  if (!best) return null;
  const { lo, hi } = best as { lo: number; hi: number };
  const mid = Math.floor((lo + (hi - lo) / 2 - size / 2) / VM_ALIGN) * VM_ALIGN;
  const first = Math.ceil(lo / VM_ALIGN) * VM_ALIGN;
  return Math.max(first, Math.min(mid, Math.floor((hi - size) / VM_ALIGN) * VM_ALIGN));
}
