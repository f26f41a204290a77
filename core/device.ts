// The entry path of the render node: files and clients, open/ioctl/plan/prepare/service/close, traces and
// introspection. The driver state the handlers work on is the Vgdev (core/virtgpu/vgdev.ts).
import { EBADF, EIO, Errno, isErr } from './errno';
import { IoctlTable, type IoctlResult, type IoctlRow, type PointerPlan, type Preparation } from './drm/dispatch';
import { DrmFile } from './drm/file';
import { Client } from './client';
import type { ClientProvider, UserCopy } from './memory/client-memory';
import type { Host } from './host/host';
import { RecordingHost } from './host/recording-host';
import { profileByName, type DeviceProfile } from './virtgpu/profile';
import { virtgpuTableFor } from './virtgpu/ioctls';
import { DEFAULT_UAPI, uapiByName, withMode, type UapiRevision } from './virtgpu/uapi';
import { Fpriv, type VirtgpuFile } from './virtgpu/fpriv';
import { Vgdev, type Mode, type Stats, type TransportCaps, type VirtgpuCtx } from './virtgpu/vgdev';
import { sync, syncClient } from './userptr/notifier';
import { immediateScheduler, type WorkScheduler } from './userptr/worklist';
import { recordingUser, type TraceEvent, type UserIo } from './trace-events';
import { snapshotDevice, type Counts, type Snapshot } from './snapshot';
import { LogLimiter } from './log-limit';
import type { FaultHooks } from './fault-hooks';
import { arrayBlobMemory, type BlobMemory, type BlobMemoryAllocator } from './memory/blob-memory';
import type { IoctlFds } from './virtgpu/fence';
import { mapRequest } from './virtgpu/mmap';
import { dropWaiting } from './virtgpu/execbuf';

export type { Counts, Mode, Stats, TransportCaps };

export interface DeviceOptions {
  /** The kernel revision whose uAPI the node speaks (core/virtgpu/uapi.ts); default v1. */
  uapi?: string | UapiRevision;
  /** `pin` turns the revision's dedup and notifier off (withMode); default: the revision's own. */
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
  /** Fault injection (`--fault`): asked at each ioctl. */
  faults?: FaultHooks;
  /** Where mappable BOs get their shared memory; default: ArrayBuffers (no fd, nothing to map outside this process). */
  blobMemory?: BlobMemoryAllocator;
}

/** What a map request resolved to: the BO's memory and the byte offset inside it where the mapping starts. */
export interface MapTarget { memory: BlobMemory; offset: number; resId: number }

/** An open file as its opener holds it (the fd): ioctls, the preparation of a long one, close. */
export class DeviceFile {
  constructor(private readonly dev: Device, readonly drm: VirtgpuFile) {}
  get id(): number { return this.drm.id; }

  /** Issue one ioctl as process `pid` (thread-group id). */
  ioctl(pid: number, cmd: number, argIn: Uint8Array, user?: UserCopy, fds?: IoctlFds): IoctlResult {
    return this.dev.ioctl(this, pid, cmd, argIn, user, fds);
  }

  /** mmap(fd, offset) of `length` bytes: the memory to map, or the kernel's errno (docs/semantics.md §10). */
  map(offset: bigint, length: number): MapTarget | Errno { return this.dev.map(this, offset, length); }

  /** Device.prepare for this file. */
  prepare(pid: number, cmd: number, argIn: Uint8Array): Preparation | null { return this.dev.prepare(this, pid, cmd, argIn); }

  close(): void { this.dev.closeFile(this); }
}

export class Device {
  /** The driver state (profile, host, ids, contexts, counters) handlers reach as ctx.dev. */
  readonly vg: Vgdev;
  readonly table: IoctlTable;
  readonly files = new Set<VirtgpuFile>();
  readonly clients = new Map<number, Client>();
  private readonly provider: ClientProvider;
  private readonly ownLogger: boolean;
  private readonly faults?: FaultHooks;
  private nextFileId = 1;

