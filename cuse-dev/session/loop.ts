// The serving loop (libfuse's fuse_loop.c): one read = one request, one write = one reply, on the /dev/fuse or
// /dev/cuse fd, with the session answering each request; it also waits on the watchers' wake fd, steps parked work
// and, when the addon loads, sends a reply and reads the next request in one native call.
import * as fs from 'fs';
import type { Session } from './session';
import { DEFAULT_MAX_WRITE } from './init';
import { FUSE_MIN_READ_BUFFER } from '../abi/fuse';
import type { UffdBinding } from '../../uffd/native-types';

/** The serving loop's read buffer: one request of max_write bytes plus its headers. */
export function readBufferSize(maxWrite: number = DEFAULT_MAX_WRITE): number { return maxWrite + 4096; }

export interface LoopHooks {
  /** After each request (and its reply): return true to leave the loop. */
  afterRequest?: () => boolean;
  log?: (msg: string) => void;
  /** An eventfd to wait on besides the device (memory events of watched clients), or -1 when none is needed now. */
  wakeFd?: () => number;
  /** The wake fd fired: run the work it stands for (core's service() for clients with pending events). */
  onWake?: () => void;
  /** True when afterRequest() has nothing to do now: the reply may then go out in the same call as the next read. */
  quiet?: () => boolean;
  /** Wake up after this many ms even with no request (-1: no timer): work driven by time, e.g. injections in flight. */
  timeoutMs?: () => number;
  /** The timeoutMs() timer elapsed with no request. */
  onTimeout?: () => void;
  /** Parked work is waiting (Session.parked() > 0): the loop then alternates step() with requests instead of blocking. */
  background?: () => boolean;
  /** One bounded step of parked work; a reply when a parked request completed. */
  step?: () => Uint8Array | null;
}

/** How the loop reads and writes the device fd: native read/poll when the addon loads, else Node's fs. */
export interface LoopIO {
  /** Bytes read, or -1 when only `wakeFd` (>= 0) became readable (it is drained). Throws errors with `.code`. */
  read(fd: number, buf: Buffer, wakeFd: number): number;
  write(fd: number, buf: Uint8Array): void;
  /** Optional: write the reply, then read as read() does, in one native call. Errors carry `.syscall`. */
  writeRead?(fd: number, reply: Uint8Array, buf: Buffer, wakeFd: number): number;
  /** Optional: wait up to timeoutMs for fd or wakeFd (if >= 0) to be readable; false on timeout. */
  waitReadable?(fd: number, wakeFd: number, timeoutMs: number): boolean;
  /** Optional: poll(2) [fd, wakeFd?] without blocking; bit i set when fds[i] is readable (a readable wakeFd is drained, as read() does). Needed to interleave. */
  poll?(fds: number[]): number;
}

export const fsIO: LoopIO = {
  read: (fd, buf) => fs.readSync(fd, buf, 0, buf.length, null),
  write: (fd, buf) => { fs.writeSync(fd, buf); },
};

/**
 * What this loop has bound (loopBind): its fd, buffer and the binding's number. Bound again when the fd or buffer
 * differs, and when another loopBind of this thread replaced it (loopNext then throws, the call is retried once).
 */
interface Binding { fd: number; buf: Buffer | null; id: number }
function bind(u: UffdBinding, b: Binding, fd: number, buf: Buffer): number {
  if (fd !== b.fd || buf !== b.buf) { b.id = u.loopBind(fd, buf); b.fd = fd; b.buf = buf; }
  return b.id;
}
function loopNext(u: UffdBinding, b: Binding, fd: number, reply: Uint8Array | null, buf: Buffer, w: number): number {
  try {
    return u.loopNext(bind(u, b, fd, buf), reply, w);
  } catch (e) {
    if ((e as { syscall?: string }).syscall !== undefined) throw e; // the syscalls' errors; else: rebound elsewhere
    b.fd = -1;
    return u.loopNext(bind(u, b, fd, buf), reply, w);
  }
}

/**
 * The addon's read/poll/write (cheaper per request than fs.*Sync); the caller uses fsIO when the addon cannot load.
 * Reads go through loopNext on the bound fd and buffer: per request, no typed array but the reply crosses into C.
 */
