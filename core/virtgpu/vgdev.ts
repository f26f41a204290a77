// The driver state (the kernel's virtio_gpu_device, "vgdev"): profile, uAPI revision, host, transport caps, mode, resource ids,
// guest addresses, contexts, GEM object creation and close, pins, resources and counters. Handlers reach it as ctx.dev.
import type { IoctlCtx } from '../drm/dispatch';
import { GemObject, HandleIdr, type BoKind } from '../drm/gem';
import type { Client } from '../client';
import type { Host } from '../host/host';
import type { TraceEvent } from '../trace-events';
import type { LogLimiter } from '../log-limit';
import type { WorkScheduler } from '../userptr/worklist';
import { pageUp } from '../memory/client-memory';
import type { DeviceProfile } from './profile';
import { modeOf, type Mode, type UapiRevision } from './uapi';
import type { Context, Fpriv, VirtgpuFile } from './fpriv';

export type { Mode };

/** What the transport can do; handlers answer EOPNOTSUPP for what it cannot (fence fds, mmap). */
export interface TransportCaps { fdPassing: boolean; mmap: boolean }

export interface Stats {
  clients: number; ioctls: number; errors: number;
  userptrsCreated: number; userptrsDeduped: number; userptrsSplit: number; userptrsEvicted: number; userptrsUnmapped: number;
  silentFrameUpdates: number; notifierEvents: number;
}

/** The context of a driver ioctl: this driver's state and per-file state. */
export type VirtgpuCtx = IoctlCtx<Vgdev, Fpriv>;

export interface VgdevOptions {
  uapi: UapiRevision;
  profile: DeviceProfile;
  host: Host;
  caps: TransportCaps;
  scheduler: WorkScheduler;
  logger: LogLimiter;
  trace?: (ev: TraceEvent) => void;
}

export class Vgdev {
  /** How the kernel reads the client's bytes (create_blob layout, userptr path, errnos); `mode` follows from it. */
  readonly uapi: UapiRevision;
  readonly mode: Mode;
  readonly profile: DeviceProfile;
  readonly host: Host;
  readonly caps: TransportCaps;
  /** When the worker runs besides create and close (at every ioctl entry by default). */
  readonly scheduler: WorkScheduler;
  /** Every line core logs goes through it: once per key, once per errno class of a file, rate-limited. */
  readonly logger: LogLimiter;
  trace?: (ev: TraceEvent) => void;
  readonly contexts = new HandleIdr<Context>();
  readonly stats: Stats = { clients: 0, ioctls: 0, errors: 0, userptrsCreated: 0, userptrsDeduped: 0, userptrsSplit: 0, userptrsEvicted: 0, userptrsUnmapped: 0, silentFrameUpdates: 0, notifierEvents: 0 };
  /** Pages currently pinned by userptr BOs. */
  pins = 0;
  /** Resources created and not yet unref'd. */
  resources = 0;
  // Resource ids start at 2 and are never reused (the kernel's virglrenderer workaround).
  private nextResId = 2;
  /** Fake guest-physical allocator for guest blobs (the recording host needs addresses, not memory). */
  private nextGuestAddr = 0x100000000;
  /** Userptr ids: the key of a userptr's registration with its client's watcher. */
  private nextUserptrId = 1;

  constructor(o: VgdevOptions) {
    this.uapi = o.uapi;
    this.mode = modeOf(o.uapi);
    this.profile = o.profile;
    this.host = o.host;
    this.caps = o.caps;
    this.scheduler = o.scheduler;
    this.logger = o.logger;
    this.trace = o.trace;
  }

  allocResId(): number { return this.nextResId++; }
  allocGuestAddr(bytes: number): number { const a = this.nextGuestAddr; this.nextGuestAddr += pageUp(bytes); return a; }
  allocUserptrId(): number { return this.nextUserptrId++; }

  /** The file's context, creating the default one when the device is 3D capable (virtio_gpu_create_context). */
  ensureContext(f: VirtgpuFile, c: Client): Context | null {
    const p = f.priv;
    if (p.ctx || !this.profile.has3d) return p.ctx;
    return this.createContext(f, c, p.ctxParams.capsetId ?? 0, p.ctxParams.numRings ?? 0, p.ctxParams.ringMask ?? 0n, p.ctxParams.debugName);
  }

  createContext(f: VirtgpuFile, c: Client, capsetId: number, numRings: number, ringMask: bigint, debugName: string | null): Context {
    const ctx: Context = { id: 0, capsetId, numRings, ringMask, debugName: debugName ?? `pid${c.pid}` };
    ctx.id = this.contexts.alloc(ctx);
    f.priv.ctx = ctx;
    this.host.submit({ cmd: 'CTX_CREATE', ctxId: ctx.id, contextInit: capsetId, debugName: ctx.debugName });
    return ctx;
  }

  /** The file's context is gone with the file (CTX_DESTROY). */
  destroyContext(f: VirtgpuFile): void {
    const ctx = f.priv.ctx;
    if (!ctx) return;
    this.host.submit({ cmd: 'CTX_DESTROY', ctxId: ctx.id });
    this.contexts.remove(ctx.id);
    f.priv.ctx = null;
  }

  /** drm_gem_handle_create + virtio_gpu_gem_object_open: handle, then CTX_ATTACH_RESOURCE to the file's context. */
  addObject(f: VirtgpuFile, kind: BoKind<Vgdev, Fpriv>, resId: number, size: number, blobMem: number, blobFlags: number): GemObject {
    const ctx = f.priv.ctx;
    const bo = new GemObject(kind, resId, size, blobMem, blobFlags, ctx?.id ?? 0);
    bo.handle = f.handles.alloc(bo);
    this.resources++;
    if (ctx) this.host.submit({ cmd: 'CTX_ATTACH_RESOURCE', ctxId: ctx.id, resId });
    return bo;
  }

  /** GEM_CLOSE: handle gone, CTX_DETACH_RESOURCE, then (last reference) the kind's release and RESOURCE_UNREF. */
  gemClose(f: VirtgpuFile, bo: GemObject): void {
    if (bo.deleted) return;
    bo.deleted = true;
    f.handles.remove(bo.handle);
    if (bo.attachedCtx) this.host.submit({ cmd: 'CTX_DETACH_RESOURCE', ctxId: bo.attachedCtx, resId: bo.resId });
    // Release pins/registrations even if the watcher of a vanished process fails: the host must still get UNREF.
    this.guard(`release:${bo.resId}`, () => bo.kind.release(this, f, bo));
    this.host.submit({ cmd: 'RESOURCE_UNREF', resId: bo.resId });
    this.resources--;
  }

  /** Watchers touch real processes that may vanish: a failure there is logged once and never escapes to a transport. */
  guard(key: string, fn: () => void): void {
    try { fn(); } catch (e) { this.logOnce(`bug:${key}:${String(e)}`, `${key}: ${e instanceof Error ? e.stack : String(e)}`); }
  }

  /** Log a message once per key (malformed input must not flood the log): see LogLimiter.once. */
  logOnce(key: string, msg: string): void { this.logger.once(key, msg); }
}
