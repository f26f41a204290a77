// The serving thread's entry script (ServeWorker runs it): composes the device from the WorkerConfig it is given
// (compose.ts), loads the addon once for the loop and the watchers, runs the serving loop, and answers the main
// thread's messages (stop, snapshot) between requests.
import { isMainThread, parentPort, receiveMessageOnPort, workerData } from 'worker_threads';
import { Session } from '../cuse-dev/session/session';
import { FileTree } from '../cuse-dev/session/tree';
import { callerResolver, type CallerResolver } from '../cuse-dev/session/tgid';
import type { CoreDevice } from '../cuse-dev/session/core-api';
import { fsIO, nativeIO, readBufferSize, serveLoop } from '../cuse-dev/session/loop';
import { summarize, type FromWorker, type ToWorker, type WorkerConfig } from '../cuse-dev/transport/serve-worker';
import { JsonlSink } from '../cuse-dev/trace/jsonl';
import { LogLimiter } from '../core/log-limit';
import { FD_RESERVE, fdHeadroom, fdLimit } from '../uffd/fd-budget';
import { eventLatency, loadUffd, type UffdBinding } from '../uffd';
import { chooseProvider, makeDevice, traceOptionsOf } from './compose';

/** This script, for ServeWorker (the transports get it through ServeOptions.workerEntry). */
export const SERVE_WORKER_ENTRY = __filename;

let fdLowAnnounced = false;

