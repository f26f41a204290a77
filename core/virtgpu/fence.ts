// Fences: one per EXECBUFFER submission (the kernel's virtio_gpu_fence), signalled when the host reports the
// submission complete (at once for the recording host; later for a host that delays). A transport that passes fds
// turns a fence into a real pollable fd (FENCE_FD_OUT) and a client's fd into an InFence (FENCE_FD_IN): IoctlFds.
import type { Errno } from '../errno';

export class Fence {
  signalled = false;
  private waiters: (() => void)[] = [];
  constructor(readonly id: number, readonly ctxId: number, readonly ringIdx: number) {}

  /** cb runs once the fence is signalled: at once when it is already. */
  onSignal(cb: () => void): void {
    if (this.signalled) cb();
    else this.waiters.push(cb);
  }

  signal(): void {
    if (this.signalled) return;
    this.signalled = true;
    const w = this.waiters;
    this.waiters = [];
    for (const cb of w) cb();
  }
}

/** A fence a client named by fd (FENCE_FD_IN), as the transport resolved it. */
export interface InFence {
  /** cb runs once, when the fd is signalled (readable); at once (or on the next turn) when it is already. */
  wait(cb: () => void): void;
  /** The transport's hold on the fd ends (after the wait fired, or when the submission is dropped). Idempotent. */
  release(): void;
}

/** What a transport that can pass fds gives an ioctl; absent over FUSE/CUSE, which cannot (fence flags: EOPNOTSUPP). */
export interface IoctlFds {
  /** The client's fd `fd` as a fence to wait on; EINVAL when it names no fd (sync_file_get_fence finds none). */
  inFence(fd: number): InFence | Errno;
  /**
   * An fd for `fence` that becomes readable once it is signalled, its number to be written at byte `offset` of the
   * ioctl's out struct; installed in the client only if the ioctl succeeds (else closed). Returns the errno when no fd
   * can be made (EMFILE), before anything was submitted.
   */
  install(offset: number, fence: Fence): Errno | undefined;
}

/** An EXECBUFFER submission as it waits for its in-fence (and for the file's earlier waiting ones: order is kept). */
export interface Submission { ctxId: number; ringIdx: number; data: Uint8Array; resIds: number[]; fence: Fence; inFence: InFence | null; ready: boolean }