export function nativeIO(u: UffdBinding): LoopIO {
  const b: Binding = { fd: -1, buf: null, id: 0 };
  return {
    read: (fd, buf, w) => loopNext(u, b, fd, null, buf, w),
    write: (fd, buf) => { u.writeFd(fd, buf); },
    writeRead: (fd, r, buf, w) => loopNext(u, b, fd, r, buf, w),
    waitReadable: (fd, w, ms) => u.pollReadable(w >= 0 ? [fd, w] : [fd], ms) !== 0,
    poll: (fds) => { const m = u.pollReadable(fds, 0); if (m & 2) u.eventfdDrain(fds[1]!); return m; },
  };
}

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException)?.code ?? String(e);

/**
 * The blocking loop: one read = one request, one write = one reply. Returns why it ended.
 * ENOENT on write = the request was interrupted meanwhile (kernel dropped it); ENODEV on read = unmounted/aborted.
 * `writeFd` differs from `fd` only for stream stand-ins (a pipe pair in tests); /dev/fuse is one fd both ways.
 */
export function serveLoop(fd: number, session: Session, hooks: LoopHooks = {}, bufferSize = 256 * 1024, writeFd = fd, io: LoopIO = fsIO): string {
  const buf = Buffer.allocUnsafe(Math.max(bufferSize, FUSE_MIN_READ_BUFFER));
  // The session slices requests many times: views of a plain Uint8Array are cheaper than Buffer's FastBuffer ones.
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  let writeErrors = 0;
  // Steady state: the reply goes out in the same native call that reads the next request (one JS→C transition per
  // request), whenever afterRequest() has nothing to do; otherwise write, afterRequest, read as separate steps.
  const combined = io.writeRead && writeFd === fd && hooks.quiet ? io.writeRead : undefined;
  let pending: Uint8Array | null = null;
  const send = (reply: Uint8Array): string | null => {
    try {
      io.write(writeFd, reply);
    } catch (e) {
      const c = errCode(e);
      if (c === 'ENODEV') return 'unmounted';
      if (c !== 'ENOENT' && writeErrors++ < 3) hooks.log?.(`reply write failed: ${c}`);
    }
    return null;
  };
  const interleave = hooks.background && hooks.step && io.poll ? io.poll : undefined;
  for (;;) {
    let n: number;
    // Parked work (a big create's preparation): one bounded step per request read, and steps back to back while
    // no request waits, so other clients' requests are served within one step's time.
    if (interleave && hooks.background!()) {
      if (pending) { const r = pending; pending = null; const end = send(r); if (end) return end; }
      const done = hooks.step!();
      if (done) { const end = send(done); if (end) return end; }
      const wake = hooks.wakeFd ? hooks.wakeFd() : -1;
      let ready = 1; // a poll failure: let the read report it
      try { ready = interleave(wake >= 0 ? [fd, wake] : [fd]); } catch { /* below */ }
      if (ready & 2) hooks.onWake?.();
      if (!(ready & 1)) {
        if (done && hooks.afterRequest?.()) return 'stop';
        if ((hooks.timeoutMs?.() ?? -1) >= 0) hooks.onTimeout?.(); // injections in flight advance between steps too
        continue;
      }
    }
    try {
      const wake = hooks.wakeFd ? hooks.wakeFd() : -1;
      const timeout = !pending && io.waitReadable && hooks.timeoutMs ? hooks.timeoutMs() : -1;
      if (timeout >= 0 && !io.waitReadable!(fd, wake, timeout)) { hooks.onTimeout?.(); continue; }
      if (pending) { const r = pending; pending = null; n = combined!(fd, r, buf, wake); }
      else n = io.read(fd, buf, wake);
      if (n < 0) { hooks.onWake?.(); continue; }
    } catch (e) {
      const c = errCode(e);
      if ((e as { syscall?: string }).syscall === 'write') { // the reply of the combined call
        if (c === 'ENODEV') return 'unmounted';
        if (writeErrors++ < 3) hooks.log?.(`reply write failed: ${c}`);
        continue;
      }
      if (c === 'EINTR' || c === 'EAGAIN' || c === 'ENOENT') continue; // ENOENT: request aborted before we read it
      return c === 'ENODEV' ? 'unmounted' : c;
    }
    if (n === 0) return 'eof';
    const reply = session.handle(bytes, n);
    if (reply && combined && hooks.quiet!() && !(interleave && hooks.background!())) { pending = reply; continue; }
    if (reply) { const end = send(reply); if (end) return end; }
    if (hooks.afterRequest?.()) return 'stop';
  }
}