  constructor(opts: DeviceOptions) {
    const logFn = opts.log ?? (() => undefined);
    this.ownLogger = !opts.logger;
    const logger = opts.logger ?? new LogLimiter({ sink: (msg) => { logFn(msg); this.vg.trace?.({ t: 'log', msg }); } });
    const uapi = withMode(typeof opts.uapi === 'object' ? opts.uapi : uapiByName(opts.uapi ?? DEFAULT_UAPI), opts.mode);
    this.vg = new Vgdev({
      uapi,
      profile: typeof opts.profile === 'object' ? opts.profile : profileByName(opts.profile ?? 'hsakmt'),
      host: opts.host ?? new RecordingHost(),
      caps: opts.caps ?? { fdPassing: false, mmap: false },
      scheduler: opts.scheduler ?? immediateScheduler,
      logger,
      blobMemory: opts.blobMemory ?? arrayBlobMemory,
      trace: opts.trace,
    });
    this.provider = opts.clients;
    this.faults = opts.faults;
    this.table = virtgpuTableFor(uapi);
    this.vg.trace?.({ t: 'device', uapi: uapi.name, mode: this.vg.mode, profile: this.vg.profile.name, posted: uapi.posted });
  }

  /** Running totals, pinned pages and the trace sink (settable) of the driver state. */
  get stats(): Stats { return this.vg.stats; }
  get pins(): number { return this.vg.pins; }
  get trace(): ((ev: TraceEvent) => void) | undefined { return this.vg.trace; }
  set trace(t: ((ev: TraceEvent) => void) | undefined) { this.vg.trace = t; }

  // ---- files and clients ----

  open(pid: number): DeviceFile {
    const client = this.clientFor(pid);
    const f = new DrmFile(this.nextFileId++, client, new Fpriv());
    this.files.add(f);
    f.clients.add(client);
    client.files.add(f);
    client.refs++;
    this.vg.trace?.({ t: 'file', op: 'open', file: f.id, pid });
    return new DeviceFile(this, f);
  }

  private clientFor(pid: number): Client {
    let c = this.clients.get(pid);
    if (!c) {
      c = new Client(this.provider(pid));
      this.clients.set(pid, c);
      this.vg.stats.clients++;
    }
    return c;
  }

  private unrefClient(c: Client): void {
    if (--c.refs > 0 || c.released) return;
    c.released = true;
    this.clients.delete(c.pid);
    try { c.env.release(); } catch (e) { this.logOnce(`release:${c.pid}`, `client ${c.pid} release failed: ${String(e)}`); }
  }

  /** Close: flush work, release every handle as GEM_CLOSE does, then CTX_DESTROY (docs/semantics.md §3). Idempotent. */
  closeFile(file: DeviceFile): void { this.close(file.drm); }

  private close(f: VirtgpuFile): void {
    if (f.closed) return;
    const vg = this.vg;
    vg.guard(`close:${f.id}`, () => sync(vg, f.clients, [f]));
    f.closed = true;
    vg.guard(`close:${f.id}:waiting`, () => dropWaiting(vg, f));
    for (const h of f.handles.sortedHandles()) vg.guard(`close:${f.id}:${h}`, () => vg.gemClose(f, f.handles.get(h)!));
    vg.destroyContext(f);
    this.files.delete(f);
    vg.trace?.({ t: 'file', op: 'close', file: f.id, pid: f.opener.pid });
    for (const c of f.clients) { c.files.delete(f); this.unrefClient(c); }
    f.clients.clear();
    vg.logger.closeFile(f.id);
  }

  /**
   * Close every file and signal every fence the host has not completed (a client polling one returns); a device that
   * owns its logger then logs what it suppressed (a shared one is stopped by its owner).
   */
  shutdown(): void {
    for (const f of [...this.files]) this.close(f);
    this.vg.signalAllFences();
    if (this.ownLogger) this.vg.logger.stop();
  }

  // ---- the ioctl path ----

