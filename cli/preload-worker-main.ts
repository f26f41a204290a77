// The preload transport's serving thread (ServeWorker runs it): composes the device as the FUSE/CUSE thread does
// (compose.ts), opens the node channel (the client channel's socket for lanes, uffd/channel.ts) and serves lanes
// and node sockets from this thread's event loop (fdWatch): no kernel fd, no blocking read. The main thread's
// messages (stop, snapshot) arrive on the same loop.
import { isMainThread, parentPort, workerData } from 'worker_threads';
import { PreloadSession } from '../cuse-dev/session/preload';
import { LANE_KIND } from '../cuse-dev/abi/preload';
import { summarize, type FromWorker, type PreloadWorkerConfig, type ToWorker } from '../cuse-dev/transport/serve-worker';
import { JsonlSink } from '../cuse-dev/trace/jsonl';
import { LogLimiter } from '../core/log-limit';
import { Channel, FenceFds, loadUffd } from '../uffd';
import { chooseProvider, makeDevice, traceOptionsOf } from './compose';

/** This script, for ServeWorker (cuse-dev/transport/preload.ts gets it through ServeOptions.preloadEntry). */
export const PRELOAD_WORKER_ENTRY = __filename;

function preloadWorkerMain(cfg: PreloadWorkerConfig): void {
  const port = parentPort!;
  const post = (m: FromWorker): void => port.postMessage(m);
  const sink = cfg.trace ? new JsonlSink(cfg.trace, traceOptionsOf('preload', { ...cfg.device, inject: false })) : undefined;
  const logger = new LogLimiter({ sink: (msg) => { post({ type: 'log', msg }); sink?.write({ t: 'log', msg }); } });
  const log = (msg: string): void => { logger.line(msg); };
  let session: PreloadSession;
  let fences: FenceFds;
  let channel: Channel;
  let made: ReturnType<typeof makeDevice>;
  try {
    const u = loadUffd();
    // Clients hand their uffd over (handoff.c) and the loop is never blocked: no ptrace injection, no wake eventfd
    // (the watchers' wake-ups run on this thread's event loop).
    const provider = chooseProvider(cfg.device.watch, log, cfg.device.handoff, undefined, false, u, cfg.device.injectUids);
    made = makeDevice({ ...cfg.device, inject: false }, sink ? (ev) => sink.write(ev) : undefined, log, provider, logger);
    fences = new FenceFds(u);
    // Embedded ranges are read from the client directly where the kernel allows it (same uid and dumpable, or
    // CAP_SYS_PTRACE): one round trip per ioctl; a refused read falls back to the NEED exchange.
    const readClient = (pid: number, ranges: readonly { addr: number; len: number }[]): Uint8Array | string => {
      try { return u.processVmRead(pid, [...ranges]); } catch (e) { return (e as NodeJS.ErrnoException).code ?? 'EIO'; }
    };
    session = new PreloadSession({ dev: made.device, u, fences, readClient, logOnce: (k, m) => logger.once(k, m), onFork: (parent) => provider.reportFork?.(parent) });
    channel = new Channel({ binding: u, log, base: cfg.channel.base, mode: cfg.channel.mode, uid: cfg.channel.uid, gid: cfg.channel.gid });
    channel.handle(LANE_KIND, (req) => session.adoptLane(req));
    // Without CAP_SYS_ADMIN /proc/PID/pagemap reads every frame number as 0: pages are then told apart by present
    // bits and memory events (a 0 frame never means "page gone"), and a frame that changes without an event is not seen.
    if (process.geteuid?.() !== 0) log('unprivileged server: /proc/PID/pagemap hides page frames; pages are tracked by present bits and memory events, frame changes without an event (compaction, KSM, copy-on-write after fork) are not seen');
    post({ type: 'started', watcher: made.watcher, reasons: made.reasons, socket: channel.path });
  } catch (e) {
    post({ type: 'fatal', msg: (e as Error).message });
    sink?.close();
    return;
  }
  const dev = made.device;
  const counts = () => ({ ...session.stats, retries: session.stats.needs, interrupts: 0 });
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'snapshot') {
      let snapshot: unknown;
      try { snapshot = dev.snapshot(); } catch (e) { snapshot = { error: String(e) }; }
      const s = session.stats;
      post({
        type: 'snapshot', id: msg.id, counts: dev.counts(), snapshot, stats: { ...dev.stats, preloadLanes: s.lanes, preloadForks: s.forks, preloadNeeds: s.needs, preloadMalformed: s.malformed, preloadRefused: s.refused, preloadMaps: s.maps, fenceFdsOut: fences.stats.outLive, fenceFdsIn: fences.stats.inLive, fenceFiles: fences.signalledFiles },
        session: { requests: s.ioctls + s.opens, ioctls: s.ioctls, retries: s.needs, malformed: s.malformed, interrupts: 0, opens: s.opens, releases: s.releases, clients: s.clients, refusedCallers: s.refused },
        openFiles: session.openFiles(),
      });
      return;
    }
    // stop: no new lanes, every lane closed (a client waiting on one gets ENODEV), every file released.
    channel.close();
    const openAtStop = session.closeAll();
    try { dev.shutdown(); } catch (e) { log(`shutdown failed: ${String(e)}`); }
    fences.close();
    try { made.shutdown(); } catch (e) { log(`client release failed: ${String(e)}`); }
    logger.stop();
    sink?.close();
    post({ type: 'summary', summary: summarize({ stats: counts() }, dev, openAtStop, 'stop') });
    port.close();
  });
}

if (!isMainThread && (workerData as { virtgpuServe?: PreloadWorkerConfig } | null)?.virtgpuServe) {
  preloadWorkerMain((workerData as { virtgpuServe: PreloadWorkerConfig }).virtgpuServe);
}
