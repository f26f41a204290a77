// GEM objects and the per-file handle idr (lowest free handle >= 1, like the kernel's idr_alloc(…, 1, 0)).
import type { DrmFile } from './file';
import type { Userptr } from '../userptr/userptr';

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

/** Min-heap of freed handles + a high-water mark: O(log n) lowest-free allocation. */
export class HandleIdr<T> {
  private readonly map = new Map<number, T>();
  private readonly free: number[] = [];
  private next = 1;

  get size(): number { return this.map.size; }
  get(h: number): T | undefined { return this.map.get(h); }
  values(): IterableIterator<T> { return this.map.values(); }
  /** Handles in ascending order (file close releases them in idr order). */
  sortedHandles(): number[] { return [...this.map.keys()].sort((a, b) => a - b); }

  alloc(v: T): number {
    const h = this.free.length ? this.popMin() : this.next++;
    this.map.set(h, v);
    return h;
  }

  remove(h: number): boolean {
    if (!this.map.delete(h)) return false;
    this.pushFree(h); // every free handle below the high-water mark sits in the heap: its min is the lowest free
    return true;
  }

  private pushFree(h: number): void {
    const a = this.free; a.push(h);
    let i = a.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (a[p] <= a[i]) break; [a[p], a[i]] = [a[i], a[p]]; i = p; }
  }
  private popMin(): number { return this.removeAt(0); }
  private removeAt(i: number): number {
    const a = this.free; const v = a[i]; const last = a.pop()!;
    if (i < a.length) {
      a[i] = last;
      // sift up then down
      let j = i;
      while (j > 0) { const p = (j - 1) >> 1; if (a[p] <= a[j]) break; [a[p], a[j]] = [a[j], a[p]]; j = p; }
      for (;;) {
        const l = 2 * j + 1, r = l + 1; let m = j;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === j) break;
        [a[m], a[j]] = [a[j], a[m]]; j = m;
      }
    }
    return v;
  }
}
