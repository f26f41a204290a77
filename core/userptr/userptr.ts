// The userptr object: the range it still covers, its pinned frames (indexed from the ORIGINAL start, docs/semantics.md §9),
// and its notifier state (op, in_release, evict range).
import type { GemObject } from '../drm/gem';
import type { Client } from '../client';
import { PAGE_SIZE } from '../memory/client-memory';

export type WorkOp = 'UNMAP' | 'UPDATE' | 'EVICT';

export class Userptr {
  /** [start, last]: page-aligned, inclusive; shrinks on split. */
  start: number;
  last: number;
  op: WorkOp | null = null;
  queued = false;
  inRelease = false;
  deleted = false;
  /** Pages this userptr counts in its client's pinned_vm (revisions that account pins; 0 elsewhere). */
  accounted = 0;
  /** Pending evict range [evictStart, evictEnd), or evictEnd = 0 when none. */
  evictStart = 0;
  evictEnd = 0;
  /** Per-page "removed by UNMAP/REMOVE" marks, allocated on first use. */
  removed: Uint8Array | null = null;
  /** Range currently registered with the watcher (regLast < 0: none). */
  regStart = 0;
  regLast = -1;
  /** Its node in the file's interval tree (interval-tree.ts; treePrio 0: not in the tree). */
  treeLeft: Userptr | null = null;
  treeRight: Userptr | null = null;
  treeMax = 0;
  treePrio = 0;
  treeSeq = 0;

  constructor(
    /** Unique per device: the key of its registration with the client's watcher, and the age order of dedup. */
    readonly id: number,
    readonly bo: GemObject,
    readonly client: Client,
    /** align_down(userptr) at creation: the anchor of page indexes and dedup offsets. */
    readonly origStart: number,
    readonly npages: number,
    readonly rdonly: boolean,
    /** Frame of each pinned page (index 0 = origStart). */
    readonly frames: Float64Array,
    /** 1 where the page is shared memory (memfd/shm/tmpfs): compared by frame after a removal; null: none is. */
    readonly shared: Uint8Array | null,
  ) {
    this.start = origStart;
    this.last = origStart + npages * PAGE_SIZE - 1;
  }

  /** Valid iff not in release and no op pending (docs/semantics.md §5); only valid userptrs are returned by dedup. */
  get valid(): boolean { return !this.inRelease && this.op === null && !this.deleted; }
  pageIndex(addr: number): number { return Math.floor((addr - this.origStart) / PAGE_SIZE); }
}
