// GEM objects and the per-file handle idr (lowest free handle >= 1, like the kernel's idr_alloc(…, 1, 0)).
import type { DrmFile } from './file';
import type { Userptr } from '../userptr/userptr';
import type { BlobMemory } from '../memory/blob-memory';

/**
 * Per-kind operations (virtgpu_object.c style): kind checks compare this object, never flag bits. `D` is the driver
 * state and `P` the driver's per-file state the kind's release works on.
 */
export interface BoKind<D = any, P = any> {
  readonly name: 'guest' | 'host3d' | 'userptr' | 'resource3d';
  /** Undo what creation did beyond the resource id (pins, registrations). Called once, before RESOURCE_UNREF. */
  release(dev: D, file: DrmFile<P>, bo: GemObject): void;
}

/** What the core GEM ioctls need from the driver (drm_gem_handle_delete → the object's close and free). */
export interface GemDriver {
  gemClose(file: DrmFile, bo: GemObject): void;
}

export class GemObject {
  handle = 0;
  deleted = false;
  userptr: Userptr | null = null;
  /** blob_hints the create carried (7.2-based revisions): DEFER_MAPPING is recorded here. */
  blobHints = 0;
  /** The memory the server shares for a mappable BO, once allocated (vgdev.memoryOf); released with the BO. */
  memory: BlobMemory | null = null;
  constructor(
    readonly kind: BoKind,
    readonly resId: number,
    /** Bytes as RESOURCE_INFO reports them (page aligned for guest memory). */
    readonly size: number,
    readonly blobMem: number,
    readonly blobFlags: number,
    /** Context the object was attached to at handle creation (0: none). */
    readonly attachedCtx: number,
  ) {}
}

/**
 * Handles 1, 2, … in a dense array; the free ones below the high-water mark in a bitmap with a summary level above
 * each level (one bit per non-zero word below, up to a single word): the lowest free handle is found in one word per
 * level (log32 n: 4 levels cover a million handles), alloc and remove touch as many, and nothing grows or slows
 * down with the number of operations (the slots are reused, never deleted and re-inserted).
 */
export class HandleIdr<T> {
  /** slots[h]: the value of handle h (slot 0 unused). */
  private readonly slots: Array<T | undefined> = [undefined];
  private count = 0;
  /** The high-water mark: every handle in [1, next) is either live or marked free. */
  private next = 1;
  /** levels[0]: bit h set = handle h free; levels[l + 1]: bit w set = word w of levels[l] non-zero; the top has one word. */
  private levels: Uint32Array[] = [new Uint32Array(1)];

  get size(): number { return this.count; }
  get(h: number): T | undefined { return h >= 1 && h < this.next ? this.slots[h] : undefined; }
  *values(): IterableIterator<T> { for (let h = 1; h < this.next; h++) { const v = this.slots[h]; if (v !== undefined) yield v; } }
  /** Handles in ascending order (file close releases them in idr order). */
  sortedHandles(): number[] {
    const out: number[] = [];
    for (let h = 1; h < this.next; h++) if (this.slots[h] !== undefined) out.push(h);
    return out;
  }

  alloc(v: T): number {
    let h = this.lowestFree();
    if (h > 0) this.mark(h, false);
    else {
      h = this.next++;
      if (h >= 32 ** this.levels.length) this.grow();
      this.slots.push(undefined);
    }
    this.slots[h] = v;
    this.count++;
    return h;
  }

  remove(h: number): boolean {
    if (this.get(h) === undefined) return false;
    this.slots[h] = undefined;
    this.count--;
    this.mark(h, true);
    return true;
  }

  /** Set (free) or clear handle h's bit, and the summary bits above it that change. */
  private mark(h: number, free: boolean): void {
    let i = h;
    for (const a of this.levels) {
      const w = i >>> 5, bit = 1 << (i & 31), was = a[w]!;
      a[w] = free ? was | bit : was & ~bit;
      if (free ? was !== 0 : a[w] !== 0) return; // the word was (stays) non-zero: the levels above are unchanged
      i = w;
    }
  }

  /** The lowest free handle below the high-water mark, or 0. */
  private lowestFree(): number {
    const top = this.levels.length - 1;
    if (this.levels[top]![0] === 0) return 0;
    let i = 0;
    for (let l = top; l >= 0; l--) { const x = this.levels[l]![i]!; i = (i << 5) | (31 - Math.clz32(x & -x)); }
    return i;
  }

  /** 32× the capacity: every level gets 32× the words, and a new top word summarises the old top. */
  private grow(): void {
    const levels = this.levels.map((a) => { const b = new Uint32Array(a.length * 32); b.set(a); return b; });
    levels.push(Uint32Array.of(levels[levels.length - 1]![0] !== 0 ? 1 : 0));
    this.levels = levels;
  }
}
