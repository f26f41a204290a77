// Real fds for core's fences (core/virtgpu/fence.ts), for transports that pass fds. FENCE_FD_OUT: an eventfd per
// fence that becomes readable when the host completes the submission and stays readable (EFD_SEMAPHORE with a count
// no reader drains), so poll/sync_wait return and read/close do no harm. A fence the host completed before its
// ioctl returns gets a new fd of one eventfd its DRM file keeps for that (readable from birth; what one file's fds do
// to it reaches no other file's). FENCE_FD_IN: a client's fd (received, or
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
/** The initial count of a fence fd made already signalled (eventfd's count argument is 32 bits): 4e9 reads. */
const SIGNALLED_AT_BIRTH = 0xffffffff;
/** Fds held back for the fence fds an ioctl makes after its submission: a pending fence needs two (ours, the copy). */
const SPARES = 2;

export interface FenceFdStats { outLive: number; inLive: number; outCreated: number; inCreated: number }

export class FenceFds {
  readonly stats: FenceFdStats = { outLive: 0, inLive: 0, outCreated: 0, inCreated: 0 };
  /**
   * Fds held back: a FENCE_FD_OUT's fd is made when the ioctl hands it out, after the submission (already signalled
   * for a host that completed it meanwhile: one eventfd, nothing to write or copy), while the kernel fails fence fds
   * only before it submits. So an install first makes sure SPARES fds exist (an errno then, before the submission),
   * and a hand-out that finds the server out of fds frees one and tries again. Made again by later installs.
   */
  private readonly spares: number[] = [];
  /** Per DRM file (the transport's key): the eventfd every fence it got already signalled is an fd of. */
  private readonly signalledOf = new Map<object, number>();
  constructor(private readonly b: UffdBinding) {}

  /** The DRM file `key` is released: its signalled eventfd is closed (fds the client holds keep it open there). */
  forget(key: object): void {
    const fd = this.signalledOf.get(key);
    if (fd === undefined) return;
    this.signalledOf.delete(key);
    this.closeFd(fd);
  }

  /** Eventfds kept for files (signalledOf). */
  get signalledFiles(): number { return this.signalledOf.size; }

  /** @internal The file's signalled eventfd, made on first use (kept: the receiver gets a copy). */
  signalledFd(key: object): number {
    let fd = this.signalledOf.get(key);
    if (fd === undefined) { fd = this.eventfd(true); this.signalledOf.set(key, fd); }
    return fd;
  }

  /**
   * A fence fd for `fence` of the DRM file `key`, made by handOut() (or never, after discard()); an errno when the
   * server is out of fds.
   */
  create(fence: Fence, key: object): FenceFd | Errno {
    const c = this.b.constants;
    while (this.spares.length < SPARES) {
      try { this.spares.push(this.b.eventfd(c.EFD_CLOEXEC | c.EFD_NONBLOCK)); } catch (e) { return fdFailure(e); }
    }
    return new FenceFd(this, fence, key);
  }

  /** Closes the spares and every file's signalled eventfd (a server that stops). */
  close(): void {
    for (const fd of this.spares.splice(0)) this.closeFd(fd);
    for (const key of [...this.signalledOf.keys()]) this.forget(key);
  }

  /**
   * The client's fd, now owned here (received by SCM_RIGHTS, or a dup): an InFence, or EINVAL (the fd is
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

  /** @internal An fd made by `make`; out of fds, a spare is given up for it. */
  private made(make: () => number): number {
    try { return make(); } catch (e) {
      const spare = this.spares.pop();
      if (spare === undefined) throw e;
      this.closeFd(spare);
      return make();
    }
  }
  /** @internal A fence's eventfd, signalled from birth or not. */
  eventfd(signalled: boolean): number {
    const c = this.b.constants;
    const fd = this.made(() => this.b.eventfd(c.EFD_CLOEXEC | c.EFD_NONBLOCK | c.EFD_SEMAPHORE, signalled ? SIGNALLED_AT_BIRTH : 0));
    this.stats.outCreated++;
    return fd;
  }
  /** @internal */ dup(fd: number): number { return this.made(() => this.b.dupFd(fd)); }
  /** @internal */ write(fd: number): void { this.b.writeFd(fd, SIGNALLED); }
  /** @internal */ closeFd(fd: number): void { try { this.b.close(fd); } catch { /* already gone */ } }
  /** @internal */ watch(fd: number, cb: () => void): number { return this.b.fdWatch(fd, () => cb()); }
  /** @internal */ unwatch(id: number): void { this.b.fdUnwatch(id); }
}

