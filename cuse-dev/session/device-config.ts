// Builds the Device inside the serving thread: core + the client provider chosen by --watch.
import { createDevice, RecordingHost, type LogLimiter, type TraceEvent } from '../../core';
import type { ClientProvider } from '../../core/memory/client-memory';
import type { CoreDevice } from './core-api';
import { procClientProvider } from './pidmem';

export type WatchChoice = 'auto' | 'uffd' | 'proc' | 'none';
export type DeviceMode = 'notifier' | 'pin';

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

export interface ProviderChoice {
  provider: ClientProvider; watcher: string; reasons: string[];
  /** Release every live client (closes uffds so no client stays blocked); called when the loop ends. */
  shutdown?: () => void;
  /** Late binding for async wake-ups (watcher → device.service(pid)). */
  bindService?: (service: (pid: number) => void) => void;
  /** Synchronous injection for a loop blocked in read(2): begin before the reply, complete after it. */
  beginInjection?: (pid: number, tid: number) => boolean;
  completeInjections?: () => void;
  pendingInjections?: () => number;
  /** How soon completeInjections should run again (ms), -1 when no injection is in flight. */
  injectionWaitMs?: () => number;
  /** Injection counters (started, completed, abandoned, traceeDied, failed, pending). */
  injectStats?: () => Record<string, number>;
}

/**
 * uffd/ (compiled with this package) is loaded by path at run time. Its createClientProvider() throws when the native
 * addon cannot load: --watch auto then falls back to /proc/PID/mem copies, an explicit choice fails.
 * Used exports (uffd/index.ts): createClientProvider({ watch, log, onPending, handoff, notifyFd }), HandoffMailbox.
 */
const WATCH_MODULE = '../../uffd';

interface WatchModule {
  createClientProvider(o: { watch: 'auto' | 'uffd' | 'proc'; log?: (m: string) => void; onPending?: (pid: number) => void; handoff?: { take(pid: number): number | null } | null; notifyFd?: number }): ClientProvider & { shutdown?: () => void; beginInjection?: (pid: number, tid: number) => boolean; completeInjections?: (budgetMs?: number) => void; injectionWaitMs?: () => number; injectStats?: Record<string, number> };
  HandoffMailbox: new (sab: SharedArrayBuffer) => { take(pid: number): number | null };
}

function loadWatchModule(): WatchModule | string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(WATCH_MODULE) as Partial<WatchModule>;
    if (typeof m.createClientProvider !== 'function') return 'uffd/watch has no createClientProvider()';
    return m as WatchModule;
  } catch (e) {
    return `uffd/watch not available (${(e as Error).message.split('\n')[0]})`;
  }
}

/** --watch policy: auto tries the real watchers and falls back, announcing why; explicit choices fail loudly. */
export function chooseProvider(watch: WatchChoice, log?: (m: string) => void, handoff?: SharedArrayBuffer, notifyFd?: number, inject = true): ProviderChoice {
  const none = (): ProviderChoice => ({ provider: procClientProvider(), watcher: 'none', reasons: [] });
  if (watch === 'none') return none();
  const m = loadWatchModule();
  if (typeof m === 'string') {
    if (watch !== 'auto') throw new Error(`--watch ${watch}: ${m}`);
    const c = none();
    c.reasons.push(`${m}: pointer copies via /proc/PID/mem, no invalidation events`);
    return c;
  }
  let service: (pid: number) => void = () => undefined;
  let provider: ReturnType<WatchModule['createClientProvider']>;
  try {
    provider = m.createClientProvider({ watch, log, onPending: (pid) => service(pid), handoff: handoff ? new m.HandoffMailbox(handoff) : null, notifyFd });
  } catch (e) {
    if (watch !== 'auto') throw new Error(`--watch ${watch}: ${(e as Error).message.split('\n')[0]}`);
    const c = none();
    c.reasons.push(`uffd watchers unavailable (${(e as Error).message.split('\n')[0]}): pointer copies via /proc/PID/mem, no invalidation events`);
    return c;
  }
  return {
    provider, watcher: watch, reasons: [],
    shutdown: () => provider.shutdown?.(),
    bindService: (f) => { service = f; },
    beginInjection: inject && provider.beginInjection ? (pid, tid) => provider.beginInjection!(pid, tid) : undefined,
    completeInjections: inject && provider.completeInjections ? () => provider.completeInjections!() : undefined,
    pendingInjections: inject && provider.completeInjections ? () => (provider as { pendingInjections?: number }).pendingInjections ?? 0 : undefined,
    injectionWaitMs: inject && provider.injectionWaitMs ? () => provider.injectionWaitMs!() : undefined,
    injectStats: inject && provider.completeInjections ? () => ({ ...(provider.injectStats ?? {}) }) : undefined,
  };
}

/** Host commands kept in memory by a serving device (a long-running server must not grow its log without bound). */
const HOST_LOG_KEEP = 1000;

export function makeDevice(cfg: DeviceConfig, trace?: (ev: TraceEvent) => void, log?: (m: string) => void, provider?: ProviderChoice, logger?: LogLimiter): { device: CoreDevice; watcher: string; reasons: string[]; shutdown: () => void } & Pick<ProviderChoice, 'beginInjection' | 'completeInjections' | 'pendingInjections' | 'injectionWaitMs' | 'injectStats'> {
  const p = provider ?? chooseProvider(cfg.watch, log, cfg.handoff, cfg.notifyFd, cfg.inject ?? true);
  // --trace gets every host command in full (payloads included): the in-memory log keeps digests only.
  const host = new RecordingHost(HOST_LOG_KEEP);
  if (trace) host.onCommand = (cmd, seq) => trace({ t: 'host', cmd: { ...cmd, seq } });
  const device = createDevice({ mode: cfg.mode, profile: cfg.profile, clients: p.provider, host, caps: { fdPassing: false, mmap: false }, trace, log, logger });
  p.bindService?.((pid) => device.service(pid));
  return { device, watcher: p.watcher, reasons: p.reasons, shutdown: () => p.shutdown?.(), beginInjection: p.beginInjection, completeInjections: p.completeInjections, pendingInjections: p.pendingInjections, injectionWaitMs: p.injectionWaitMs, injectStats: p.injectStats };
}