function serveWorkerMain(cfg: WorkerConfig): void {
  const port = parentPort!;
  const post = (m: FromWorker): void => port.postMessage(m);
  const sink = cfg.trace ? new JsonlSink(cfg.trace, traceOptionsOf(cfg.kind, cfg.device)) : undefined;
  // One limiter for every line of this server (core, session, watchers): no client can flood the log.
  const logger = new LogLimiter({ sink: (msg) => { post({ type: 'log', msg }); sink?.write({ t: 'log', msg }); } });
  const log = (msg: string): void => { logger.line(msg); };
  let session: Session;
  let dev: CoreDevice;
  let releaseClients: () => void = () => undefined;
  let completeInjections: (() => void) | undefined;
  let pendingInjections: (() => number) | undefined;
  let injectionWaitMs: (() => number) | undefined;
  let injectStats: (() => Record<string, number>) | undefined;
  let watchingClients: () => number = () => 0;
  // The addon, loaded once for this thread: the loop's read/poll/write and the watchers' syscalls. Without it the
  // loop serves through fs.readSync/writeSync and --watch auto falls back to /proc/PID/mem copies.
  let u: UffdBinding | undefined;
  try { u = loadUffd(); } catch (e) {
    log(`native addon unavailable (${(e as Error).message.split('\n')[0]}): serving through fs.readSync/writeSync`);
  }
  const io = u ? nativeIO(u) : fsIO;
  // Memory events of watched clients wake the loop through this wake queue's eventfd (the event loop never runs
  // here: the thread is blocked in read(2)), so a BO is deleted right after the client's munmap, as the kernel's
  // worker would; the queue names the clients whose readers saw events, and only those are serviced.
  let wakeFd = -1;
  // Who made each request: thread pidfds watched for exit, so a cached tid never outlives its thread (tgid.ts).
  let callers: CallerResolver | undefined;
  if (cfg.device.watch !== 'none' && cfg.device.watch !== 'proc' && u) {
    try { wakeFd = u.wakeQueueCreate(); } catch (e) { log(`no wake eventfd (${String(e)}): BOs are invalidated at the client's next ioctl only`); }
  }
  try {
    const device = { ...cfg.device, notifyFd: wakeFd >= 0 ? wakeFd : undefined };
    const provider = chooseProvider(device.watch, log, device.handoff, device.notifyFd, device.inject ?? true, u, device.injectUids);
    const made = makeDevice(device, sink ? (ev) => sink.write(ev) : undefined, log, provider, logger);
    dev = made.device;
    releaseClients = made.shutdown;
    completeInjections = made.completeInjections;
    pendingInjections = made.pendingInjections;
    injectionWaitMs = made.injectionWaitMs;
    injectStats = made.injectStats;
    if (made.watchingClients) watchingClients = made.watchingClients;
    const chosen = callerResolver(u, { fdLimit: fdLimit() });
    callers = chosen.resolver;
    if (chosen.note) log(chosen.note);
    session = new Session({
      kind: cfg.kind, device: dev, controlPid: cfg.controlPid, log, logger, maxWrite: cfg.maxWrite, tgid: callers,
      tree: cfg.tree ? new FileTree(cfg.tree.devicePath, cfg.tree.modeBits, cfg.tree.uid, cfg.tree.gid) : undefined,
      cuse: cfg.cuse,
      trace: sink ? (ev) => sink.write(ev) : undefined,
      traceCaller: sink ? (tid) => sink.setCaller(tid) : undefined,
      onClientOpen: made.beginInjection ? (pid, tid) => {
        // Near the fd limit, a new client gets no injected userfaultfd (an fd kept per client) but the /proc checker:
        // the fds left go to opening the node itself, which then keeps working.
        const left = fdHeadroom();
        if (left < FD_RESERVE) {
          if (!fdLowAnnounced) { fdLowAnnounced = true; log(`only ${left} fds left below the limit: new clients get no userfaultfd (watched through /proc) until fds are freed`); }
          return;
        }
        fdLowAnnounced = false;
        made.beginInjection!(pid, tid);
      } : undefined,
      interleave: !!io.poll,
    });
    post({ type: 'started', watcher: made.watcher, reasons: made.reasons });
  } catch (e) {
    try { callers?.close(); } catch { /* never started */ }
    post({ type: 'fatal', msg: (e as Error).message });
    sink?.close();
    return;
  }
  let stopping = false;
  let announcedInit = false;
  const mail = cfg.mail ? new Int32Array(cfg.mail) : null;
  const afterRequest = (): boolean => {
    // A client thread seized at OPEN stops right after our reply: inject its userfaultfd now (~1 ms, once per client);
    // never waiting on the tracee for more than a short spin: the rest is driven by the loop's timer (timeoutMs).
    completeInjections?.();
    if (!announcedInit && session.proto) {
      announcedInit = true;
      post({ type: 'init', minor: session.proto.minor, kernelMinor: session.proto.kernelMinor, flags: session.proto.flags });
    }
    // receiveMessageOnPort costs ~0.1 µs: look at the port only when the main thread flagged a message.
    if (mail && Atomics.exchange(mail, 0, 0) === 0) return stopping && session.controlHandles() === 0;
    let got = false;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      got = true;
      const msg = m.message as ToWorker;
      if (msg.type === 'stop') stopping = true;
      else if (msg.type === 'snapshot') {
        let snapshot: unknown;
        try { snapshot = dev.snapshot(); } catch (e) { snapshot = { error: String(e) }; }
        post({ type: 'snapshot', id: msg.id, counts: dev.counts(), snapshot, stats: { ...dev.stats, ...injectCounters(), ...callerCounters() }, session: { ...session.stats }, openFiles: session.openFiles() });
      }
    }
    if (mail && !got) Atomics.store(mail, 0, 1); // flagged but not visible yet: look again after the next request
    // Leave only once the wake-up open was released, so the kernel never waits on an unanswered FLUSH/RELEASE.
    return stopping && session.controlHandles() === 0;
  };
  // Wait on the wake fd only while some client has uffd-watched ranges (a counter, not a scan of the clients). Either
  // way one read(2) per request: the wake queue's readers interrupt it with a signal (readOrWake), no poll(2) first.
  const wakeNeeded = (): number => (wakeFd >= 0 && watchingClients() > 0 ? wakeFd : -1);
  const onWake = (): void => {
    const pids = u!.wakeQueueDrain(wakeFd);
    eventLatency.begin();
    if (pids.length === 1) dev.service(pids[0]!);
    else for (const pid of new Set(pids)) dev.service(pid);
    eventLatency.done();
  };
  // Counters named for the snapshot's flat stats: { cached: 1 } under "callers" → { callersCached: 1 }.
  const prefixed = (prefix: string, s: object | undefined): Record<string, number> =>
    s ? Object.fromEntries(Object.entries(s).map(([k, v]) => [`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`, v as number])) : {};
  // callersCached, callersPidfds, callersResolved, callersRefused, callersExited, callersEvicted.
  const callerCounters = (): Record<string, number> => prefixed('callers', callers?.stats());
  const injectCounters = (): Record<string, number> => prefixed('inject', injectStats?.());
  // Injections in flight wake the loop on a timer: each step is a waitpid(WNOHANG), never a wait on the tracee.
  const timeoutMs = (): number => injectionWaitMs?.() ?? -1;
  const onTimeout = (): void => { completeInjections?.(); };
  // The mail word read plainly (tear-free, and Atomics.load is a builtin call here): a flag set a moment ago and not
  // seen yet is seen at the next request's afterRequest(), which takes it with Atomics.exchange.
  const quiet = (): boolean => announcedInit && !stopping && (!mail || mail[0] === 0) && !(pendingInjections?.() ?? 0);
  const background = (): boolean => session.parked() > 0;
  const step = (): Uint8Array | null => session.step();
  const reason = serveLoop(cfg.fd, session, { afterRequest, log, wakeFd: wakeNeeded, onWake, quiet, timeoutMs, onTimeout, background, step }, readBufferSize(cfg.maxWrite), cfg.fd, io);
  // Parked ioctls still waiting get ENODEV, so no caller stays blocked on a request nobody will answer.
  for (const r of session.abandonParked()) try { io.write(cfg.fd, r); } catch { /* unmounted: the kernel ends them */ }
  try { callers?.close(); } catch (e) { log(`caller watch stop failed: ${String(e)}`); }
  const openAtStop = session.openFiles();
  session.closeAll();
  try { dev.shutdown(); } catch (e) { log(`shutdown failed: ${String(e)}`); }
  try { releaseClients(); } catch (e) { log(`client release failed: ${String(e)}`); }
  // After the readers stopped (releaseClients): none bumps the eventfd any more.
  if (wakeFd >= 0) try { u!.wakeQueueClose(wakeFd); } catch { /* already closed */ }
  logger.stop();
  sink?.close();
  const summary = summarize(session, dev, openAtStop, reason);
  const inj = injectStats?.();
  const ev = eventLatency.stats();
  if (ev.n) summary.uffdEvents = ev;
  if (inj) summary.inject = { started: inj.started ?? 0, completed: inj.completed ?? 0, abandoned: inj.abandoned ?? 0, traceeDied: inj.traceeDied ?? 0, failed: inj.failed ?? 0, refused: inj.refused ?? 0, declined: inj.declined ?? 0 };
  post({ type: 'summary', summary });
}

if (!isMainThread && (workerData as { virtgpuServe?: WorkerConfig } | null)?.virtgpuServe) {
  serveWorkerMain((workerData as { virtgpuServe: WorkerConfig }).virtgpuServe);
}
