// The watch policy for real client processes, and the ClientProvider the transports hand to core.
//   auto (default): userfaultfd for the synchronous events (UNMAP, REMOVE, REMAP, FORK) + the /proc checker for what
//                   uffd cannot see (mapping protection; frames are not compared where uffd covers the range);
//   uffd:           userfaultfd only (no /proc pass where it covers; mprotect is then not reported — it never changes
//                   an outcome); ranges it cannot register still fall back to /proc;
//   proc:           the /proc checker only (approximate, spec §4).
// Every fallback is announced once with its reason.
import * as fs from 'fs';
import { PAGE_SIZE, USER_ADDR_END, type ClientEnv, type ClientProvider, type NotifierEvent, type NotifierSource } from '../core/memory/client-memory';
import { createOwnUffd, findPreload, type UffdSource } from './acquire';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import { ProcessMemory } from './process-memory';
import { ProcWatcher } from './proc-watcher';
import { UffdWatcher } from './uffd-watcher';
import { Injection, INJECT_STOP_TIMEOUT_MS, type InjectionOutcome, type InjectResult } from './inject';
import { performance } from 'perf_hooks';
import { fdsLow } from './fd-budget';

export type WatchMode = 'uffd' | 'proc' | 'auto';
export const WATCH_MODES: readonly WatchMode[] = ['auto', 'uffd', 'proc'];

export function parseWatchMode(s: string): WatchMode {
  if ((WATCH_MODES as readonly string[]).includes(s)) return s as WatchMode;
  throw new Error(`unknown --watch ${JSON.stringify(s)}; valid: ${WATCH_MODES.join(', ')}`);
}

export interface ClientWatchOptions {
  mode: WatchMode;
  memory: ProcessMemory;
  /** null: no uffd for this client (then uffdReason says why). */
  uffd: UffdWatcher | null;
  uffdReason?: string;
  procIntervalMs?: number;
  onPending?: () => void;
  announce: (key: string, msg: string) => void;
  binding?: UffdBinding;
}

/** NotifierSource of one client process: uffd + /proc per the mode, exit via pidfd → RELEASE. */
export class ClientWatch implements NotifierSource {
  readonly pid: number;
  readonly mode: WatchMode;
  private readonly u: UffdBinding;
  private uffdW: UffdWatcher | null;
  readonly proc: ProcWatcher;
  /** Ranges moved from /proc to a late uffd (injection): their frames are compared once more, then no longer. */
  private readonly upgraded = new Set<number>();
  private readonly via = new Map<number, 'uffd' | 'proc'>();
  private readonly announce: (key: string, msg: string) => void;
  private pidfd = -1;
  private exitReported = false;
  released = false;

  constructor(o: ClientWatchOptions) {
    this.pid = o.memory.pid;
    this.mode = o.mode;
    this.u = o.binding ?? loadUffd();
    this.uffdW = o.uffd;
    this.announce = o.announce;
    this.proc = new ProcWatcher(o.memory, { intervalMs: o.procIntervalMs, onPending: o.onPending });
    // Near the fd limit no pidfd is kept (fd-budget.ts): the client's exit is then known from its files' RELEASE.
    if (this.pid !== process.pid && !fdsLow()) {
      try { this.pidfd = this.u.pidfdOpen(this.pid); } catch { /* already gone: drain reports RELEASE via /proc */ }
    }
    if (!this.uffd && o.mode !== 'proc') this.announce('no-uffd', `pid ${this.pid}: no userfaultfd (${o.uffdReason ?? 'unavailable'}); watched through /proc (approximate: frames compared at each ioctl) until a userfaultfd is injected`);
  }

  private exitCheckedAt = 0;

  get uffd(): UffdWatcher | null { return this.uffdW; }

  /**
   * A uffd obtained late (ptrace injection after the client's first ioctl): register every range watched by /proc
   * so far on it. Their frames are still compared at the next check (anything between their registration and now
   * is only visible there), after which the /proc checker keeps watching mappings only ('auto') or nothing ('uffd').
   */
  attachUffd(w: UffdWatcher): boolean {
    if (this.uffdW || this.released || this.mode === 'proc') { w.release(); return false; }
    this.uffdW = w;
    for (const [id, via] of this.via) {
      const r = via === 'proc' ? this.proc.range(id) : null;
      if (!r) continue;
      const res = w.tryRegister(id, r[0], r[1]);
      if (res.ok) { this.via.set(id, 'uffd'); this.upgraded.add(id); } else this.announce(`register:${res.code}`, `pid ${this.pid}: ${res.reason}; the range falls back to the /proc checker`);
    }
    return true;
  }

  /** A known id: its range is replaced (the new one is watched before the old one is let go). */
  register(id: number, start: number, last: number): void {
    if (this.uffd) {
      const r = this.uffd.tryRegister(id, start, last);
      if (r.ok) {
        this.via.set(id, 'uffd');
        if (this.mode === 'auto') this.proc.register(id, start, last, false); else this.proc.unregister(id);
        return;
      }
      this.announce(`register:${r.code}`, `pid ${this.pid}: ${r.reason}; the range falls back to the /proc checker`);
    }
    this.via.set(id, 'proc');
    this.proc.register(id, start, last, true);
  }

