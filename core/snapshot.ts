// Read-only introspection of a device, for tests, the CLI and traces.
import type { Client } from './client';
import type { VirtgpuFile } from './virtgpu/fpriv';
import type { Stats, Vgdev } from './virtgpu/vgdev';

/** blobMemory/blobMemoryBytes: shared memory of mappable BOs the server holds; fences: submissions the host has not completed. */
export interface Counts { files: number; clients: number; handles: number; resources: number; pins: number; registrations: number; queued: number; contexts: number; blobMemory: number; blobMemoryBytes: number; fences: number }
export interface UserptrSnap { start: number; last: number; origStart: number; npages: number; op: string | null; queued: boolean; inRelease: boolean; valid: boolean; registered: [number, number] | null; rdonly: boolean }
/** A mappable BO's shared memory: its size and its first bytes (hex) as the host sees them. */
export interface MemorySnap { size: number; head: string }
export interface HandleSnap { handle: number; resId: number; kind: string; size: number; blobMem: number; blobFlags: number; blobHints: number; userptr?: UserptrSnap; memory?: MemorySnap }
export interface FileSnap { id: number; pid: number; clients: number[]; ctx: { id: number; capsetId: number; numRings: number; debugName: string } | null; handles: HandleSnap[]; queued: number }
/** What the host holds: bytes of client data (payload heads, list items) — back to its value once the clients are gone. */
export interface HostSnap { retainedBytes: number; counts?: Record<string, number>; objects?: unknown }
export interface Snapshot { uapi: string; mode: string; profile: string; counts: Counts; stats: Stats; host: HostSnap; files: FileSnap[]; clients: { pid: number; refs: number; registrations: number; pinnedVm: number }[] }

/** Bytes of a BO's memory a snapshot shows. */
const MEMORY_HEAD = 32;

export function snapshotDevice(d: Vgdev, openFiles: Iterable<VirtgpuFile>, liveClients: Iterable<Client>, counts: Counts): Snapshot {
  const files: FileSnap[] = [];
  for (const f of openFiles) {
    const handles: HandleSnap[] = [];
    for (const h of f.handles.sortedHandles()) {
      const bo = f.handles.get(h)!;
      const u = bo.userptr;
      const m = bo.memory;
      handles.push({
        handle: h, resId: bo.resId, kind: bo.kind.name, size: bo.size, blobMem: bo.blobMem, blobFlags: bo.blobFlags, blobHints: bo.blobHints,
        userptr: u ? { start: u.start, last: u.last, origStart: u.origStart, npages: u.npages, op: u.op, queued: u.queued, inRelease: u.inRelease, valid: u.valid, registered: u.regLast >= 0 ? [u.regStart, u.regLast] : null, rdonly: u.rdonly } : undefined,
        memory: m ? { size: m.size, head: Buffer.from(m.bytes.subarray(0, MEMORY_HEAD)).toString('hex') } : undefined,
      });
    }
    const ctx = f.priv.ctx;
    files.push({ id: f.id, pid: f.opener.pid, clients: [...f.clients].map((c) => c.pid), ctx: ctx ? { id: ctx.id, capsetId: ctx.capsetId, numRings: ctx.numRings, debugName: ctx.debugName } : null, handles, queued: f.priv.work.length });
  }
  const clients = [...liveClients].map((c) => ({ pid: c.pid, refs: c.refs, registrations: c.events.registrations(), pinnedVm: c.pinnedVm }));
  return { uapi: d.uapi.name, mode: d.mode, profile: d.profile.name, counts, stats: { ...d.stats }, host: { retainedBytes: d.host.retainedBytes?.() ?? 0, ...(d.host.counts ? { counts: d.host.counts() } : {}), ...(d.host.objects ? { objects: d.host.objects() } : {}) }, files, clients };
}
