// Split (docs/semantics.md §6): an UNMAP of part [s, l] of [S, L] keeps [S, s-1] if s > S (everything after the hole is
// dropped), else [l+1, L]. No new BO; the host resource keeps its size and page list.
import type { Userptr } from './userptr';

/** Returns the kept range; callers re-key the tree and queue UPDATE. */
export function keptRange(S: number, L: number, s: number, l: number): [number, number] {
  if (s > S) return [S, s - 1];
  if (l < L) return [l + 1, L];
  throw new Error('split of a fully covered range'); // callers route whole-range UNMAPs to UNMAP
}

export function split(u: Userptr, s: number, l: number): void {
  const [a, b] = keptRange(u.start, u.last, s, l);
  u.start = a;
  u.last = b;
}
