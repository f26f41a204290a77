// RESOURCE_CREATE_BLOB on the userptr path (docs/semantics.md §3 steps 2–6): context check, range, flush + dedup (+3),
// pin, create; dedup, the notifier, the pin errno and the host's flags follow the uAPI revision (core/virtgpu/uapi.ts).
import { EFAULT, EINVAL, ENOMEM, type Errno, isErr } from '../errno';
import type { GemObject, BoKind } from '../drm/gem';
import type { Client } from '../client';
import { addrOf, u64Number, NOT_PRESENT, pageDown, pageUp, PAGE_SIZE, USER_ADDR_END, type ClientMemory, type Mapping } from '../memory/client-memory';
import type { MemEntry } from '../host/host';
import { KMALLOC_MAX } from '../abi/limits';
import { VIRTGPU_BLOB_MEM_GUEST, VIRTIO_GPU_CAPSET_HSAKMT } from '../abi/virtgpu';
import type { PinErrno } from '../virtgpu/uapi';
import type { PopulateRange } from '../drm/dispatch';
import type { Fpriv } from '../virtgpu/fpriv';
import type { Vgdev, VirtgpuCtx } from '../virtgpu/vgdev';
import { Userptr } from './userptr';
import { unregister, syncFile, syncRegistration } from './notifier';

/** v1's "already exists" return value, which the HSAKMT UMD relies on. */
export const USERPTR_EXISTS = 3;

/** A create the revision sent down the userptr path: the address it read and whether it asked for read-only pages. */
export interface UserptrArgs { blobMem: number; blobFlags: number; blobId: bigint; size: bigint; userptr: bigint; rdonly: boolean }
export interface UserptrOut { handle: number; resId: number; offset?: bigint }

const userptrKind: BoKind<Vgdev, Fpriv> = {
  name: 'userptr',
  release(dev, file, bo): void {
    const u = bo.userptr;
    if (!u) return;
    u.deleted = true;
    file.priv.tree.remove(u);
    dev.pins -= u.npages;
    u.client.pinnedVm -= u.accounted; // the revision's pinned_vm drops at unref
    unregister(u); // last: it talks to a watcher of a process that may be gone
  },
};
export function isUserptr(bo: GemObject): boolean { return bo.kind === userptrKind; }

/** Creates larger than this, or past the user address space, are traced without their mappings (a bogus range must not make the trace read all of maps, nor ask for an address no process has). */
const MAX_TRACED_MAPS_BYTES = 2 ** 40;

export function createUserptr(ctx: VirtgpuCtx, a: UserptrArgs): UserptrOut | Errno {
  const trace = ctx.dev.trace;
  if (!trace) return create(ctx, a);
  // Traced: the mappings the create saw over its pages (replay rebuilds them; the pin's verdict depends on them).
  const addr = Number(a.userptr), size = Number(a.size);
  const maps = size > 0 && size <= MAX_TRACED_MAPS_BYTES && addr + size <= USER_ADDR_END ? ctx.client.memory.mappings(pageDown(addr), pageUp(addr + size)) : undefined;
  const r = create(ctx, a);
  trace({ t: 'userptr', file: ctx.file.id, pid: ctx.client.pid, addr, size, rdonly: a.rdonly, result: isErr(r) ? r.code : r.offset === undefined ? 0 : USERPTR_EXISTS, handle: isErr(r) ? undefined : r.handle, ...(maps ? { maps } : {}) });
  return r;
}