  private readonly onBug = (e: unknown, row: IoctlRow): void =>
    this.logOnce(`bug:${row.name}:${String(e)}`, `BUG in ${row.name}: ${e instanceof Error ? e.stack : String(e)}`);

  ioctl(file: DeviceFile, pid: number, cmd: number, argIn: Uint8Array, user?: UserCopy, fds?: IoctlFds): IoctlResult {
    const f = file.drm;
    if (f.closed) return { result: EBADF, out: new Uint8Array(0) };
    const vg = this.vg;
    const client = this.useClient(f, pid);
    vg.stats.ioctls++;
    const fault = this.faults ? this.fault(f, client, pid, cmd) : undefined;
    this.entry(client);
    const trace = vg.trace;
    if (fault?.fail) {
      vg.stats.errors++;
      trace?.({ t: 'ioctl', file: f.id, pid, cmd, name: fault.name, result: fault.fail.code, us: 0, fault: true });
      return { result: fault.fail, out: new Uint8Array(0) };
    }
    // Traced: the caller's bytes and every embedded-pointer copy go into the record (replay's inputs).
    const io = trace ? { reads: [] as UserIo[], writes: [] as UserIo[] } : undefined;
    const ctx: VirtgpuCtx = { dev: vg, file: f, client, user: io ? recordingUser(user ?? client.memory, io) : user ?? client.memory, fds };
    const t0 = trace ? performance.now() : 0;
    const r = this.table.call(cmd, argIn, ctx, this.onBug);
    if (isErr(r.result)) {
      vg.stats.errors++;
      // One line per errno class and file (a fuzzing client must not flood the log); the rest is counted.
      vg.logger.fileError(f.id, f.opener.pid, r.result.code, `file ${f.id} pid ${pid}: ioctl 0x${cmd.toString(16)} (${r.row?.name ?? 'unknown'}) -> ${r.result.code} (further ${r.result.code} on this file are counted, told at close)`);
    }
    if (trace) {
      const row = r.row;
      trace({
        t: 'ioctl', file: f.id, pid, cmd, name: row?.name ?? `0x${cmd.toString(16)}`,
        in: row && r.args ? row.layout.dump(row.layout.decode(IoctlTable.kbuf(this.table.negotiate(cmd) as never, argIn))) : undefined,
        out: row && r.args ? row.layout.dump(r.args as never) : undefined,
        result: isErr(r.result) ? r.result.code : r.result, us: Math.round((performance.now() - t0) * 1000) / 1000,
        raw: argIn.slice(), ...(io!.reads.length ? { reads: io!.reads } : {}), ...(io!.writes.length ? { writes: io!.writes } : {}),
      });
    }
    return r;
  }

  /** The fault rules' answer for this ioctl: events queued for the client now, an errno to fail it with. */
  private fault(f: VirtgpuFile, client: Client, pid: number, cmd: number): { name: string; fail?: Errno } {
    const n = this.table.negotiate(cmd);
    const name = isErr(n) ? `0x${cmd.toString(16)}` : n.row.name;
    const act = this.faults!.ioctl({ file: f.id, pid, cmd, name });
    if (act?.events?.length) client.inject(act.events);
    return { name, fail: act?.fail };
  }

  /** For CUSE's stateless RETRY: sizes at `arg` and the embedded ranges the handler will touch. */
  plan(cmd: number, argIn: Uint8Array | null, file: DeviceFile, user: UserCopy, pid = file.drm.opener.pid): Errno | { inSize: number; outSize: number; in: PointerPlan['in']; out: PointerPlan['out']; populate?: PointerPlan['populate']; fds?: number[] } {
    const n = this.table.negotiate(cmd);
    if (isErr(n)) return n;
    if (!argIn || (!n.row.pointers && !n.row.fdsIn)) return { inSize: n.inSize, outSize: n.outSize, in: [], out: [], fds: [] };
    const f = file.drm;
    const client = this.clients.get(pid) ?? f.opener;
    const args = n.row.layout.decode(IoctlTable.kbuf(n, argIn));
    try {
      const p = n.row.pointers?.(args, { dev: this.vg, file: f, client, user }) ?? { in: [], out: [] };
      const fds = n.row.fdsIn?.(args) ?? [];
      return p.populate ? { inSize: n.inSize, outSize: n.outSize, in: p.in, out: p.out, populate: p.populate, fds } : { inSize: n.inSize, outSize: n.outSize, in: p.in, out: p.out, fds };
    } catch (e) {
      this.logOnce(`bug:plan:${n.row.name}`, `BUG in ${n.row.name}.pointers: ${String(e)}`);
      return { inSize: n.inSize, outSize: n.outSize, in: [], out: [], fds: [] };
    }
  }

