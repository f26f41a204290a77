// The device: resource ids, contexts, clients, files; the ioctl entry path (drain → invalidate → work → dispatch).
import { EBADF, Errno, isErr } from './errno';
import { IoctlTable, type IoctlCtx, type IoctlResult, type IoctlRow, type PointerPlan, type Preparation } from './drm/dispatch';
import { DrmFile, type Context } from './drm/file';
import { GemObject, HandleIdr, type BoKind } from './drm/gem';
import { Client } from './client';
import type { ClientProvider, UserCopy } from './memory/client-memory';
import type { Host } from './host/host';
import { RecordingHost } from './host/recording-host';
import { profileByName, type DeviceProfile } from './virtgpu/profile';
import { virtgpuTable } from './virtgpu/ioctls';
import { applyEvents, runWorker } from './userptr/notifier';
import { immediateScheduler, type WorkScheduler } from './userptr/worklist';
import type { TraceEvent } from './trace-events';
import { snapshotDevice, type Snapshot } from './snapshot';
import { LogLimiter } from './log-limit';

export type Mode = 'notifier' | 'pin';

/** What the transport can do; handlers answer EOPNOTSUPP for what it cannot (fence fds, mmap). */
export interface TransportCaps { fdPassing: boolean; mmap: boolean }

export interface DeviceOptions {
  mode?: Mode;
  profile?: string | DeviceProfile;
  host?: Host;
  clients: ClientProvider;
  caps?: TransportCaps;
  scheduler?: WorkScheduler;
  trace?: (ev: TraceEvent) => void;
  log?: (msg: string) => void;
  /** The server's one limiter, shared with the transport's session; default: the device's own over `log`. */
  logger?: LogLimiter;
}

export interface Stats {
  clients: number; ioctls: number; errors: number;
  userptrsCreated: number; userptrsDeduped: number; userptrsSplit: number; userptrsEvicted: number; userptrsUnmapped: number;
  silentFrameUpdates: number; notifierEvents: number;
}

export interface Counts { files: number; clients: number; handles: number; resources: number; pins: number; registrations: number; queued: number; contexts: number }

export class Device {
  readonly mode: Mode;
  readonly profile: DeviceProfile;
  readonly host: Host;
  readonly caps: TransportCaps;
  readonly scheduler: WorkScheduler;
  readonly table: IoctlTable;
  readonly files = new Set<DrmFile>();
  readonly clients = new Map<number, Client>();
  readonly contexts = new HandleIdr<Context>();
  readonly stats: Stats = { clients: 0, ioctls: 0, errors: 0, userptrsCreated: 0, userptrsDeduped: 0, userptrsSplit: 0, userptrsEvicted: 0, userptrsUnmapped: 0, silentFrameUpdates: 0, notifierEvents: 0 };
  /** Pages currently pinned by userptr BOs. */
  pins = 0;
  /** Resources created and not yet unref'd. */
  resources = 0;
  trace?: (ev: TraceEvent) => void;
  private readonly provider: ClientProvider;
  /** Every line core logs goes through it: once per key, once per errno class of a file, rate-limited. */
  readonly logger: LogLimiter;
  private readonly ownLogger: boolean;
  // Resource ids start at 2 and are never reused (the kernel's virglrenderer workaround).
  private nextResId = 2;
  private nextFileId = 1;
  /** Fake guest-physical allocator for guest blobs (the recording host needs addresses, not memory). */
  private nextGuestAddr = 0x100000000;

  constructor(opts: DeviceOptions) {
    this.mode = opts.mode ?? 'notifier';
    this.profile = typeof opts.profile === 'object' ? opts.profile : profileByName(opts.profile ?? 'hsakmt');
    this.host = opts.host ?? new RecordingHost();
    this.caps = opts.caps ?? { fdPassing: false, mmap: false };
    this.scheduler = opts.scheduler ?? immediateScheduler;
    this.provider = opts.clients;
    this.trace = opts.trace;
    const logFn = opts.log ?? (() => undefined);
    this.ownLogger = !opts.logger;
    this.logger = opts.logger ?? new LogLimiter({ sink: (msg) => { logFn(msg); this.trace?.({ t: 'log', msg }); } });
    this.table = virtgpuTable;
  }