  unregister(id: number): void {
    this.uffd?.unregister(id);
    this.proc.unregister(id);
    this.via.delete(id);
    this.upgraded.delete(id);
  }

  /** uffd events first (they happened before anything /proc can show now), then the /proc diff, then exit. */
  drain(): readonly NotifierEvent[] {
    if (this.released) return [];
    const a = this.uffd ? this.uffd.drain() : [];
    const b = this.proc.drain();
    if (this.upgraded.size) {
      for (const id of this.upgraded) if (this.mode === 'auto') this.proc.setFramesToo(id, false); else this.proc.unregister(id);
      this.upgraded.clear();
    }
    const exit = this.exited();
    if (a.length === 0 && !exit) return b;
    const out = [...a, ...b];
    if (exit) out.push({ event: 'RELEASE', start: 0, end: USER_ADDR_END, note: 'client exited' });
    return out;
  }

  private exited(): boolean {
    if (this.exitReported || this.pidfd < 0) return false;
    // A poll(2) per ioctl entry is measurable (~0.2 µs) and exit only yields RELEASE (ignored by core): check at most
    // every EXIT_CHECK_MS; a client that is issuing ioctls is alive anyway.
    const now = Date.now();
    if (now - this.exitCheckedAt < EXIT_CHECK_MS) return false;
    this.exitCheckedAt = now;
    if (!this.u.pidfdExited(this.pidfd)) return false;
    this.exitReported = true;
    return true;
  }

  exact(start: number, last: number): boolean { return this.uffd ? this.uffd.exact(start, last) : false; }
  registrations(): number { return this.via.size; }
  /** How a registered range is watched (tests, doctor). */
  watchedBy(id: number): 'uffd' | 'proc' | undefined { return this.via.get(id); }
  get hasExited(): boolean { return this.exitReported || (this.pidfd >= 0 && this.u.pidfdExited(this.pidfd)); }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.uffd?.release();
    this.proc.release();
    this.via.clear();
    this.upgraded.clear();
    if (this.pidfd >= 0) { this.u.close(this.pidfd); this.pidfd = -1; }
  }
}

/** How often drain() polls the client's pidfd for exit. */
const EXIT_CHECK_MS = 100;

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
  /** Counters since start: begun, injected, abandoned (no stop in time), tracee died during it, failed, pending. */
  readonly injectStats: InjectStats;
}

export interface InjectStats { started: number; completed: number; abandoned: number; traceeDied: number; failed: number; pending: number }

/**
 * Maps a thread-group id to ProcessMemory + its watcher, one per process; core's release() frees it.
 * uffd source, in order: our own process → create one; a uffd handed over through `handoff` → take it; else none
 * (announced; /proc only) until one is injected: with `inject`, started in the background at the client's first
 * open, or driven by a serving loop through beginInjection/completeInjections (uffd/inject.ts does the ptrace steps).
 */
