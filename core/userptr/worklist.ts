// The per-file work list (docs/semantics.md §5): FIFO, each userptr at most once, UNMAP always wins; and when the worker runs.
// The worker itself is runWorker in notifier.ts.
import type { Userptr, WorkOp } from './userptr';

/** Userptrs queued on any work list of this thread: 0 means no worker has anything to do (ioctl entry skips them). */
let queuedAnywhere = 0;
export function anyWorkQueued(): boolean { return queuedAnywhere > 0; }

export class WorkList {
  private items: Userptr[] = [];
  private head = 0;

  get length(): number { return this.items.length - this.head; }

  /** Queue op X: not queued → append with op X; queued → replace op unless it is UNMAP. */
  queue(u: Userptr, op: WorkOp): void {
    if (!u.queued) {
      u.op = op;
      u.queued = true;
      this.items.push(u);
      queuedAnywhere++;
    } else if (u.op !== 'UNMAP') {
      u.op = op;
    }
  }

  shift(): Userptr | undefined {
    if (this.head >= this.items.length) return undefined;
    const u = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
    u.queued = false;
    queuedAnywhere--;
    return u;
  }

  /** Userptrs still queued (for snapshots). */
  pending(): Userptr[] { return this.items.slice(this.head); }
}

/** When the worker runs. Default: at every ioctl entry of the client (docs/semantics.md §5 "Ordering"); tests may hold it. */
export interface WorkScheduler {
  /** Run the worker at this ioctl's entry? (CREATE_BLOB and close always flush, as the kernel's flush does.) */
  runAtEntry(): boolean;
}
export const immediateScheduler: WorkScheduler = { runAtEntry: () => true };

/** A scheduler that holds the worker at ioctl entry while `held` (create and close still flush). For tests of the coalescing rules. */
export class DeferredScheduler implements WorkScheduler {
  held = true;
  runAtEntry(): boolean { return !this.held; }
}