  // ---- files and clients ----

  open(pid: number): DrmFile {
    const client = this.clientFor(pid);
    const f = new DrmFile(this, this.nextFileId++, client);
    this.files.add(f);
    f.clients.add(client);
    client.files.add(f);
    client.refs++;
    this.trace?.({ t: 'file', op: 'open', file: f.id, pid });
    return f;
  }

  private clientFor(pid: number): Client {
    let c = this.clients.get(pid);
    if (!c) {
      c = new Client(this.provider(pid));
      this.clients.set(pid, c);
      this.stats.clients++;
    }
    return c;
  }

  private unrefClient(c: Client): void {
    if (--c.refs > 0 || c.released) return;
    c.released = true;
    this.clients.delete(c.pid);
    try { c.env.release(); } catch (e) { this.logOnce(`release:${c.pid}`, `client ${c.pid} release failed: ${String(e)}`); }
  }

  /** Close: flush work, release every handle as GEM_CLOSE does, then CTX_DESTROY (spec §3). Idempotent. */
  closeFile(f: DrmFile): void {
    if (f.closed) return;
    this.guard(`close:${f.id}`, () => { for (const c of f.clients) this.drainInto(c); runWorker(f); });
    f.closed = true;
    for (const h of f.handles.sortedHandles()) this.guard(`close:${f.id}:${h}`, () => this.gemClose(f, f.handles.get(h)!));
    if (f.ctx) {
      this.host.submit({ cmd: 'CTX_DESTROY', ctxId: f.ctx.id });
      this.contexts.remove(f.ctx.id);
      f.ctx = null;
    }
    this.files.delete(f);
    this.trace?.({ t: 'file', op: 'close', file: f.id, pid: f.opener.pid });
    for (const c of f.clients) { c.files.delete(f); this.unrefClient(c); }
    f.clients.clear();
    this.logger.closeFile(f.id);
  }

  /** Close every file; a device that owns its logger then logs what it suppressed (a shared one is stopped by its owner). */
  shutdown(): void {
    for (const f of [...this.files]) this.closeFile(f);
    if (this.ownLogger) this.logger.stop();
  }

  // ---- the ioctl path ----

  private readonly onBug = (e: unknown, row: IoctlRow): void =>
    this.logOnce(`bug:${row.name}:${String(e)}`, `BUG in ${row.name}: ${e instanceof Error ? e.stack : String(e)}`);

