// The serving thread: a worker_threads Worker doing blocking readSync/writeSync on the /dev/fuse or /dev/cuse fd,
// with the Device living in it (no cross-thread hop per ioctl). The main thread only mounts, handles signals and
// asks for snapshots/stop; messages are polled synchronously (receiveMessageOnPort) after each request, and the
// main thread wakes an idle loop by opening+closing the node itself (a "control" open, never a DRM file).
// Here: the messages, the serving loop and the main thread's handle; the thread's entry script, which composes the
// device, is the composition root's and is handed to ServeWorker by its caller.
import * as fs from 'fs';
import { Worker } from 'worker_threads';
import type { Session, SessionKind, SessionStats } from './session';
import { DEFAULT_MAX_WRITE, type CuseParams } from './init';
import { statsOf, type CoreDevice } from './core-api';
import { FUSE_MIN_READ_BUFFER } from '../abi/fuse';
import type { UffdBinding } from '../../uffd/native-types';

export type WatchChoice = 'auto' | 'uffd' | 'proc' | 'none';
export type DeviceMode = 'notifier' | 'pin';

/** What the serving thread builds its device from (plain data: it crosses to the worker in workerData). */
export interface DeviceConfig {
  mode: DeviceMode;
  profile?: string;
  watch: WatchChoice;
  /** The main thread's HandoffMailbox buffer: uffds of preloaded clients, by pid. */
  handoff?: SharedArrayBuffer;
  /** An eventfd the uffd readers bump on new events (set inside the serving worker). */
  notifyFd?: number;
  /** ptrace-inject a userfaultfd into clients that handed none over (default: on with the uffd/auto watchers). */
  inject?: boolean;
}

export interface WorkerConfig {
  fd: number;
  /** Int32Array(1) over shared memory: the main thread sets [0] before posting, so the loop polls its port only then. */
  mail?: SharedArrayBuffer;
  kind: SessionKind;
  tree?: { devicePath: string; modeBits: number };
  cuse?: CuseParams;
  device: DeviceConfig;
  trace?: string;
  /** Thread-group id whose opens are wake-ups (the serving process itself). */
  controlPid: number;
  maxWrite?: number;
}

/** The serving loop's read buffer: one request of max_write bytes plus its headers. */
export function readBufferSize(maxWrite: number = DEFAULT_MAX_WRITE): number { return maxWrite + 4096; }

export type ToWorker = { type: 'stop' } | { type: 'snapshot'; id: number };

export interface Summary {
  clients: number; ioctls: number; opens: number; releases: number; retries: number; malformed: number; interrupts: number;
  userptrsCreated: number; userptrsSplit: number; userptrsEvicted: number; userptrsUnmapped: number; userptrsDeduped: number;
  /** Device files still open when the server stopped (closed by the stop). */
  openAtStop: number;
  /** Why the loop ended: 'stop', 'unmounted' (ENODEV), 'eof', or an errno code. */
  reason: string;
  /** ptrace injections (when on): begun, injected, abandoned (no stop in time), tracee died during it, failed. */
  inject?: { started: number; completed: number; abandoned: number; traceeDied: number; failed: number };
}

export type FromWorker =
  | { type: 'started'; watcher: string; reasons: string[] }
  | { type: 'init'; minor: number; kernelMinor: number; flags: number }
  | { type: 'log'; msg: string }
  | { type: 'snapshot'; id: number; counts: unknown; snapshot: unknown; stats: Record<string, number>; session: SessionStats; openFiles: number }
  | { type: 'summary'; summary: Summary }
  | { type: 'fatal'; msg: string };

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

/** The addon's read/poll/write (cheaper per request than fs.*Sync); the caller uses fsIO when the addon cannot load. */
export function nativeIO(u: UffdBinding): LoopIO {
  return { read: (fd, buf, w) => u.readOrWake(fd, buf, w), write: (fd, buf) => { u.writeFd(fd, buf); }, writeRead: (fd, r, buf, w) => u.writeThenRead(fd, r, buf, w), waitReadable: (fd, w, ms) => u.pollReadable(w >= 0 ? [fd, w] : [fd], ms) !== 0, poll: (fds) => { const m = u.pollReadable(fds, 0); if (m & 2) u.eventfdDrain(fds[1]!); return m; } };
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
    const reply = session.handle(bytes.subarray(0, n));
    if (reply && combined && hooks.quiet!() && !(interleave && hooks.background!())) { pending = reply; continue; }
    if (reply) { const end = send(reply); if (end) return end; }
    if (hooks.afterRequest?.()) return 'stop';
  }
}

/** The summary of a loop that had to be aborted (no counts could be collected). */
export function abortedSummary(): Summary {
  return { clients: 0, ioctls: 0, opens: 0, releases: 0, retries: 0, malformed: 0, interrupts: 0, userptrsCreated: 0, userptrsSplit: 0, userptrsEvicted: 0, userptrsUnmapped: 0, userptrsDeduped: 0, openAtStop: 0, reason: 'aborted' };
}

export function summarize(session: Session, dev: CoreDevice, openAtStop: number, reason: string): Summary {
  const s = statsOf(dev);
  const n = (k: string): number => (typeof s[k] === 'number' ? s[k]! : 0);
  return {
    clients: session.stats.clients, ioctls: session.stats.ioctls, opens: session.stats.opens, releases: session.stats.releases,
    retries: session.stats.retries, malformed: session.stats.malformed, interrupts: session.stats.interrupts,
    userptrsCreated: n('userptrsCreated'), userptrsSplit: n('userptrsSplit'), userptrsEvicted: n('userptrsEvicted'),
    userptrsUnmapped: n('userptrsUnmapped'), userptrsDeduped: n('userptrsDeduped'), openAtStop, reason,
  };
}

