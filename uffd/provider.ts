// The ClientProvider the transports hand to core for real client processes: one ProcessMemory + ClientWatch per
// thread group, a uffd from our own process, the preload handoff or a ptrace injection, every fallback announced once.
import * as fs from 'fs';
import { constants as osConstants } from 'os';
import { performance } from 'perf_hooks';
import type { ClientEnv, ClientProvider } from '../core/memory/client-memory';
import { createOwnUffd, type UffdSource } from './acquire';
import { Injection, INJECT_STOP_TIMEOUT_MS, type InjectionOutcome, type InjectResult } from './inject';
import { InjectPolicy, refusalMessage, type Refusal, type RefusalKind } from './inject-policy';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { ProcessMemory } from './process-memory';
import { UffdWatcher, type WatchingCount } from './uffd-watcher';
import { isUffdRefused, RefusalLog, type AdoptedUffd } from './verify';
import { ClientWatch, type WatchMode } from './watch';

export interface ClientProviderOptions {
  watch?: WatchMode;
  log?: (msg: string) => void;
  /** Async wake-up: wire to `(pid) => device.service(pid)`. Runs on the JS thread that created the client. */
  onPending?: (pid: number) => void;
  /** An eventfd every uffd reader bumps on new events, for a serving loop that blocks in poll() instead of the event loop. */
  notifyFd?: number;
  /** /proc checker interval (ms) in addition to every ioctl entry; 0 = ioctl entry only. Default 100. */
  procIntervalMs?: number;
  /** Where handed-over uffds come from (the preload handshake); none: only our own process gets a uffd. */
  handoff?: UffdSource | null;
  binding?: UffdBinding;
  /** Tests: build the UffdWatcher without its reader (a daemon that never reads). */
  startReader?: boolean;
  /**
   * ptrace-inject a uffd into clients that handed none over (x86-64; needs ptrace rights over the client). Runs in
   * the background from the event loop (inject.ts explains why it cannot be synchronous); the client is watched by
   * /proc until it completes. Transports may instead call provider.inject(pid, tid) with the requesting thread.
   */
  inject?: boolean;
  /** Who may be injected into (inject-policy.ts); default: dumpable processes of this process's euid that did not opt out. */
  injectPolicy?: InjectPolicy;
}

export interface RealClientEnv extends ClientEnv {
  readonly memory: ProcessMemory;
  readonly events: ClientWatch;
}

/** A ClientProvider with the bookkeeping a daemon needs. */
export interface RealClientProvider extends ClientProvider {
  readonly live: ReadonlyMap<number, RealClientEnv>;
  /** Every fallback announcement made so far (also sent to log). */
  readonly announcements: readonly string[];
  /** Clients whose uffd has at least one range registered now (counted as ranges come and go, never by a scan). */
  readonly watchingClients: number;
  /** Release every client still alive (daemon shutdown): closes every uffd, so no client stays blocked. */
  shutdown(): void;
  /** Inject a uffd into a live client without one (thread `tid`, default its main thread); true once attached. */
  inject(pid: number, tid?: number): Promise<boolean>;
  /**
   * For a serving loop that blocks in read(2) (no event loop): seize + interrupt thread `tid` of a client without a
   * uffd, BEFORE replying to its request; the thread stops at its syscall exit, before running any user code.
   * False when there is nothing to do (has a uffd, already pending, /proc mode) or ptrace is refused (announced).
   */
  beginInjection(pid: number, tid: number): boolean;
  /**
   * Advance every injection in flight without blocking on any tracee: spins at most `budgetMs` (default 2) while one
   * is expected to stop within microseconds, then returns; call again when injectionWaitMs() elapses.
   */
  completeInjections(budgetMs?: number): void;
  /** Injections not finished yet (in flight, or a tracee still attached until it stops or is reaped). */
  readonly pendingInjections: number;
  /** How soon completeInjections() should run again (ms), -1 when nothing is in flight. */
  injectionWaitMs(): number;
  /**
   * Counters since start: begun, injected, abandoned (no stop in time), tracee died during it, failed, refused once
   * stopped (not dumpable), pending; declined: never begun (the policy's /proc checks refused the process).
   */
  readonly injectStats: InjectStats;
}

