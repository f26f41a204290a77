// The composition root of a serving device: core + the client provider chosen by --watch (uffd/ or, without the
// addon, /proc/PID/mem copies), built inside the serving thread.
import { ContextRouter, createDevice, HsakmtHost, RecordingHost, virtgpu, type LogLimiter, type TraceEvent } from '../core';
import type { ClientProvider } from '../core/memory/client-memory';
import { createClientProvider, HandoffMailbox, InjectPolicy, loadUffd, memfdBlobMemory, type RealClientProvider, type UffdBinding } from '../uffd';
import type { BlobMemoryAllocator } from '../core/memory/blob-memory';
import type { CoreDevice } from '../cuse-dev/session/core-api';
import { procClientProvider } from '../uffd/proc-pid-mem';
import type { DeviceConfig, WatchChoice } from '../cuse-dev/transport/serve-worker';
import { FaultEngine, parseFaults } from '../cuse-dev/fault/rules';
import type { TraceOptions } from '../cuse-dev/trace/schema';

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
  /** Clients with uffd-registered ranges now: a serving loop waits on the wake fd only while this is > 0. */
  watchingClients?: () => number;
  /** A client process reported its own fork (the preload transport): its watcher sees what EVENT_FORK would show. */
  reportFork?: (parent: number) => void;
}

/**
 * --watch policy: auto tries the real watchers and falls back, announcing why; explicit choices fail loudly.
 * createClientProvider() throws when the native addon cannot load (`binding`: the addon the caller loaded already;
 * without it the provider loads it).
 */
export function chooseProvider(watch: WatchChoice, log?: (m: string) => void, handoff?: SharedArrayBuffer, notifyFd?: number, inject = true, binding?: UffdBinding, injectUids: number[] = []): ProviderChoice {
  const none = (): ProviderChoice => ({ provider: procClientProvider(), watcher: 'none', reasons: [] });
  if (watch === 'none') return none();
  let service: (pid: number) => void = () => undefined;
  let provider: RealClientProvider;
  try {
    provider = createClientProvider({ watch, log, onPending: (pid) => service(pid), handoff: handoff ? new HandoffMailbox(handoff) : null, notifyFd, binding, injectPolicy: new InjectPolicy(injectUids) });
  } catch (e) {
    if (watch !== 'auto') throw new Error(`--watch ${watch}: ${(e as Error).message.split('\n')[0]}`);
    const c = none();
    c.reasons.push(`uffd watchers unavailable (${(e as Error).message.split('\n')[0]}): pointer copies via /proc/PID/mem, no invalidation events`);
    return c;
  }
  return {
    provider, watcher: watch, reasons: [],
    shutdown: () => provider.shutdown(),
    bindService: (f) => { service = f; },
    beginInjection: inject ? (pid, tid) => provider.beginInjection(pid, tid) : undefined,
    completeInjections: inject ? () => provider.completeInjections() : undefined,
    pendingInjections: inject ? () => provider.pendingInjections : undefined,
    injectionWaitMs: inject ? () => provider.injectionWaitMs() : undefined,
    injectStats: inject ? () => ({ ...provider.injectStats }) : undefined,
    watchingClients: () => provider.watchingClients,
    reportFork: (parent) => { const env = provider.live.get(parent); if (env) { env.events.forkReported(); service(parent); } },
  };
}

/**
 * Mappable BOs' memory: a memfd each (the preload transport hands it to clients to map), ArrayBuffers without the
 * addon (FUSE/CUSE never map: the memory is the host's only).
 */
function blobMemoryOf(log?: (m: string) => void): BlobMemoryAllocator | undefined {
  let b: UffdBinding;
  try { b = loadUffd(); } catch { return undefined; }
  const told = new Set<string>();
  return memfdBlobMemory(b, { onError: (code, msg) => { if (!told.has(code)) { told.add(code); log?.(`blob memory: ${msg} (answered ENOMEM; further ${code} not logged)`); } } });
}

/** A trace header's options: how the serving device was asked for (every transport's serving thread writes them). */
export function traceOptionsOf(transport: string, cfg: DeviceConfig): TraceOptions {
  return { transport, watch: cfg.watch, inject: cfg.inject ?? true, ...(cfg.mode ? { mode: cfg.mode } : {}), ...(cfg.faults?.length ? { faults: cfg.faults } : {}) };
}

/** Host commands kept in memory by a serving device (a long-running server must not grow its log without bound). */
const HOST_LOG_KEEP = 1000;

export function makeDevice(cfg: DeviceConfig, trace?: (ev: TraceEvent) => void, log?: (m: string) => void, provider?: ProviderChoice, logger?: LogLimiter): { device: CoreDevice; watcher: string; reasons: string[]; shutdown: () => void } & Pick<ProviderChoice, 'beginInjection' | 'completeInjections' | 'pendingInjections' | 'injectionWaitMs' | 'injectStats' | 'watchingClients'> {
  const p = provider ?? chooseProvider(cfg.watch, log, cfg.handoff, cfg.notifyFd, cfg.inject ?? true, undefined, cfg.injectUids);
  // --trace gets every host command in full (payloads included): the in-memory log keeps digests only.
  // --fence-delay-ms: the host completes each submission that long after taking it (fence fds become readable then).
  const delay = cfg.fenceDelayMs ?? 0;
  const host: RecordingHost = new RecordingHost({ limit: HOST_LOG_KEEP, fences: delay > 0 ? 'manual' : 'immediate', onPending: () => { setTimeout(() => host.completeFences(1), delay).unref(); } });
  if (trace) host.onCommand = (cmd, seq) => trace({ t: 'host', cmd: { ...cmd, seq } });
  // --fault: the engine answers core's per-ioctl question, stands before the host, and sees the userptr creates.
  const faults = cfg.faults?.length ? new FaultEngine(parseFaults(cfg.faults), trace, log) : undefined;
  // Capset 8 contexts get the emulated HSAKMT host (answers in the shmem blob); every command is still recorded.
  let logOnce: (key: string, msg: string) => void = () => undefined;
  // Its fences: --hsakmt-fence-delay-ms, else --fence-delay-ms (which delays every context's).
  const hz = cfg.hsakmt ?? {};
  const hDelay = hz.fenceDelayMs ?? delay;
  const hsakmt = new HsakmtHost({
    log: (k, m) => logOnce(k, m), fail: hz.fail,
    onCcmd: trace ? (ev) => trace({ t: 'ccmd', ...ev }) : undefined,
    delayFence: hDelay > 0 ? (done) => { setTimeout(done, hDelay).unref(); } : undefined,
  });
  const router = new ContextRouter(host, new Map([[virtgpu.VIRTIO_GPU_CAPSET_HSAKMT, hsakmt]]));
  const device = createDevice({ uapi: cfg.uapi, mode: cfg.mode, profile: cfg.profile, clients: p.provider, host: faults ? faults.wrapHost(router) : router, caps: { fdPassing: false, mmap: false }, trace: faults ? faults.observe(trace) : trace, log, logger, faults, blobMemory: blobMemoryOf(log) });
  logOnce = (k, m) => device.logOnce(k, m);
  p.bindService?.((pid) => device.service(pid));
  return { device, watcher: p.watcher, reasons: p.reasons, shutdown: () => p.shutdown?.(), beginInjection: p.beginInjection, completeInjections: p.completeInjections, pendingInjections: p.pendingInjections, injectionWaitMs: p.injectionWaitMs, injectStats: p.injectStats, watchingClients: p.watchingClients };
}
