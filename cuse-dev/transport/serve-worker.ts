// The serving thread: a worker_threads Worker doing blocking reads and writes on the /dev/fuse or /dev/cuse fd
// (session/loop.ts), with the Device living in it (no cross-thread hop per ioctl). The main thread only mounts,
// handles signals and asks for snapshots/stop; messages are polled synchronously (receiveMessageOnPort) after each
// request, and the main thread wakes an idle loop by opening+closing the node itself (a "control" open, never a DRM
// file). Here: the messages, the summary and the main thread's handle; the thread's entry script, which composes the
// device, is the composition root's and is handed to ServeWorker by its caller.
import * as fs from 'fs';
import { Worker } from 'worker_threads';
import type { Session, SessionKind, SessionStats } from '../session/session';
import type { CuseParams } from '../session/init';
import type { CoreDevice } from '../session/core-api';

export type WatchChoice = 'auto' | 'uffd' | 'proc' | 'none';
export type DeviceMode = 'notifier' | 'pin';

/** What the serving thread builds its device from (plain data: it crosses to the worker in workerData). */
export interface DeviceConfig {
  /** Kernel uAPI revision name (default v1) and the `--mode` given on top of it (default: the revision's own). */
  uapi?: string;
  mode?: DeviceMode;
  profile?: string;
  watch: WatchChoice;
  /** The main thread's HandoffMailbox buffer: uffds of preloaded clients, by pid. */
  handoff?: SharedArrayBuffer;
  /** An eventfd the uffd readers bump on new events (set inside the serving worker). */
  notifyFd?: number;
  /** ptrace-inject a userfaultfd into clients that handed none over (default: on with the uffd/auto watchers). */
  inject?: boolean;
  /** uids whose processes may be injected into besides the server's own euid (uffd/inject-policy.ts). */
  injectUids?: number[];
  /** `--fault` rules, as given (cuse-dev/fault/rules.ts). */
  faults?: string[];
  /** The host completes each submission this long after taking it (0: at once); fence fds become readable then. */
  fenceDelayMs?: number;
  /** Fault injection of the HSAKMT host (capset 8 contexts). */
  hsakmt?: HsakmtFaults;
}

/** Fault injection of the HSAKMT host: ccmd names answered HSAKMT_STATUS_ERROR; fences of its submissions completed this late. */
export interface HsakmtFaults { fail?: string[]; fenceDelayMs?: number }

export interface WorkerConfig {
  fd: number;
  /** Int32Array(1) over shared memory: the main thread sets [0] before posting, so the loop polls its port only then. */
  mail?: SharedArrayBuffer;
  kind: SessionKind;
  tree?: { devicePath: string; modeBits: number; uid: number; gid: number };
  cuse?: CuseParams;
  device: DeviceConfig;
  trace?: string;
  /** Thread-group id whose opens are wake-ups (the serving process itself). */
  controlPid: number;
  maxWrite?: number;
}

/** The preload transport's serving thread (cli/preload-worker-main.ts): an event loop, no kernel fd. */
export interface PreloadWorkerConfig {
  device: DeviceConfig;
  trace?: string;
  /** The node channel's socket: parent folder (default: the channel's), mode and owner (as the node's would be). */
  channel: { base?: string; mode: number; uid?: number; gid?: number };
}

export type ToWorker = { type: 'stop' } | { type: 'snapshot'; id: number };

export interface Summary {
  clients: number; ioctls: number; opens: number; releases: number; retries: number; malformed: number; interrupts: number;
  userptrsCreated: number; userptrsSplit: number; userptrsEvicted: number; userptrsUnmapped: number; userptrsDeduped: number;
  /** Device files still open when the server stopped (closed by the stop). */
  openAtStop: number;
  /** Why the loop ended: 'stop', 'unmounted' (ENODEV), 'eof', or an errno code. */
  reason: string;
  /**
   * ptrace injections (when on): begun, injected, abandoned (no stop in time), tracee died during it, failed,
   * refused once stopped (not dumpable); declined: refused by the policy before any ptrace request.
   */
  inject?: { started: number; completed: number; abandoned: number; traceeDied: number; failed: number; refused: number; declined: number };
  /** uffd event read → the wake-up's service() done (BO deleted), over the latest events (when any woke the loop). */
  uffdEvents?: { n: number; medianUs: number; p99Us: number };
}

export type FromWorker =
  | { type: 'started'; watcher: string; reasons: string[]; socket?: string }
  | { type: 'init'; minor: number; kernelMinor: number; flags: number }
  | { type: 'log'; msg: string }
  | { type: 'snapshot'; id: number; counts: unknown; snapshot: unknown; stats: Record<string, number>; session: SessionStats; openFiles: number }
  | { type: 'summary'; summary: Summary }
  | { type: 'fatal'; msg: string };