export interface InjectStats { started: number; completed: number; abandoned: number; traceeDied: number; failed: number; refused: number; declined: number; pending: number }

/**
 * Maps a thread-group id to ProcessMemory + its watcher, one per process; core's release() frees it.
 * uffd source, in order: our own process → create one; a uffd handed over through `handoff` → take it; else none
 * (announced; /proc only) until one is injected: with `inject`, started in the background at the client's first
 * open, or driven by a serving loop through beginInjection/completeInjections (uffd/inject.ts does the ptrace steps),
 * into the processes `injectPolicy` allows (uffd/inject-policy.ts; each refusal announced once per reason).
 */
export function createClientProvider(opts: ClientProviderOptions = {}): RealClientProvider {
  const u = opts.binding ?? loadUffd();
  const mode = opts.watch ?? 'auto';
  const log = opts.log ?? (() => undefined);
  const live = new Map<number, RealClientEnv>();
  const watching: WatchingCount = { n: 0 };
  const announced = new Set<string>();
  const announcements: string[] = [];
  const policy = opts.injectPolicy ?? new InjectPolicy();

  /** Every fallback is logged once per key (per-client keys start with the pid). */
  const once = (key: string, msg: string): void => {
    if (announced.has(key)) return;
    announced.add(key); announcements.push(msg); log(msg);
  };
  const pendingOf = (pid: number): (() => void) | undefined => (opts.onPending ? () => opts.onPending!(pid) : undefined);
  // Every uffd is verified before it becomes a watcher (verify.ts); a refusal is logged once per kind and source.
  const refusals = new RefusalLog(log);
  // The watcher asks its VMAs through the client's ProcessMemory (one maps fd per client).
  const watcher = (pid: number, fd: number, features: bigint | undefined, memory: ProcessMemory): UffdWatcher =>
    new UffdWatcher({ binding: u, pid, uffd: fd, features, onPending: pendingOf(pid), log, startReader: opts.startReader, notifyFd: opts.notifyFd, watching, vmas: memory.vmas });

  /**
   * The handed-over uffd of pid's current image. A process that execs after its preload handed one over (a dynamically
   * linked wrapper such as env or setpriv that execs the client, which may be statically linked) keeps its pid, but
   * that uffd's mm is gone: UFFDIO_UNREGISTER of any page answers ENOMEM there (EINVAL or 0 in a live mm, never a
   * change: nothing is registered on it yet). Such uffds are closed; the client then gets one injected.
   */
  const takeCurrent = (src: UffdSource, pid: number): AdoptedUffd | 'stale' | null => {
    let stale = false;
    for (let h = src.take(pid); h; h = src.take(pid)) {
      if (u.uffdUnregisterErrno(h.fd, STALE_PROBE_ADDR, u.constants.PAGE_SIZE) !== ENOMEM) return h;
      u.close(h.fd);
      stale = true;
    }
    return stale ? 'stale' : null;
  };

  const provider = ((pid: number): ClientEnv => {
    const existing = live.get(pid);
    if (existing) return existing;
    const announce = (key: string, msg: string): void => once(`${pid}:${key}`, msg);
    const memory = new ProcessMemory(pid, { binding: u, announce });
    const onPending = pendingOf(pid);
    let uffd: UffdWatcher | null = null;
    let reason = '';
    if (mode !== 'proc') {
      let fd: number | null = null;
      let features: bigint | undefined;
      if (pid === process.pid) {
        try { fd = createOwnUffd(u); } catch (e) { reason = `userfaultfd(): ${(e as { code?: string }).code ?? String(e)}`; }
      } else {
        const handed = opts.handoff ? takeCurrent(opts.handoff, pid) : null;
        if (handed && handed !== 'stale') ({ fd, features } = handed);
        if (fd === null) {
          reason = handed === 'stale' ? 'the uffd it handed over was for the program it replaced by exec (closed)'
            : opts.handoff ? 'the client handed over no uffd (not started through `virtgpu-emu run` / the preload library)' : 'no uffd handoff configured';
        }
      }
      if (fd !== null) {
        try {
          uffd = watcher(pid, fd, features, memory);
        } catch (e) {
          if (isUffdRefused(e)) refusals.refuse('own', `pid ${pid}`, e);
          reason = isUffdRefused(e) ? `uffd refused: ${e.message}` : `reader: ${(e as { code?: string }).code ?? String(e)}`;
        }
      }
    }
    const events = new ClientWatch({ mode, memory, uffd, uffdReason: reason, procIntervalMs: opts.procIntervalMs ?? 100, onPending, announce, binding: u });
    const env: RealClientEnv = {
      pid, memory, events,
      release(): void {
        if (live.get(pid) === env) live.delete(pid);
        events.release();
        memory.close();
      },
    };
    live.set(pid, env);
    if (!uffd && mode !== 'proc' && opts.inject && pid !== process.pid) void provider.inject(pid);
    return env;
  }) as RealClientProvider;

  Object.defineProperty(provider, 'live', { get: () => live });
  Object.defineProperty(provider, 'announcements', { get: () => announcements });
  Object.defineProperty(provider, 'watchingClients', { get: () => watching.n });
  provider.shutdown = (): void => { for (const env of [...live.values()]) env.release(); };
  // Injections in flight, by pid, until no tracer link is left (inject.ts: never a blocking wait on a tracee).
  const pending = new Map<number, Injection>();
  const waiters = new Map<number, (ok: boolean) => void>();
  const stats = { started: 0, completed: 0, abandoned: 0, traceeDied: 0, failed: 0, refused: 0, declined: 0 };
  /** A refusal by the policy, before the seize or once stopped: announced once per kind, never per client. */
  const refuse = (r: Refusal): void => { once(`inject:refused:${r.kind}`, refusalMessage(r)); };
  const attach = (pid: number, r: InjectResult): boolean => {
    const env = live.get(pid);
    if (!env || env.events.released) { u.close(r.fd); return false; }
    const ok = env.events.attachUffd(watcher(pid, r.fd, r.features, env.memory));
    if (ok) log(`pid ${pid}: userfaultfd injected by ptrace into thread ${r.tid} in ${r.ms.toFixed(2)} ms${r.userModeOnly ? ' (UFFD_USER_MODE_ONLY)' : ''}`);
    return ok;
  };
  const outcome = (pid: number, o: InjectionOutcome): void => {
    let ok = false;
    if (o.kind === 'injected') { stats.completed++; ok = attach(pid, o.result); }
    else if (o.kind === 'abandoned') {
      stats.abandoned++;
      once('inject:abandoned', `pid ${pid}: the ptrace-interrupted thread did not stop within ${INJECT_STOP_TIMEOUT_MS} ms; injection abandoned (detached at its stop), the client stays on the /proc checker (further abandons counted in the stop summary)`);
    } else if (o.kind === 'refused') {
      stats.refused++;
      refuse({ kind: o.why as RefusalKind, detail: o.reason });
    } else if (o.kind === 'died') {
      stats.traceeDied++;
      once('inject:died', `pid ${pid}: the client exited during its ptrace injection (at ${o.step}); reaped so that its parent can reap it (further ones counted in the stop summary)`);
    } else if (isUffdRefused(o.error)) {
      stats.failed++;
      refusals.refuse('injected', `pid ${pid}`, o.error);
    } else {
      stats.failed++;
      log(`pid ${pid}: ptrace injection failed (${(o.error as { code?: string }).code ?? String(o.error)}: ${o.error.message}); staying on the /proc checker`);
    }
    const w = waiters.get(pid);
    if (w) { waiters.delete(pid); w(ok); }
  };
  const start = (pid: number, tid: number): boolean => {
    const refusal = policy.check(pid);
    if (refusal) {
      if (refusal.kind === 'gone') return false; // exited meanwhile: nothing to refuse, nothing to announce
      stats.declined++;
      refuse(refusal);
      return false;
    }
    try {
      pending.set(pid, new Injection(pid, tid, { binding: u, recheck: (p, t) => policy.recheck(p, t) }));
      stats.started++;
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      if (code !== 'ESRCH') once(`inject:${code}`, `pid ${pid}: ptrace injection refused (${code}); clients without a handed-over uffd stay on the /proc checker`);
      return false;
    }
  };
  const pollAll = (): void => {
    for (const [pid, inj] of [...pending]) {
      let o: InjectionOutcome | null;
      try { o = inj.poll(); } catch (e) { o = { kind: 'failed', error: e as Error }; }
      if (o) outcome(pid, o);
      if (inj.finished) pending.delete(pid);
    }
  };
  const anyActive = (): boolean => { for (const i of pending.values()) if (i.active) return true; return false; };
  // Event-loop users (no serving loop to drive completeInjections): poll from a timer while anything is in flight.
  let ticker: NodeJS.Timeout | null = null;
  const tick = (): void => {
    ticker = null;
    pollAll();
    if (pending.size) ticker = setTimeout(tick, anyActive() ? 1 : 10);
  };
  provider.inject = (pid: number, tid?: number): Promise<boolean> => {
    const env = live.get(pid);
    if (!env || env.events.uffd || pending.has(pid) || mode === 'proc') return Promise.resolve(false);
    if (!start(pid, tid ?? pid)) return Promise.resolve(false);
    const p = new Promise<boolean>((resolve) => waiters.set(pid, resolve));
    if (!ticker) ticker = setTimeout(tick, 0);
    return p;
  };
  provider.beginInjection = (pid: number, tid: number): boolean => {
    const env = live.get(pid);
    if (!env || env.events.uffd || pending.has(pid) || mode === 'proc' || pid === process.pid) return false;
    // Our own children: Node's child watcher (waitpid on SIGCHLD, main thread) would reap the ptrace stop we wait for
    // and leave the child stopped for ever. `run` starts its command through the launcher (uffd/native/launch.c).
    if (parentOf(pid) === process.pid) {
      once('inject:child', `pid ${pid}: not injecting into a child of this server (Node reaps its ptrace stops); start it through virtgpu-emu run, whose launcher makes it a grandchild, or with the preload library`);
      return false;
    }
    return start(pid, tid);
  };
  const nap = new Int32Array(new SharedArrayBuffer(4));
  provider.completeInjections = (budgetMs = 2): void => {
    if (pending.size === 0) return;
    const deadline = performance.now() + budgetMs;
    for (;;) {
      pollAll();
      if (!anyActive() || performance.now() >= deadline) break;
      Atomics.wait(nap, 0, 0, 0.05); // the thread returns from our reply within microseconds; do not spin a whole CPU
    }
  };
  provider.injectionWaitMs = (): number => (pending.size === 0 ? -1 : anyActive() ? 1 : 10);
  Object.defineProperty(provider, 'pendingInjections', { get: () => pending.size });
  Object.defineProperty(provider, 'injectStats', { get: (): InjectStats => ({ ...stats, pending: pending.size }) });
  const shutdown = provider.shutdown;
  provider.shutdown = (): void => {
    // Never leave a seized thread behind: no new injection starts, the ones mid-way finish (µs), tracees are detached
    // or reaped; whatever is still attached after 200 ms is detached by the kernel when this thread exits.
    for (const inj of pending.values()) inj.cancel();
    const end = performance.now() + 200;
    while (pending.size && performance.now() < end) { provider.completeInjections(5); if (pending.size) Atomics.wait(nap, 0, 0, 1); }
    if (ticker) { clearTimeout(ticker); ticker = null; }
    pending.clear();
    for (const w of waiters.values()) w(false);
    waiters.clear();
    shutdown();
  };
  return provider;
}

/** A page-aligned address at or above every usual vm.mmap_min_addr (below it UFFDIO_UNREGISTER is EINVAL before the mm is looked at). */
const STALE_PROBE_ADDR = 0x100000;
const { ENOMEM } = osConstants.errno;

/** The parent pid from /proc/PID/stat (the comm field may hold spaces and parentheses: parse after the last ')'). */
function parentOf(pid: number): number {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return -1; }
}