export function createClientProvider(opts: ClientProviderOptions = {}): RealClientProvider {
  const u = opts.binding ?? loadUffd();
  const mode = opts.watch ?? 'auto';
  const log = opts.log ?? (() => undefined);
  const live = new Map<number, RealClientEnv>();
  const announced = new Set<string>();
  const announcements: string[] = [];

  const provider = ((pid: number): ClientEnv => {
    const existing = live.get(pid);
    if (existing) return existing;
    const announce = (key: string, msg: string): void => {
      const k = `${pid}:${key}`;
      if (announced.has(k)) return;
      announced.add(k);
      announcements.push(msg);
      log(msg);
    };
    const memory = new ProcessMemory(pid, { binding: u, announce });
    const onPending = opts.onPending ? () => opts.onPending!(pid) : undefined;
    let uffd: UffdWatcher | null = null;
    let reason = '';
    if (mode !== 'proc') {
      let fd: number | null = null;
      if (pid === process.pid) {
        try { fd = createOwnUffd(u); } catch (e) { reason = `userfaultfd(): ${(e as { code?: string }).code ?? String(e)}`; }
      } else {
        fd = opts.handoff ? opts.handoff.take(pid) : null;
        if (fd === null) reason = (opts.handoff ? 'the client handed over no uffd (not started through `virtgpu-emu run` / the preload library)' : 'no uffd handoff configured') + (opts.inject ? '; ptrace injection started' : '');
      }
      if (fd !== null) {
        try {
          uffd = new UffdWatcher({ binding: u, pid, uffd: fd, onPending, log, startReader: opts.startReader, notifyFd: opts.notifyFd });
        } catch (e) {
          reason = `reader: ${(e as { code?: string }).code ?? String(e)}`;
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
  provider.shutdown = (): void => { for (const env of [...live.values()]) env.release(); };
  // Injections in flight, by pid, until no tracer link is left (inject.ts: never a blocking wait on a tracee).
  const pending = new Map<number, Injection>();
  const waiters = new Map<number, (ok: boolean) => void>();
  const stats = { started: 0, completed: 0, abandoned: 0, traceeDied: 0, failed: 0 };
  const once = (key: string, msg: string): void => {
    if (announced.has(key)) return;
    announced.add(key); announcements.push(msg); log(msg);
  };
  const attach = (pid: number, r: InjectResult): boolean => {
    const env = live.get(pid);
    if (!env || env.events.released) { u.close(r.fd); return false; }
    const w = new UffdWatcher({ binding: u, pid, uffd: r.fd, onPending: opts.onPending ? () => opts.onPending!(pid) : undefined, log, startReader: opts.startReader, notifyFd: opts.notifyFd });
    const ok = env.events.attachUffd(w);
    if (ok) log(`pid ${pid}: userfaultfd injected by ptrace into thread ${r.tid} in ${r.ms.toFixed(2)} ms${r.userModeOnly ? ' (UFFD_USER_MODE_ONLY)' : ''}`);
    return ok;
  };
  const outcome = (pid: number, o: InjectionOutcome): void => {
    let ok = false;
    if (o.kind === 'injected') { stats.completed++; ok = attach(pid, o.result); }
    else if (o.kind === 'abandoned') {
      stats.abandoned++;
      once('inject:abandoned', `pid ${pid}: the ptrace-interrupted thread did not stop within ${INJECT_STOP_TIMEOUT_MS} ms; injection abandoned (detached at its stop), the client stays on the /proc checker (further abandons counted in the stop summary)`);
    } else if (o.kind === 'died') {
      stats.traceeDied++;
      once('inject:died', `pid ${pid}: the client exited during its ptrace injection (at ${o.step}); reaped so that its parent can reap it (further ones counted in the stop summary)`);
    } else {
      stats.failed++;
      log(`pid ${pid}: ptrace injection failed (${(o.error as { code?: string }).code ?? String(o.error)}: ${o.error.message}); staying on the /proc checker`);
    }
    const w = waiters.get(pid);
    if (w) { waiters.delete(pid); w(ok); }
  };
  const start = (pid: number, tid: number): boolean => {
    try {
      pending.set(pid, new Injection(pid, tid, { binding: u }));
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
    // and leave the child stopped for ever. `run` starts its command with the preload instead.
    if (parentOf(pid) === process.pid) {
      once('inject:child', `pid ${pid}: not injecting into a child of this server (Node reaps its ptrace stops); use the preload library (virtgpu-emu run)`);
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

/** The parent pid from /proc/PID/stat (the comm field may hold spaces and parentheses: parse after the last ')'). */
function parentOf(pid: number): number {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return -1; }
}

export interface WatcherProbe { name: string; ok: boolean; reason: string }

/**
 * What `doctor` shows for --watch: can this daemon create and initialize a userfaultfd (with FORK events), is the
 * preload library built (how clients hand theirs over), are pagemap frames visible (else /proc frames are
 * per-page identities, pagemap.ts).
 */
export function probeWatchers(binding?: UffdBinding): WatcherProbe[] {
  let u: UffdBinding;
  try { u = binding ?? loadUffd(); } catch (e) {
    const why = `native addon not loadable: ${(e as Error).message.split('\n')[0]}`;
    return [{ name: 'uffd', ok: false, reason: why }, { name: 'proc', ok: false, reason: why }];
  }
  const C = u.constants;
  let uffd: WatcherProbe;
  let fd = -1;
  try {
    fd = createOwnUffd(u);
    const ev = C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP;
    let fork = true;
    try { u.uffdApi(fd, ev | C.UFFD_FEATURE_EVENT_FORK); } catch { fork = false; u.uffdApi(fd, ev); }
    const pre = findPreload();
    uffd = { name: 'uffd', ok: true, reason: `userfaultfd + UFFDIO_API ok${fork ? '' : ' (no EVENT_FORK: needs CAP_SYS_PTRACE)'}; clients hand theirs over through ${pre ?? 'the preload library (NOT BUILT: npm install)'} under \`virtgpu-emu run\`; others get one by ptrace injection at their first open (serve), else /proc` };
  } catch (e) {
    uffd = { name: 'uffd', ok: false, reason: `userfaultfd unavailable here: ${(e as { code?: string }).code ?? String(e)}` };
  } finally {
    if (fd >= 0) u.close(fd);
  }
  let proc: WatcherProbe;
  try {
    const mem = new ProcessMemory(process.pid, { binding: u });
    const probe = Buffer.alloc(PAGE_SIZE * 2, 1);
    const at = u.bufferAddress(probe) + PAGE_SIZE - (u.bufferAddress(probe) % PAGE_SIZE);
    mem.frames(at, 1);
    mem.close();
    proc = { name: 'proc', ok: true, reason: mem.framesApproximate ? 'maps + pagemap readable; PFNs hidden (no CAP_SYS_ADMIN): frames are per-page identities (approximate)' : 'maps + pagemap readable with PFNs (approximate: frames compared at each ioctl)' };
  } catch (e) {
    proc = { name: 'proc', ok: false, reason: `/proc/PID/pagemap unreadable: ${(e as { code?: string }).code ?? String(e)}` };
  }
  return [uffd, proc];
}