// ---------------- main-thread side ----------------

export interface ServeWorkerEvents {
  log?: (msg: string) => void;
}

/** Main-thread handle on the serving worker. `poke` makes the kernel send a request (open+close the node). */
export class ServeWorker {
  readonly worker: Worker;
  readonly started: Promise<{ watcher: string; reasons: string[] }>;
  readonly inited: Promise<{ minor: number; kernelMinor: number; flags: number }>;
  readonly exited: Promise<number>;
  private summaryP: Promise<Summary>;
  private snapshots = new Map<number, (m: Extract<FromWorker, { type: 'snapshot' }>) => void>();
  private nextId = 1;
  private stopP?: Promise<Summary>;
  /** True once the worker thread ended (a thread blocked in read(2) would make process.exit hang). */
  hasExited = false;

  private readonly mail = new Int32Array(new SharedArrayBuffer(4));

  /** `entry`: the thread's script (the composition root's), which serves `workerData.virtgpuServe`. */
  constructor(entry: string, cfg: WorkerConfig, private readonly poke: () => Promise<void>, ev: ServeWorkerEvents = {}) {
    this.worker = new Worker(entry, { workerData: { virtgpuServe: { ...cfg, mail: this.mail.buffer } } });
    let started!: (v: { watcher: string; reasons: string[] }) => void, startFail!: (e: Error) => void;
    let inited!: (v: { minor: number; kernelMinor: number; flags: number }) => void, initFail!: (e: Error) => void;
    let summary!: (s: Summary) => void, summaryFail!: (e: Error) => void;
    this.started = new Promise((res, rej) => { started = res; startFail = rej; });
    this.inited = new Promise((res, rej) => { inited = res; initFail = rej; });
    this.summaryP = new Promise((res, rej) => { summary = res; summaryFail = rej; });
    for (const p of [this.started, this.inited, this.summaryP]) p.catch(() => undefined);
    this.worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'started': started({ watcher: m.watcher, reasons: m.reasons }); break;
        case 'init': inited(m); break;
        case 'log': ev.log?.(m.msg); break;
        case 'snapshot': this.snapshots.get(m.id)?.(m); this.snapshots.delete(m.id); break;
        case 'summary': summary(m.summary); initFail(new Error(`serving loop ended before INIT (${m.summary.reason})`)); break;
        case 'fatal': startFail(new Error(m.msg)); initFail(new Error(m.msg)); summaryFail(new Error(m.msg)); break;
      }
    });
    this.exited = new Promise((res) => this.worker.once('exit', (code) => {
      this.hasExited = true;
      const e = new Error(`serving worker exited (code ${code})`);
      startFail(e); initFail(e); summaryFail(e);
      res(code);
    }));
    this.worker.on('error', (e) => ev.log?.(`serving worker error: ${e.stack ?? e.message}`));
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
    Atomics.store(this.mail, 0, 1); // after the post: the loop that sees the flag finds the message
  }

  /** Counts, snapshot and stats as RunningServer.snapshot() returns them. */
  async counts(): Promise<{ counts: unknown; snapshot: unknown; stats: Record<string, number>; openFiles: number }> {
    const s = await this.snapshot();
    return { counts: s.counts, snapshot: s.snapshot, stats: s.stats, openFiles: s.openFiles };
  }

  /** Wait up to `ms` for the thread to end once its fd is gone, then terminate it. */
  async end(ms = 2000): Promise<void> {
    const exited = await Promise.race([this.exited, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
    if (exited === null) await this.worker.terminate();
  }

  /** The loop's summary, whenever it ends (stop, unmount, error). */
  summary(): Promise<Summary> { return this.summaryP; }

  /** Counts/snapshot/stats from inside the worker (wakes an idle loop with a control open). */
  async snapshot(timeoutMs = 5000): Promise<Extract<FromWorker, { type: 'snapshot' }>> {
    const id = this.nextId++;
    const p = new Promise<Extract<FromWorker, { type: 'snapshot' }>>((res, rej) => {
      const t = setTimeout(() => { this.snapshots.delete(id); rej(new Error('snapshot timed out')); }, timeoutMs);
      this.snapshots.set(id, (m) => { clearTimeout(t); res(m); });
    });
    this.post({ type: 'snapshot', id });
    await this.poke().catch(() => undefined);
    return p;
  }

  /** Ask the loop to end; resolves with its summary, or rejects after `timeoutMs` (caller then aborts the fd). */
  stop(timeoutMs = 3000): Promise<Summary> {
    if (this.stopP) return this.stopP;
    this.post({ type: 'stop' });
    void this.poke().catch(() => undefined);
    this.stopP = new Promise<Summary>((res, rej) => {
      const t = setTimeout(() => rej(new Error('serving loop did not stop in time')), timeoutMs);
      this.summaryP.then((s) => { clearTimeout(t); res(s); }, (e: Error) => { clearTimeout(t); rej(e); });
    });
    return this.stopP;
  }
}

/** Open and close the node from this process: the kernel sends OPEN(+FLUSH)+RELEASE, which wakes the loop. */
export async function pokeNode(path: string): Promise<void> {
  const fh = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  await fh.close();
}