function create(ctx: VirtgpuCtx, a: UserptrArgs): UserptrOut | Errno {
  const { dev, file: f, client } = ctx;
  // 2-3. Context and range.
  const r = userptrRange(f.priv, a);
  if (isErr(r)) return r;
  const { uaddr, size, start, npages } = r;
  // 4. Flush, then dedup against valid userptrs of this file (and this process) that contain the range.
  const { dedup, notifier } = dev.uapi;
  if (dedup) {
    if (notifier) syncFile(dev, f, client);
    const hit = findContaining(f.priv.tree.overlapping(uaddr, uaddr + size - 1), client, uaddr, uaddr + size - 1);
    if (hit) {
      dev.stats.userptrsDeduped++;
      return { handle: hit.bo.handle, resId: hit.bo.resId, offset: BigInt(start - hit.origStart) };
    }
  }
  // 5. Pin every page (v6 first counts them against the process's RLIMIT_MEMLOCK, unless it holds CAP_IPC_LOCK).
  const accounted = dev.uapi.memlock ? npages : 0;
  if (accounted) {
    const lim = client.memory.memlockLimits?.() ?? null;
    if (lim && !lim.capIpcLock && client.pinnedVm + npages > Math.floor(lim.limitBytes / PAGE_SIZE)) return ENOMEM;
  }
  const rdonly = a.rdonly;
  const pinned = pin(client.memory, start, npages, rdonly, dev.uapi.pinErrno);
  if (isErr(pinned)) return pinned;
  // 6. Resource, handle, host commands, tree, watcher.
  const resId = dev.allocResId();
  const ctxId = a.blobMem === VIRTGPU_BLOB_MEM_GUEST ? 0 : f.priv.ctx!.id;
  dev.host.submit({ cmd: 'RESOURCE_CREATE_BLOB', resId, ctxId, blobMem: a.blobMem, blobFlags: a.blobFlags & dev.uapi.wireFlags, blobId: a.blobId, size: a.size, entries: entriesOf(pinned.frames), userptr: uaddr });
  const bo = dev.addObject(f, userptrKind, resId, npages * PAGE_SIZE, a.blobMem, a.blobFlags);
  const u = new Userptr(dev.allocUserptrId(), bo, client, start, npages, rdonly, pinned.frames, pinned.shared);
  bo.userptr = u;
  dev.pins += npages;
  u.accounted = accounted;
  client.pinnedVm += accounted;
  dev.stats.userptrsCreated++;
  if (dedup) f.priv.tree.insert(u);
  if (notifier) syncRegistration(u);
  return { handle: bo.handle, resId };
}

const USER_ADDR_END_N = BigInt(USER_ADDR_END);

interface UserptrRange { uaddr: number; size: number; start: number; npages: number }

/** Steps 2-3: an HSAKMT context, then the range (bigint: the u64 sum must not wrap). */
function userptrRange(p: Fpriv, a: UserptrArgs): UserptrRange | Errno {
  // 2. v1 only sets up userptr state for HSAKMT contexts [decision: EINVAL instead of hanging].
  if (!p.ctx || p.ctx.capsetId !== VIRTIO_GPU_CAPSET_HSAKMT) return EINVAL;
  if (a.size === 0n) return EINVAL;
  if (a.userptr + a.size > USER_ADDR_END_N) return EFAULT;
  const uaddr = addrOf(a.userptr);
  const size = u64Number(a.size);
  const start = pageDown(uaddr);
  return { uaddr, size, start, npages: Math.ceil(((uaddr % PAGE_SIZE) + size) / PAGE_SIZE) };
}

/** Creates of at least this many pages get a preparation (64 MiB): below it, the whole create is one short step. */
export const PREPARE_MIN_PAGES = 16384;
/** Pages faulted in per preparation step (8 MiB: a few ms of page faults; the bound on what a big create adds to another client's ioctl). */
export const PREPARE_STEP_PAGES = 2048;

/**
 * Step 5's faulting-in of a big userptr range, cut into bounded steps that a transport runs between other
 * requests before it issues the create itself (the create then finds the pages present and only reads frames).
 * Nothing of core's state changes here: the create that follows takes every decision (dedup, checks, pin) as if
 * no preparation had run; a page that changed meanwhile is faulted in again or fails the create as usual.
 */
export class PinPreparation {
  private next = 0;
  constructor(private readonly mem: ClientMemory, readonly start: number, readonly npages: number, private readonly write: boolean) {}
  get done(): boolean { return this.next >= this.npages; }
  /** Fault in the next PREPARE_STEP_PAGES pages; true when nothing is left. A failure ends the preparation early. */
  step(): boolean {
    if (this.done) return true;
    const n = Math.min(PREPARE_STEP_PAGES, this.npages - this.next);
    const err = this.mem.populate(this.start + this.next * PAGE_SIZE, n * PAGE_SIZE, this.write);
    this.next = err ? this.npages : this.next + n;
    return this.done;
  }
}

