// Real fds for core's fences (core/virtgpu/fence.ts), for transports that pass fds. FENCE_FD_OUT: an eventfd per
// fence that becomes readable when the host completes the submission and stays readable (EFD_SEMAPHORE with a count
// no reader drains), so poll/sync_wait return and read/close do no harm. FENCE_FD_IN: a client's fd (received, or
// dup'd in-process) watched on the event loop; the submission waits until it is readable.
import { EINVAL, EMFILE, ENFILE, ENOMEM, type Errno } from '../core/errno';
import type { Fence, InFence } from '../core/virtgpu/fence';
import type { UffdBinding } from './native-types';
import { closeForeign, fdKind } from './verify';

/** An fd the server could not make: the kernel's get_unused_fd_flags errno (EMFILE, ENFILE), else ENOMEM. */
function fdFailure(e: unknown): Errno {
  const n = (e as { errno?: number }).errno;
  return n === EMFILE.errno ? EMFILE : n === ENFILE.errno ? ENFILE : ENOMEM;
}

/** The count written on completion: EFD_SEMAPHORE reads take 1 each, so the fd never stops being readable. */
const SIGNALLED = Buffer.from(new BigUint64Array([0xfffffffffffffffen]).buffer);

export interface FenceFdStats { outLive: number; inLive: number; outCreated: number; inCreated: number }

export class FenceFds {
  readonly stats: FenceFdStats = { outLive: 0, inLive: 0, outCreated: 0, inCreated: 0 };
  constructor(private readonly b: UffdBinding) {}

  /** A fence fd for `fence`: the caller passes `fd` on, then calls handedOver() (or discard() when it never will). */
  create(fence: Fence): FenceFd | Errno {
    const c = this.b.constants;
    let fd: number;
    try { fd = this.b.eventfd(c.EFD_CLOEXEC | c.EFD_NONBLOCK | c.EFD_SEMAPHORE); } catch (e) { return fdFailure(e); }
    this.stats.outLive++;
    this.stats.outCreated++;
    return new FenceFd(this, fd, fence);
  }

  /**
   * The client's fence fd, now owned here (received by SCM_RIGHTS, or a dup): an InFence, or EINVAL (the fd is
   * closed here) when it is no fence this node knows: an eventfd or another anonymous-inode fd such as a sync_file.
   */
  inFence(fd: number): InFence | Errno {
    const kind = fdKind(fd);
    // Anything else is closed off this thread: a client's file may be one whose close never returns (a FUSE flush).
    if (kind !== 'eventfd' && kind !== 'anon inode') { if (kind !== 'closed') closeForeign(this.b, fd); return EINVAL; }
    this.stats.inLive++;
    this.stats.inCreated++;
    return new WatchedFd(this, fd);
  }

  /** @internal */ write(fd: number): void { this.b.writeFd(fd, SIGNALLED); }
  /** @internal */ close(fd: number): void { try { this.b.close(fd); } catch { /* already gone */ } }
  /** @internal */ watch(fd: number, cb: () => void): number { return this.b.fdWatch(fd, () => cb()); }
  /** @internal */ unwatch(id: number): void { this.b.fdUnwatch(id); }
}

/** The server's fd of one fence: written on completion, closed once completed and handed over (or discarded). */
export class FenceFd {
  private signalled = false;
  private handed = false;
  private closed = false;
  constructor(private readonly owner: FenceFds, readonly fd: number, fence: Fence) {
    fence.onSignal(() => {
      if (this.closed) return;
      this.signalled = true;
      try { owner.write(fd); } catch { /* the fd cannot fail a write of one count; nothing to do if it did */ }
      this.maybeClose();
    });
  }
  /** The client has its own copy now; the server's is closed once the fence is signalled. */
  handedOver(): void { this.handed = true; this.maybeClose(); }
  /** The ioctl failed or the client is gone: nobody will get this fd. */
  discard(): void { this.handed = true; this.signalled = true; this.maybeClose(); }
  private maybeClose(): void {
    if (this.closed || !this.handed || !this.signalled) return;
    this.closed = true;
    this.owner.stats.outLive--;
    this.owner.close(this.fd);
  }
}

/** A client's fd the server waits on: readable (or hung up) once, then unwatched and closed. */
class WatchedFd implements InFence {
  private watchId = 0;
  private done = false;
  constructor(private readonly owner: FenceFds, private readonly fd: number) {}
  wait(cb: () => void): void {
    if (this.done || this.watchId) return;
    this.watchId = this.owner.watch(this.fd, () => { if (this.done) return; this.release(); cb(); });
  }
  release(): void {
    if (this.done) return;
    this.done = true;
    if (this.watchId) this.owner.unwatch(this.watchId);
    this.owner.stats.inLive--;
    this.owner.close(this.fd);
  }
}

/**
 * The IoctlFds of one ioctl call (core/virtgpu/fence.ts) over a transport's two fd moves: `take(n)` gets the server
 * its own fd for the client's fd n (a dup in-process, of the fd received for a "need fd" item over the preload's
 * socket; an errno when there is none), and after the ioctl finish() gives each installed fence fd's copy away
 * (in-process: its number written into the out struct; preload: an "install" item, the copy closed once sent) or,
 * when the ioctl failed, closes it. Every fd is made during the ioctl, before anything is submitted, so the only
 * failures (EMFILE, ENFILE) come back as the ioctl's errno.
 */
export class FdItems {
  private readonly installs: { offset: number; fence: FenceFd; copy: number }[] = [];
  constructor(private readonly fences: FenceFds, private readonly b: Pick<UffdBinding, 'dupFd' | 'close'>, private readonly take: (clientFd: number) => number | Errno) {}

  inFence(fd: number): InFence | Errno {
    let own: number | Errno;
    try { own = this.take(fd); } catch (e) { return fdFailure(e); }
    return typeof own === 'number' ? this.fences.inFence(own) : own;
  }

  install(offset: number, fence: Fence): Errno | undefined {
    const f = this.fences.create(fence);
    if (!(f instanceof FenceFd)) return f;
    let copy: number;
    try { copy = this.b.dupFd(f.fd); } catch (e) { f.discard(); return fdFailure(e); }
    this.installs.push({ offset, fence: f, copy });
    return undefined;
  }

  /** After the ioctl: on success `give` each installed fd's copy (now the receiver's to close), else close the copies. */
  finish(ok: boolean, give: (offset: number, fd: number) => void): void {
    for (const { offset, fence, copy } of this.installs.splice(0)) {
      if (!ok) { fence.discard(); try { this.b.close(copy); } catch { /* gone */ } continue; }
      fence.handedOver();
      give(offset, copy);
    }
  }
}