  ioctl(f: DrmFile, pid: number, cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlResult {
    if (f.closed) return { result: EBADF, out: new Uint8Array(0) };
    const client = this.useClient(f, pid);
    this.stats.ioctls++;
    this.entry(client);
    const ctx: IoctlCtx = { file: f, client, user: user ?? client.memory };
    const t0 = this.trace ? performance.now() : 0;
    const r = this.table.call(cmd, argIn, ctx, this.onBug);
    if (isErr(r.result)) {
      this.stats.errors++;
      // One line per errno class and file (a fuzzing client must not flood the log); the rest is counted.
      this.logger.fileError(f.id, f.opener.pid, r.result.code, `file ${f.id} pid ${pid}: ioctl 0x${cmd.toString(16)} (${r.row?.name ?? 'unknown'}) -> ${r.result.code} (further ${r.result.code} on this file are counted, told at close)`);
    }
    if (this.trace) {
      const row = r.row;
      this.trace({
        t: 'ioctl', file: f.id, pid, cmd, name: row?.name ?? `0x${cmd.toString(16)}`,
        in: row && r.args ? row.layout.dump(row.layout.decode(IoctlTable.kbuf(this.table.negotiate(cmd) as never, argIn))) : undefined,
        out: row && r.args ? row.layout.dump(r.args as never) : undefined,
        result: isErr(r.result) ? r.result.code : r.result, us: Math.round((performance.now() - t0) * 1000) / 1000,
      });
    }
    return r;
  }

  /** For CUSE's stateless RETRY: sizes at `arg` and the embedded ranges the handler will touch. */
  plan(cmd: number, argIn: Uint8Array | null, f: DrmFile, user: UserCopy, pid = f.opener.pid): Errno | { inSize: number; outSize: number; in: PointerPlan['in']; out: PointerPlan['out'] } {
    const n = this.table.negotiate(cmd);
    if (isErr(n)) return n;
    if (!argIn || !n.row.pointers) return { inSize: n.inSize, outSize: n.outSize, in: [], out: [] };
    const client = this.clients.get(pid) ?? f.opener;
    const args = n.row.layout.decode(IoctlTable.kbuf(n, argIn));
    try {
      const p = n.row.pointers(args, { file: f, client, user });
      return { inSize: n.inSize, outSize: n.outSize, in: p.in, out: p.out };
    } catch (e) {
      this.logOnce(`bug:plan:${n.row.name}`, `BUG in ${n.row.name}.pointers: ${String(e)}`);
      return { inSize: n.inSize, outSize: n.outSize, in: [], out: [] };
    }
  }

  /**
   * The preparation of an ioctl whose handler would run long (a userptr create of at least 64 MiB), or null.
   * Nothing is drained or changed: the ioctl itself follows once the preparation is done (or abandoned).
   */
  prepare(f: DrmFile, pid: number, cmd: number, argIn: Uint8Array): Preparation | null {
    if (f.closed) return null;
    const n = this.table.negotiate(cmd);
    if (isErr(n) || !n.row.prepare) return null;
    const client = this.clients.get(pid);
    if (!client) return null;
    try {
      const args = n.row.layout.decode(IoctlTable.kbuf(n, argIn));
      return n.row.prepare({ file: f, client, user: client.memory }, args);
    } catch (e) {
      this.logOnce(`bug:prepare:${n.row.name}`, `BUG in ${n.row.name}.prepare: ${String(e)}`);
      return null;
    }
  }

  private useClient(f: DrmFile, pid: number): Client {
    const c = this.clientFor(pid);
    if (!f.clients.has(c)) { f.clients.add(c); c.files.add(f); c.refs++; }
    return c;
  }

  /** Ioctl entry (spec §5): drain the client's events, run the invalidate handlers, then the worker. */
  private entry(c: Client): void {
    try {
      this.drainInto(c);
      if (this.scheduler.runAtEntry()) for (const g of this.filesOf(c)) runWorker(g);
    } catch (e) {
      this.logOnce(`bug:entry:${c.pid}:${String(e)}`, `entry of pid ${c.pid}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  /** Watchers touch real processes that may vanish: a failure there is logged once and never escapes to a transport. */
  private guard(key: string, fn: () => void): void {
    try { fn(); } catch (e) { this.logOnce(`bug:${key}:${String(e)}`, `${key}: ${e instanceof Error ? e.stack : String(e)}`); }
  }

  /** Drain a client's pending events into the work lists of every file holding its userptrs. */
  drainInto(c: Client): void {
    const evs = c.events.drain();
    if (evs.length === 0) return;
    this.stats.notifierEvents += evs.length;
    for (const ev of evs) this.trace?.({ t: 'notifier', pid: c.pid, event: ev.event, start: ev.start, end: ev.end, removed: ev.removed, note: ev.note });
    if (this.mode !== 'notifier') return;
    for (const f of this.filesOf(c)) applyEvents(f, c, evs);
  }

  /** Async wake-up from a watcher: drain and run the work of that client now (BO deleted without a further ioctl). */
  service(pid: number): void {
    const c = this.clients.get(pid);
    if (!c) return;
    this.guard(`service:${pid}`, () => { this.drainInto(c); for (const f of this.filesOf(c)) runWorker(f); });
  }

  /** Flush a file's work (create and close always do, whatever the scheduler says). */
  flush(f: DrmFile): void {
    for (const c of f.clients) this.drainInto(c);
    runWorker(f);
  }

  /** The client's files in open order (deterministic host command order across files). */
  filesOf(c: Client): Iterable<DrmFile> {
    if (c.files.size < 2) return c.files;
    return [...c.files].sort((a, b) => a.id - b.id);
  }

  // ---- objects ----

  allocResId(): number { return this.nextResId++; }
  allocGuestAddr(bytes: number): number { const a = this.nextGuestAddr; this.nextGuestAddr += Math.ceil(bytes / 4096) * 4096; return a; }

  /** The file's context, creating the default one when the device is 3D capable (virtio_gpu_create_context). */
  ensureContext(f: DrmFile, c: Client): Context | null {
    if (f.ctx || !this.profile.has3d) return f.ctx;
    return this.createContext(f, c, f.ctxParams.capsetId ?? 0, f.ctxParams.numRings ?? 0, f.ctxParams.ringMask ?? 0n, f.ctxParams.debugName);
  }

  createContext(f: DrmFile, c: Client, capsetId: number, numRings: number, ringMask: bigint, debugName: string | null): Context {
    const ctx: Context = { id: 0, capsetId, numRings, ringMask, debugName: debugName ?? `pid${c.pid}` };
    ctx.id = this.contexts.alloc(ctx);
    f.ctx = ctx;
    this.host.submit({ cmd: 'CTX_CREATE', ctxId: ctx.id, contextInit: capsetId, debugName: ctx.debugName });
    return ctx;
  }

  /** drm_gem_handle_create + virtio_gpu_gem_object_open: handle, then CTX_ATTACH_RESOURCE to the file's context. */
  addObject(f: DrmFile, kind: BoKind, resId: number, size: number, blobMem: number, blobFlags: number): GemObject {
    const bo = new GemObject(f, kind, resId, size, blobMem, blobFlags, f.ctx?.id ?? 0);
    bo.handle = f.handles.alloc(bo);
    this.resources++;
    if (f.ctx) this.host.submit({ cmd: 'CTX_ATTACH_RESOURCE', ctxId: f.ctx.id, resId });
    return bo;
  }

  /** GEM_CLOSE: handle gone, CTX_DETACH_RESOURCE, then (last reference) the kind's release and RESOURCE_UNREF. */
  gemClose(f: DrmFile, bo: GemObject): void {
    if (bo.deleted) return;
    bo.deleted = true;
    f.handles.remove(bo.handle);
    if (bo.attachedCtx) this.host.submit({ cmd: 'CTX_DETACH_RESOURCE', ctxId: bo.attachedCtx, resId: bo.resId });
    // Release pins/registrations even if the watcher of a vanished process fails: the host must still get UNREF.
    this.guard(`release:${bo.resId}`, () => bo.kind.release(bo));
    this.host.submit({ cmd: 'RESOURCE_UNREF', resId: bo.resId });
    this.resources--;
  }

  // ---- introspection ----

  counts(): Counts {
    let handles = 0, registrations = 0, queued = 0;
    for (const f of this.files) { handles += f.handles.size; queued += f.work.length; }
    for (const c of this.clients.values()) registrations += c.events.registrations();
    return { files: this.files.size, clients: this.clients.size, handles, resources: this.resources, pins: this.pins, registrations, queued, contexts: this.contexts.size };
  }

  snapshot(): Snapshot { return snapshotDevice(this); }

  /** Log a message once per key (malformed input must not flood the log): see LogLimiter.once. */
  logOnce(key: string, msg: string): void { this.logger.once(key, msg); }

  rows(): IoctlRow[] { return this.table.all(); }
}

export function createDevice(opts: DeviceOptions): Device { return new Device(opts); }