/**
 * One FENCE_FD_OUT. handOut() gives the client an fd: for a fence already signalled, one of its file's signalled
 * eventfd (FenceFds.signalledFd: made once per file, readable from birth); for a pending one, a copy of the server's
 * eventfd, which is written and closed when the fence is signalled.
 */
export class FenceFd {
  private signalled = false;
  /** The server's eventfd of a pending fence handed out (-1: none). */
  private own = -1;
  private done = false;
  constructor(private readonly owner: FenceFds, fence: Fence, private readonly key: object) {
    fence.onSignal(() => {
      this.signalled = true;
      if (this.own < 0) return;
      try { owner.write(this.own); } catch { /* the fd cannot fail a write of one count; nothing to do if it did */ }
      this.release();
    });
  }
  /**
   * The fd the client gets: `kept` false, the receiver's to close once passed on; true, the file's signalled eventfd,
   * which the server keeps (pass a copy of it on). Throws when the server has no fd left.
   */
  handOut(): { fd: number; kept: boolean } {
    if (this.done) throw new Error('fence fd handed out twice');
    this.done = true;
    if (this.signalled) return { fd: this.owner.signalledFd(this.key), kept: true };
    const own = this.owner.eventfd(false);
    let copy: number;
    try { copy = this.owner.dup(own); } catch (e) { this.owner.closeFd(own); throw e; }
    this.own = own;
    this.owner.stats.outLive++;
    return { fd: copy, kept: false };
  }
  /** The ioctl failed or the client is gone: nobody will get this fd. */
  discard(): void { this.done = true; }
  private release(): void {
    const fd = this.own;
    this.own = -1;
    this.owner.stats.outLive--;
    this.owner.closeFd(fd);
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
    this.owner.closeFd(this.fd);
  }
}

/**
 * The IoctlFds of one ioctl call (core/virtgpu/fence.ts) over a transport's two fd moves: `take(n)` gets the server
 * its own fd for the client's fd n (a dup in-process, of the fd received for a "need fd" item over the preload's
 * socket; an errno when there is none), and after the ioctl finish() gives each installed fence's fd away
 * (in-process: its number written into the out struct; preload: an "install" item, closed once sent) or, when the
 * ioctl failed, discards it. Each fence fd is made during the ioctl, before anything is submitted, so the only
 * failures (EMFILE, ENFILE) come back as the ioctl's errno; the copy a still-pending fence needs afterwards is
 * covered by FenceFds' spares.
 */
export class FdItems {
  private readonly installs: { offset: number; fence: FenceFd }[] = [];
  /** `key`: the DRM file the ioctl is on (FenceFds.forget(key) when it is released). */
  constructor(private readonly fences: FenceFds, private readonly key: object, private readonly take: (clientFd: number) => number | Errno) {}

  inFence(fd: number): InFence | Errno {
    let own: number | Errno;
    try { own = this.take(fd); } catch (e) { return fdFailure(e); }
    return typeof own === 'number' ? this.fences.inFence(own) : own;
  }

  install(offset: number, fence: Fence): Errno | undefined {
    const f = this.fences.create(fence, this.key);
    if (!(f instanceof FenceFd)) return f;
    this.installs.push({ offset, fence: f });
    return undefined;
  }

  /**
   * After the ioctl: on success `give` each installed fence's fd (`kept` false: now the receiver's to close; true:
   * the server's, pass a copy on), else discard them.
   */
  finish(ok: boolean, give: (offset: number, fd: number, kept: boolean) => void): void {
    for (const { offset, fence } of this.installs.splice(0)) {
      if (!ok) { fence.discard(); continue; }
      let h: { fd: number; kept: boolean };
      // Out of fds even with the spares given up (another thread of this server took them): the fence is lost to
      // the client (its out fd stays as the struct had it); the submission stands, as it would have been queued.
      try { h = fence.handOut(); } catch { continue; }
      give(offset, h.fd, h.kept);
    }
  }
}
