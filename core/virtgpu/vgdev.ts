// The driver state (the kernel's virtio_gpu_device, "vgdev"): profile, uAPI revision, host, transport caps, mode, resource ids,
// guest addresses, contexts, GEM object creation and close, pins, resources and counters. Handlers reach it as ctx.dev.
import type { IoctlCtx } from '../drm/dispatch';
import { GemObject, HandleIdr, type BoKind } from '../drm/gem';
import { MapOffsets } from '../drm/map-offsets';
import type { BlobMemory, BlobMemoryAllocator } from '../memory/blob-memory';
import { ENOSPC, isErr, type Errno } from '../errno';
import { Fence } from './fence';
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

/**
 * What the device's transport can do, as the composition root states it. Fence fds and mmap are decided per call
 * instead (IoctlCtx.fds, DeviceFile.map): a server may serve several transports.
 */
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
  blobMemory: BlobMemoryAllocator;
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
  /** Where mappable BOs get the memory the server shares (memfds in a serving process). */
  readonly blobMemory: BlobMemoryAllocator;
  /** The fake mmap offsets VIRTGPU_MAP hands out (docs/semantics.md §10). */
  readonly mapOffsets = new MapOffsets<GemObject>();
  /** Blob memory held now: objects and bytes (back to 0 once every mappable BO is released). */
  memoryCount = 0;
  memoryBytes = 0;
  /** Bytes of the host-visible region HOST3D blobs occupy (the kernel's host_visible_mm). */
  private hostVisibleUsed = 0;
  /** Fences of submissions the host has not completed yet, by id. */
  readonly fences = new Map<number, Fence>();
  private nextFenceId = 1;

  constructor(o: VgdevOptions) {
    this.uapi = o.uapi;
    this.mode = modeOf(o.uapi);
    this.profile = o.profile;
    this.host = o.host;
    this.caps = o.caps;
    this.scheduler = o.scheduler;
    this.logger = o.logger;
    this.blobMemory = o.blobMemory;
    this.trace = o.trace;
    // A host that reports no completions completes each submission as it takes it.
    this.host.attach?.((id) => this.fenceDone(id));
  }

  /** A fence for a submission on (ctx, ring), pending until the host completes it. */
  newFence(ctxId: number, ringIdx: number): Fence {
    const f = new Fence(this.nextFenceId++, ctxId, ringIdx);
    this.fences.set(f.id, f);
    return f;
  }

  /** The host completed the submission of fence `id` (unknown ids are ignored: a host may report twice). */
  fenceDone(id: number): void {
    const f = this.fences.get(id);
    if (!f) return;
    this.fences.delete(id);
    f.signal();
  }

  /** The device is gone: every fence the host has not completed is signalled (no client waits on one forever). */
  signalAllFences(): void {
    for (const id of [...this.fences.keys()]) this.fenceDone(id);
  }

  /** Hand a submission to the host; its fence is signalled when the host says so (at once for a host that cannot). */
  submitWithFence(ctxId: number, ringIdx: number, data: Uint8Array, resIds: number[], fence: Fence): void {
    this.host.submit({ cmd: 'SUBMIT_3D', ctxId, ringIdx, data, resIds, fenceId: fence.id });
    if (!this.host.attach) this.fenceDone(fence.id);
  }

  /**
   * The BO's shared memory, allocating it at the first call: a HOST3D blob's host-visible memory is mapped by the
   * host too (RESOURCE_MAP_BLOB), a guest blob's pages only shared with the host.
   */
  memoryOf(bo: GemObject): BlobMemory | Errno {
    if (bo.memory) return bo.memory;
    const size = pageUp(bo.size);
    const host = bo.kind.name === 'host3d';
    const region = this.profile.hostVisibleBytes;
    if (host && region !== undefined && this.hostVisibleUsed + size > region) return ENOSPC; // drm_mm_insert_node
    const m = this.blobMemory.alloc(size, `virtgpu-res${bo.resId}`);
    if (isErr(m)) return m;
    bo.memory = m;
    this.memoryCount++;
    this.memoryBytes += m.size;
    if (host) this.hostVisibleUsed += m.size;
    this.host.attachMemory?.(bo.resId, m);
    if (bo.kind.name === 'host3d') this.host.submit({ cmd: 'RESOURCE_MAP_BLOB', resId: bo.resId, size: m.size });
    return m;
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
    this.host.attachContext?.(ctx.id, c);
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
    try { bo.kind.release(this, f, bo); } catch (e) { this.guarded(`release:${bo.resId}`, e); }
    const m = bo.memory;
    if (m && bo.kind.name === 'host3d') this.host.submit({ cmd: 'RESOURCE_UNMAP_BLOB', resId: bo.resId });
    this.host.submit({ cmd: 'RESOURCE_UNREF', resId: bo.resId });
    this.resources--;
    this.mapOffsets.remove(bo);
    if (m) {
      bo.memory = null;
      this.memoryCount--;
      this.memoryBytes -= m.size;
      if (bo.kind.name === 'host3d') this.hostVisibleUsed -= m.size;
      // Client mappings keep their pages (the memfd's own references), as a driver keeps pages until munmap.
      try { m.release(); } catch (e) { this.guarded(`release-memory:${bo.resId}`, e); }
    }
  }

  /** Watchers touch real processes that may vanish: a failure there is logged once and never escapes to a transport. */
  guard(key: string, fn: () => void): void {
    try { fn(); } catch (e) { this.guarded(key, e); }
  }

  /** What guard() does with a failure (gemClose calls it inline: no key string or closure per close). */
  guarded(key: string, e: unknown): void {
    this.logOnce(`bug:${key}:${String(e)}`, `${key}: ${e instanceof Error ? e.stack : String(e)}`);
  }

  /** Log a message once per key (malformed input must not flood the log): see LogLimiter.once. */
  logOnce(key: string, msg: string): void { this.logger.once(key, msg); }
}
