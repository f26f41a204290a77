// RESOURCE_CREATE_BLOB on the userptr path (spec §3 steps 2–6): context check, range, flush + dedup (+3), pin, create.
import { EFAULT, EINVAL, ENOMEM, type Errno, isErr } from '../errno';
import type { IoctlCtx } from '../drm/dispatch';
import type { GemObject, BoKind } from '../drm/gem';
import { NOT_PRESENT, PAGE_SIZE, USER_ADDR_END, type ClientMemory, type Mapping } from '../memory/client-memory';
import type { MemEntry } from '../host/host';
import { VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, VIRTGPU_BLOB_MEM_GUEST, VIRTIO_GPU_CAPSET_HSAKMT } from '../abi/virtgpu';
import { Userptr } from './userptr';
import { unregister, syncRegistration } from './notifier';
import { KMALLOC_MAX } from '../virtgpu/execbuf';

/** v1's "already exists" return value, which the HSAKMT UMD relies on. */
export const USERPTR_EXISTS = 3;

export interface UserptrArgs { blobMem: number; blobFlags: number; blobId: bigint; size: bigint; userptr: bigint }
export interface UserptrOut { handle: number; resId: number; offset?: bigint }

const userptrKind: BoKind = {
  name: 'userptr',
  release(bo: GemObject): void {
    const u = bo.userptr;
    if (!u) return;
    u.deleted = true;
    bo.file.tree.remove(u);
    bo.file.device.pins -= u.npages;
    unregister(u); // last: it talks to a watcher of a process that may be gone
  },
};
export function isUserptr(bo: GemObject): boolean { return bo.kind === userptrKind; }

export function createUserptr(ctx: IoctlCtx, a: UserptrArgs): UserptrOut | Errno {
  const { file: f, client } = ctx;
  const dev = f.device;
  // 2. v1 only sets up userptr state for HSAKMT contexts [decision: EINVAL instead of hanging].
  if (!f.ctx || f.ctx.capsetId !== VIRTIO_GPU_CAPSET_HSAKMT) return EINVAL;
  // 3. Range (bigint: the u64 sum must not wrap).
  if (a.size === 0n) return EINVAL;
  if (a.userptr + a.size > BigInt(USER_ADDR_END)) return EFAULT;
  const uaddr = Number(a.userptr);
  const size = Number(a.size);
  const start = uaddr - (uaddr % PAGE_SIZE);
  const npages = Math.ceil(((uaddr % PAGE_SIZE) + size) / PAGE_SIZE);
  const last = start + npages * PAGE_SIZE - 1;
  // 4. Flush, then dedup against valid userptrs of this file (and this process) that contain the range.
  if (dev.mode === 'notifier') {
    dev.flush(f);
    const hit = findContaining(f.tree.overlapping(uaddr, uaddr + size - 1), client, uaddr, uaddr + size - 1);
    if (hit) {
      dev.stats.userptrsDeduped++;
      return { handle: hit.bo.handle, resId: hit.bo.resId, offset: BigInt(start - hit.origStart) };
    }
  }
  // 5. Pin every page.
  const rdonly = (a.blobFlags & VIRTGPU_BLOB_FLAG_USERPTR_RDONLY) !== 0;
  const pinned = pin(client.memory, start, npages, rdonly);
  if (isErr(pinned)) return pinned;
  // 6. Resource, handle, host commands, tree, watcher.
  const resId = dev.allocResId();
  const ctxId = a.blobMem === VIRTGPU_BLOB_MEM_GUEST ? 0 : f.ctx.id;
  dev.host.submit({ cmd: 'RESOURCE_CREATE_BLOB', resId, ctxId, blobMem: a.blobMem, blobFlags: a.blobFlags, blobId: a.blobId, size: a.size, entries: entriesOf(pinned.frames) });
  const bo = dev.addObject(f, userptrKind, resId, npages * PAGE_SIZE, a.blobMem, a.blobFlags);
  const u = new Userptr(bo, client, start, npages, rdonly, pinned.frames, pinned.shared);
  bo.userptr = u;
  dev.pins += npages;
  dev.stats.userptrsCreated++;
  if (dev.mode === 'notifier') {
    f.tree.insert(u);
    syncRegistration(u);
  }
  void last;
  return { handle: bo.handle, resId };
}

/** Dedup choice among containing valid userptrs: lowest start, then lowest last, then oldest. */
function findContaining(cands: Userptr[], client: IoctlCtx['client'], lo: number, hi: number): Userptr | null {
  let best: Userptr | null = null;
  for (const u of cands) {
    if (!u.valid || u.client !== client || u.start > lo || u.last < hi) continue;
    if (!best || u.start < best.start || (u.start === best.start && (u.last < best.last || (u.last === best.last && u.id < best.id)))) best = u;
  }
  return best;
}

/**
 * Spec §3.5: each page mapped, not PROT_NONE, writable unless RDONLY (a MAP_SHARED regular-file mapping cannot be
 * pinned writable); untouched pages are faulted in. Every failure is ENOMEM, as in v1.
 */
export function pin(mem: ClientMemory, start: number, npages: number, rdonly: boolean): { frames: Float64Array; shared: Uint8Array } | Errno {
  // v1 kvmalloc()s one page pointer per page: above INT_MAX bytes that fails before anything is pinned.
  if (npages * 8 > KMALLOC_MAX) return ENOMEM;
  const end = start + npages * PAGE_SIZE;
  const maps = mem.mappings(start, end);
  let at = start;
  for (const m of maps) {
    if (m.start > at) return ENOMEM; // hole
    if (!pinnable(m, rdonly)) return ENOMEM;
    at = Math.max(at, Math.min(m.end, end));
    if (at >= end) break;
  }
  if (at < end) return ENOMEM;
  const shared = new Uint8Array(npages);
  for (const m of maps) {
    if (!m.shared) continue;
    const s = Math.max(m.start, start), e = Math.min(m.end, end);
    for (let a = s; a < e; a += PAGE_SIZE) shared[(a - start) / PAGE_SIZE] = 1;
  }
  if (mem.populate(start, npages * PAGE_SIZE, !rdonly)) return ENOMEM;
  const frames = mem.frames(start, npages);
  for (let i = 0; i < npages; i++) if (frames[i] === NOT_PRESENT) return ENOMEM;
  return { frames, shared };
}

function pinnable(m: Mapping, rdonly: boolean): boolean {
  if (m.backing === 'special') return false;
  if (!m.read && !m.write && !m.exec) return false; // PROT_NONE
  if (!rdonly && !m.write) return false;
  if (!rdonly && m.shared && m.backing === 'file') return false;
  return true;
}

/** One {addr, length} entry per physically contiguous run of pages. */
export function entriesOf(frames: Float64Array): MemEntry[] {
  const r: MemEntry[] = [];
  for (let i = 0; i < frames.length; i++) {
    const addr = frames[i] * PAGE_SIZE;
    const prev = r[r.length - 1];
    if (prev && prev.addr + prev.length === addr) prev.length += PAGE_SIZE;
    else r.push({ addr, length: PAGE_SIZE });
  }
  return r;
}