/** The summary of a loop that had to be aborted (no counts could be collected). */
export function abortedSummary(): Summary {
  return { clients: 0, ioctls: 0, opens: 0, releases: 0, retries: 0, malformed: 0, interrupts: 0, userptrsCreated: 0, userptrsSplit: 0, userptrsEvicted: 0, userptrsUnmapped: 0, userptrsDeduped: 0, openAtStop: 0, reason: 'aborted' };
}

/** The loop's counters a summary names (a session's, or a transport's own with the same names). */
export type SummaryCounts = Pick<SessionStats, 'clients' | 'ioctls' | 'opens' | 'releases' | 'retries' | 'malformed' | 'interrupts'>;

export function summarize(session: { readonly stats: SummaryCounts }, dev: CoreDevice, openAtStop: number, reason: string): Summary {
  const s = dev.stats;
  return {
    clients: session.stats.clients, ioctls: session.stats.ioctls, opens: session.stats.opens, releases: session.stats.releases,
    retries: session.stats.retries, malformed: session.stats.malformed, interrupts: session.stats.interrupts,
    userptrsCreated: s?.userptrsCreated ?? 0, userptrsSplit: s?.userptrsSplit ?? 0, userptrsEvicted: s?.userptrsEvicted ?? 0,
    userptrsUnmapped: s?.userptrsUnmapped ?? 0, userptrsDeduped: s?.userptrsDeduped ?? 0, openAtStop, reason,
  };
}

// ---------------- main-thread side ----------------

export interface ServeWorkerEvents {
  log?: (msg: string) => void;
}

/** Main-thread handle on the serving worker. `poke` makes the kernel send a request (open+close the node). */
export class ServeWorker {
  readonly worker: Worker;
  readonly started: Promise<{ watcher: string; reasons: string[]; socket?: string }>;
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
  constructor(entry: string, cfg: WorkerConfig | PreloadWorkerConfig, private readonly poke: () => Promise<void>, ev: ServeWorkerEvents = {}) {
    this.worker = new Worker(entry, { workerData: { virtgpuServe: { ...cfg, mail: this.mail.buffer } } });
    let started!: (v: { watcher: string; reasons: string[]; socket?: string }) => void, startFail!: (e: Error) => void;
    let inited!: (v: { minor: number; kernelMinor: number; flags: number }) => void, initFail!: (e: Error) => void;
    let summary!: (s: Summary) => void, summaryFail!: (e: Error) => void;
    this.started = new Promise((res, rej) => { started = res; startFail = rej; });
    this.inited = new Promise((res, rej) => { inited = res; initFail = rej; });
    this.summaryP = new Promise((res, rej) => { summary = res; summaryFail = rej; });
    for (const p of [this.started, this.inited, this.summaryP]) p.catch(() => undefined);
    this.worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'started': started({ watcher: m.watcher, reasons: m.reasons, socket: m.socket }); break;
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

/** How a transport ends its serving: wake a loop that does not stop by itself, then release what it holds. */
export interface StopSteps {
  /** The loop did not stop in time: `what` is logged, `run` forces it out (its summary is then awaited briefly). */
  abort?: { what: string; run: () => Promise<void> };
  /** Release the node and the fd; `openFiles` > 0: files are still open and go to the unplugged answerer (unplugged.ts). */
  release(openFiles: number): Promise<void>;
}

/**
 * A transport's stop(), idempotent: ask the loop to stop (else abort it, or take an aborted summary), release with
 * the files still open after a clean stop, end the thread; resolves with the loop's summary.
 */
export function stopper(worker: ServeWorker, log: (msg: string) => void, steps: StopSteps): () => Promise<Summary> {
  let stopped: Promise<Summary> | undefined;
  return () => stopped ??= (async () => {
    let summary: Summary;
    try { summary = await worker.stop(); } catch (e) {
      const abort = steps.abort;
      log(abort ? `${(e as Error).message}: ${abort.what}` : (e as Error).message);
      if (abort) {
        await abort.run();
        summary = await Promise.race([worker.summary(), new Promise<Summary>((_, rej) => setTimeout(() => rej(new Error('no summary')), 2000))])
          .catch(() => abortedSummary());
      } else {
        summary = abortedSummary();
      }
    }
    await steps.release(summary.reason === 'stop' ? summary.openAtStop : 0);
    await worker.end();
    return summary;
  })();
}