  /** DeviceFile.map: resolve a map request of `file` (nothing is changed but a deferred mapping being made). */
  map(file: DeviceFile, offset: bigint, length: number): MapTarget | Errno {
    const f = file.drm;
    if (f.closed) return EBADF;
    try {
      return mapRequest(this.vg, f, offset, length);
    } catch (e) {
      this.logOnce(`bug:map:${String(e)}`, `BUG in a map request: ${e instanceof Error ? e.stack : String(e)}`);
      return EIO;
    }
  }

  /**
   * The preparation of an ioctl whose handler would run long (a userptr create of at least 64 MiB), or null.
   * Nothing is drained or changed: the ioctl itself follows once the preparation is done (or abandoned).
   */
  prepare(file: DeviceFile, pid: number, cmd: number, argIn: Uint8Array): Preparation | null {
    const f = file.drm;
    if (f.closed) return null;
    const n = this.table.negotiate(cmd);
    if (isErr(n) || !n.row.prepare) return null;
    const client = this.clients.get(pid);
    if (!client) return null;
    try {
      const args = n.row.layout.decode(IoctlTable.kbuf(n, argIn));
      return n.row.prepare({ dev: this.vg, file: f, client, user: client.memory }, args);
    } catch (e) {
      this.logOnce(`bug:prepare:${n.row.name}`, `BUG in ${n.row.name}.prepare: ${String(e)}`);
      return null;
    }
  }

  private useClient(f: VirtgpuFile, pid: number): Client {
    const c = this.clientFor(pid);
    if (!f.clients.has(c)) { f.clients.add(c); c.files.add(f); c.refs++; }
    return c;
  }

  /** Ioctl entry (docs/semantics.md §5): drain the client's events, run the invalidate handlers, then the worker. */
  private entry(c: Client): void {
    try {
      syncClient(this.vg, c, this.vg.scheduler.runAtEntry(), 'entry');
    } catch (e) {
      this.logOnce(`bug:entry:${c.pid}:${String(e)}`, `entry of pid ${c.pid}: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }

  /** Async wake-up from a watcher: drain and run the work of that client now (BO deleted without a further ioctl). */
  service(pid: number): void {
    const c = this.clients.get(pid);
    if (!c) return;
    this.vg.guard(`service:${pid}`, () => syncClient(this.vg, c, true, 'wake'));
  }

  // ---- introspection ----

  counts(): Counts {
    let handles = 0, registrations = 0, queued = 0;
    for (const f of this.files) { handles += f.handles.size; queued += f.priv.work.length; }
    for (const c of this.clients.values()) registrations += c.events.registrations();
    const vg = this.vg;
    return { files: this.files.size, clients: this.clients.size, handles, resources: vg.resources, pins: vg.pins, registrations, queued, contexts: vg.contexts.size, blobMemory: vg.memoryCount, blobMemoryBytes: vg.memoryBytes, fences: vg.fences.size };
  }

  snapshot(): Snapshot { return snapshotDevice(this.vg, this.files, this.clients.values(), this.counts()); }

  /** Log a message once per key (malformed input must not flood the log): see LogLimiter.once. */
  logOnce(key: string, msg: string): void { this.vg.logOnce(key, msg); }

  rows(): IoctlRow[] { return this.table.all(); }
}

export function createDevice(opts: DeviceOptions): Device { return new Device(opts); }