/** A preparation for a create that would fault in at least PREPARE_MIN_PAGES pinnable pages; null otherwise. */
export function preparePin(ctx: VirtgpuCtx, a: UserptrArgs): PinPreparation | null {
  const r = userptrRange(ctx.file.priv, a);
  if (isErr(r) || r.npages < PREPARE_MIN_PAGES) return null;
  if (isErr(pinnableRange(ctx.client.memory, r.start, r.npages, a.rdonly, 'enomem'))) return null;
  return new PinPreparation(ctx.client.memory, r.start, r.npages, !a.rdonly);
}

/** The pages a create would fault in (its whole page range), for a client that can fault them in itself; null when it would fail first. */
export function populateRange(ctx: VirtgpuCtx, a: UserptrArgs): PopulateRange | null {
  const r = userptrRange(ctx.file.priv, a);
  return isErr(r) ? null : { addr: r.start, len: r.npages * PAGE_SIZE, write: !a.rdonly };
}

/** Dedup choice among containing valid userptrs: lowest start, then lowest last, then oldest. */
function findContaining(cands: Userptr[], client: Client, lo: number, hi: number): Userptr | null {
  let best: Userptr | null = null;
  for (const u of cands) {
    if (!u.valid || u.client !== client || u.start > lo || u.last < hi) continue;
    if (!best || u.start < best.start || (u.start === best.start && (u.last < best.last || (u.last === best.last && u.id < best.id)))) best = u;
  }
  return best;
}

/**
 * docs/semantics.md §3.5: each page mapped, not PROT_NONE, writable unless RDONLY (a MAP_SHARED regular-file mapping
 * cannot be pinned writable); untouched pages are faulted in. A page that cannot be pinned fails with `how`'s errno:
 * ENOMEM for every failure (v1, v2), or the pin's own, EFAULT (v3 and later).
 */
export function pin(mem: ClientMemory, start: number, npages: number, rdonly: boolean, how: PinErrno): { frames: Float64Array; shared: Uint8Array | null } | Errno {
  const end = start + npages * PAGE_SIZE;
  const maps = pinnableRange(mem, start, npages, rdonly, how);
  if (isErr(maps)) return maps;
  let shared: Uint8Array | null = null; // allocated only when some page is shared memory
  for (const m of maps) {
    if (!m.shared || m.end <= start || m.start >= end) continue;
    shared ??= new Uint8Array(npages);
    const s = Math.max(m.start, start), e = Math.min(m.end, end);
    for (let a = s; a < e; a += PAGE_SIZE) shared[(a - start) / PAGE_SIZE] = 1;
  }
  const fail = pinFailure(how);
  if (mem.populate(start, npages * PAGE_SIZE, !rdonly)) return fail;
  const frames = mem.frames(start, npages);
  for (let i = 0; i < npages; i++) if (frames[i] === NOT_PRESENT) return fail;
  return { frames, shared };
}

/** What a page that cannot be pinned makes the create return. */
const pinFailure = (how: PinErrno): Errno => (how === 'enomem' ? ENOMEM : EFAULT);

/** The mappings of [start, start + npages pages) when every page can be pinned (docs/semantics.md §3.5), else the pin's failure. */
function pinnableRange(mem: ClientMemory, start: number, npages: number, rdonly: boolean, how: PinErrno): Mapping[] | Errno {
  // v1 kvmalloc()s one page pointer per page: above INT_MAX bytes that fails before anything is pinned.
  if (npages * 8 > KMALLOC_MAX) return ENOMEM;
  const end = start + npages * PAGE_SIZE;
  const maps = mem.mappings(start, end);
  const fail = pinFailure(how);
  let at = start;
  for (const m of maps) {
    if (m.start > at) return fail; // hole
    if (!pinnable(m, rdonly)) return fail;
    at = Math.max(at, Math.min(m.end, end));
    if (at >= end) break;
  }
  return at < end ? fail : maps;
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
