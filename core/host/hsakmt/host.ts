// An emulated HSAKMT host (capset 8 contexts): answers the guest library's ccmds from EXECBUFFER in the shmem blob
// (HOST3D, blob_id 0) — reply at rsp_mem_offset + rsp_off, then seqno, before the submission's fence signals — and
// keeps its own objects (registrations, GPU mappings, allocations) keyed by resource id, dropped at RESOURCE_UNREF.
// Layouts: ./abi.ts. Bad guest input gets a non-zero ret (and async_error), is logged once per kind, never throws.
import type { Host, HostClient, HostCommand } from '../host';
import type { BlobMemory } from '../../memory/blob-memory';
import { pageDown, pageUp, PAGE_SIZE, USER_ADDR_END } from '../../memory/client-memory';
import { VIRTGPU_BLOB_MEM_HOST3D, VIRTIO_GPU_CAPSET_HSAKMT } from '../../abi/virtgpu';
import { view, type Struct } from '../../abi/layout';
import * as A from './abi';
import { findVmHole, VM_SIZE } from './vm-range';

/** One answered ccmd, for the trace: decoded request fields and reply. */
export type CcmdEvent = {
  ctxId: number; name: string; seqno: number; len: number; rspOff: number;
  fields: Record<string, unknown>; ret: number; reply: Record<string, unknown>;
  /** A protocol error (bad len, rsp_off outside the area, unknown cmd/type, foreign res_id …), or an injected failure. */
  error?: string;
};

export interface HsakmtHostOptions {
  /** Log a line once per key (the server's LogLimiter.once). */
  log?: (key: string, msg: string) => void;
  /** Every ccmd answered (the trace sink). */
  onCcmd?: (ev: CcmdEvent) => void;
  /** Fault injection: ccmd names (`NOP`, `QUERY_INFO/OPEN_KFD`, `MEMORY/ALLOC`, …) answered HSAKMT_STATUS_ERROR without acting. */
  fail?: Iterable<string>;
  /** Fault injection: complete a fenced submission later (the composition root's timer); default at once. */
  delayFence?: (done: () => void) => void;
  /** What AVAIL_MEM reports before allocations (default 8 GiB). */
  memoryBytes?: number;
}

/** The host's view of a resource of an HSAKMT context. */
interface Res { resId: number; ctxId: number; blobMem: number; blobId: bigint; size: number; userptr?: number; attached: Set<number> }
interface Registration { resId: number; addr: number; size: number; flags: number }
interface GpuMapping { resId: number; addr: number; size: number }
interface Allocation { blobId: bigint; addr: number; size: number; flags: number; node: number; resId: number }

class Ctx {
  client: HostClient | null = null;
  gen: A.Generation | null = null;
  shmemResId = 0;
  shmem: BlobMemory | null = null;
  vm: { start: number; size: number } | null = null;
  vmNext = 0;
  asyncErrors = 0;
  /** Requests that came before the shmem existed (nowhere to answer). */
  lost = 0;
  readonly regs = new Map<number, Map<number, Registration>>();
  readonly regByAddr = new Map<number, Registration>();
  readonly gpu = new Map<number, GpuMapping>();
  /** GPU mapping addresses by resource id (unref drops them without a scan). */
  readonly gpuByRes = new Map<number, Set<number>>();
  readonly allocs = new Map<bigint, Allocation>();
  readonly allocByAddr = new Map<number, Allocation>();
  readonly allocByRes = new Map<number, Allocation>();
  allocated = 0;
  constructor(readonly id: number) {}
}

const HDR = A.vhsakmt_ccmd_req.size;
const RSP_HDR = A.vhsakmt_ccmd_rsp.size;
type Hdr = ReturnType<typeof A.vhsakmt_ccmd_req.decode>;
/** A handler's answer: status and payload fields (named as in the reply table). */
interface Answer { ret: number; payload?: Record<string, unknown>; error?: string }
const ok = (payload?: Record<string, unknown>): Answer => ({ ret: A.HSAKMT_STATUS_SUCCESS, payload });
const fail = (ret: number, error?: string): Answer => ({ ret, error });

export class HsakmtHost implements Host {
  private readonly ctxs = new Map<number, Ctx>();
  private readonly res = new Map<number, Res>();
  private fenceDone: (id: number) => void = () => undefined;
  private readonly failSet: Set<string>;
  private readonly memoryBytes: number;

  constructor(private readonly o: HsakmtHostOptions = {}) {
    this.failSet = new Set(o.fail ?? []);
    this.memoryBytes = o.memoryBytes ?? 8 * 2 ** 30;
  }

  attach(fenceDone: (id: number) => void): void { this.fenceDone = fenceDone; }
  attachContext(ctxId: number, client: HostClient): void { const c = this.ctxs.get(ctxId); if (c) c.client = client; }

  attachMemory(resId: number, memory: BlobMemory): void {
    const r = this.res.get(resId);
    const c = r ? this.ctxs.get(r.ctxId) : undefined;
    if (!r || !c || r.blobMem !== VIRTGPU_BLOB_MEM_HOST3D || r.blobId !== 0n || c.shmem) return;
    if (memory.size < A.RSP_MEM_OFFSET + RSP_HDR) { this.logOnce('shmem-small', `ctx ${c.id}: shmem of ${memory.size} bytes has no response area (ignored)`); return; }
    c.shmem = memory;
    c.shmemResId = resId;
    // Before the guest can map it: the response area's offset.
    A.vhsakmt_shmem.encode({ seqno: 0, rsp_mem_offset: A.RSP_MEM_OFFSET, async_error: 0, global_faults: 0 }, memory.bytes);
  }

  submit(c: HostCommand): void {
    switch (c.cmd) {
      case 'CTX_CREATE': if (c.contextInit === VIRTIO_GPU_CAPSET_HSAKMT) this.ctxs.set(c.ctxId, new Ctx(c.ctxId)); return;
      case 'CTX_DESTROY': this.ctxs.delete(c.ctxId); return;
      case 'RESOURCE_CREATE_BLOB': {
        const r: Res = { resId: c.resId, ctxId: c.ctxId, blobMem: c.blobMem, blobId: c.blobId, size: Number(c.size), userptr: c.userptr, attached: new Set() };
        this.res.set(c.resId, r);
        const ctx = this.ctxs.get(c.ctxId);
        const a = ctx && c.blobId !== 0n ? ctx.allocs.get(c.blobId) : undefined;
        if (a && a.resId === 0 && c.blobMem === VIRTGPU_BLOB_MEM_HOST3D) { a.resId = c.resId; ctx!.allocByRes.set(c.resId, a); } // AllocMemory's blob
        return;
      }
      case 'CTX_ATTACH_RESOURCE': {
        let r = this.res.get(c.resId);
        if (!r) this.res.set(c.resId, (r = { resId: c.resId, ctxId: c.ctxId, blobMem: 0, blobId: 0n, size: 0, attached: new Set() }));
        r.attached.add(c.ctxId);
        return;
      }
      case 'CTX_DETACH_RESOURCE': this.res.get(c.resId)?.attached.delete(c.ctxId); return;
      case 'RESOURCE_UNMAP_BLOB': this.dropShmem(c.resId); return;
      case 'RESOURCE_UNREF': this.unref(c.resId); return;
      case 'SUBMIT_3D': {
        const ctx = this.ctxs.get(c.ctxId);
        if (ctx) this.process(ctx, c.data);
        const id = c.fenceId;
        if (id === undefined) return;
        if (this.o.delayFence) this.o.delayFence(() => this.fenceDone(id));
        else this.fenceDone(id);
        return;
      }
      default: return;
    }
  }

  counts(): Record<string, number> {
    let registrations = 0, allocations = 0, gpuMappings = 0;
    for (const c of this.ctxs.values()) { registrations += c.regByAddr.size; allocations += c.allocs.size; gpuMappings += c.gpu.size; }
    return { contexts: this.ctxs.size, resources: this.res.size, registrations, gpuMappings, allocations };
  }

  objects(): unknown {
    return [...this.ctxs.values()].map((c) => ({
      ctxId: c.id, pid: c.client?.pid ?? null, generation: c.gen, shmemResId: c.shmemResId || null, asyncErrors: c.asyncErrors, lostBeforeShmem: c.lost,
      vm: c.vm ? { start: c.vm.start, size: c.vm.size } : null,
      registrations: [...c.regByAddr.values()].map((r) => ({ ...r })),
      gpuMappings: [...c.gpu.values()].map((g) => ({ ...g })),
      allocations: [...c.allocs.values()].map((a) => ({ ...a, blobId: Number(a.blobId) })),
    }));
  }

  // ---- resources ----

  private dropShmem(resId: number): void {
    const r = this.res.get(resId);
    const c = r ? this.ctxs.get(r.ctxId) : undefined;
    if (c && c.shmemResId === resId) { c.shmem = null; c.shmemResId = 0; }
  }

  /** The guest driver let go of the resource: every host object keyed by it goes too (as on a real host). */
  private unref(resId: number): void {
    const r = this.res.get(resId);
    if (!r) return;
    this.dropShmem(resId);
    this.res.delete(resId);
    // Only the contexts that knew it (created in, attached to): nothing here scans live objects.
    for (const id of new Set([r.ctxId, ...r.attached])) {
      const c = this.ctxs.get(id);
      if (!c) continue;
      const regs = c.regs.get(resId);
      if (regs) { for (const g of regs.values()) c.regByAddr.delete(g.addr); c.regs.delete(resId); }
      for (const addr of c.gpuByRes.get(resId) ?? []) c.gpu.delete(addr);
      c.gpuByRes.delete(resId);
      const a = c.allocByRes.get(resId);
      if (a) this.freeAlloc(c, a);
    }
  }

  private freeAlloc(c: Ctx, a: Allocation): void {
    c.allocs.delete(a.blobId);
    c.allocByAddr.delete(a.addr);
    c.allocByRes.delete(a.resId);
    c.allocated -= a.size;
  }

  private addGpuMapping(c: Ctx, g: GpuMapping): void {
    this.dropGpuMapping(c, g.addr);
    c.gpu.set(g.addr, g);
    let s = c.gpuByRes.get(g.resId);
    if (!s) c.gpuByRes.set(g.resId, (s = new Set()));
    s.add(g.addr);
  }

  private dropGpuMapping(c: Ctx, addr: number): boolean {
    const g = c.gpu.get(addr);
    if (!g) return false;
    c.gpu.delete(addr);
    const s = c.gpuByRes.get(g.resId);
    s?.delete(addr);
    if (s && s.size === 0) c.gpuByRes.delete(g.resId);
    return true;
  }

  // ---- the command channel ----

  /** A request stream: ccmds in order until the end or a malformed header (the rest cannot be framed). */
  private process(ctx: Ctx, data: Uint8Array): void {
    if (!ctx.shmem || ctx.shmem.bytes.length === 0) {
      ctx.lost++;
      this.logOnce('no-shmem', `ctx ${ctx.id}: a request before the shmem blob exists (nowhere to answer; the fence still signals)`);
      return;
    }
    let off = 0;
    while (off < data.length) {
      if (data.length - off < HDR) { this.protocolError(ctx, 'truncated', `${data.length - off} trailing bytes, shorter than a ccmd header`); return; }
      const h = A.vhsakmt_ccmd_req.decode(data, off);
      if (h.len < HDR || h.len > data.length - off || h.len % 4 !== 0) {
        this.finish(ctx, h, CCMD_NAME(h.cmd), {}, fail(A.HSAKMT_STATUS_INVALID_PARAMETER, 'bad-len'), null, RSP_HDR);
        return;
      }
      this.guarded(ctx, h, data.subarray(off, off + h.len));
      off += h.len;
    }
  }

  /** One ccmd; a bug below is answered and logged, never thrown across the host. */
  private guarded(ctx: Ctx, h: Hdr, req: Uint8Array): void {
    try { this.one(ctx, h, req); } catch (e) {
      this.logOnce(`bug:${String(e)}`, `BUG answering ccmd ${h.cmd}: ${e instanceof Error ? e.stack : String(e)}`);
      this.finish(ctx, h, CCMD_NAME(h.cmd), {}, fail(A.HSAKMT_STATUS_ERROR, 'bug'), null, RSP_HDR);
    }
  }

  private one(ctx: Ctx, h: Hdr, req: Uint8Array): void {
    switch (h.cmd) {
      case A.VHSAKMT_CCMD_NOP: return this.finish(ctx, h, 'NOP', {}, ok(), A.rsp_ret, A.NOP_RSP_SIZE);
      case A.VHSAKMT_CCMD_QUERY_INFO: return this.queryInfo(ctx, h, req);
      case A.VHSAKMT_CCMD_MEMORY: return this.memory(ctx, h, req);
      default: return this.finish(ctx, h, CCMD_NAME(h.cmd), {}, fail(A.HSAKMT_STATUS_NOT_SUPPORTED, 'unknown-cmd'), null, RSP_HDR);
    }
  }

  private queryInfo(ctx: Ctx, h: Hdr, req: Uint8Array): void {
    const L = A.vhsakmt_ccmd_query_info_req;
    if (h.len !== L.size) return this.finish(ctx, h, 'QUERY_INFO', {}, fail(A.HSAKMT_STATUS_INVALID_PARAMETER, 'bad-len'), A.vhsakmt_ccmd_query_info_rsp, A.QUERY_INFO_RSP_SIZE);
    const q = L.decode(req);
    const fields = { type: q.type, cur_vm_start: q.cur_vm_start };
    if (q.type !== A.VHSAKMT_CCMD_QUERY_OPEN_KFD) return this.finish(ctx, h, `QUERY_INFO/${q.type}`, fields, fail(A.HSAKMT_STATUS_NOT_SUPPORTED, 'unknown-type'), A.vhsakmt_ccmd_query_info_rsp, A.QUERY_INFO_RSP_SIZE);
    const name = 'QUERY_INFO/OPEN_KFD';
    const a = this.injected(name) ?? this.openKfd(ctx);
    this.finish(ctx, h, name, fields, a, A.vhsakmt_ccmd_query_info_rsp, A.QUERY_INFO_RSP_SIZE);
  }

  /** The VM range: a hole in this client's address space as it is now (the library maps over it MAP_FIXED). */
  private openKfd(ctx: Ctx): Answer {
    if (!ctx.vm) {
      if (!ctx.client) return fail(A.HSAKMT_STATUS_ERROR);
      const start = findVmHole(ctx.client.memory.mappings(0, USER_ADDR_END));
      if (start === null) return fail(A.HSAKMT_STATUS_NO_MEMORY);
      ctx.vm = { start, size: VM_SIZE };
      ctx.vmNext = start;
    }
    return ok({ vm_start: BigInt(ctx.vm.start), vm_size: BigInt(ctx.vm.size) });
  }

  /** MEMORY: the generation (told by the first fixed-size request's len), the type, then its handler. */
  private memory(ctx: Ctx, h: Hdr, req: Uint8Array): void {
    const g = this.generationOf(ctx, req, h.len);
    const rspSize = A.MEMORY_RSP_SIZE[g?.gen ?? ctx.gen ?? 80];
    if (!g) return this.finish(ctx, h, 'MEMORY', {}, fail(A.HSAKMT_STATUS_INVALID_PARAMETER, 'bad-len'), A.rsp_ret, rspSize);
    const tail = A.vhsakmt_ccmd_memory_req[g.gen].decode(req);
    const mt = A.MEMORY_TYPE_BY_NUM.get(tail.type);
    if (!mt) return this.finish(ctx, h, `MEMORY/${tail.type}`, {}, fail(A.HSAKMT_STATUS_NOT_SUPPORTED, 'unknown-type'), A.rsp_ret, rspSize);
    const name = `MEMORY/${mt.name}`;
    const body = mt.body[g.gen];
    if (!body) return this.finish(ctx, h, name, { res_id: tail.res_id }, fail(A.HSAKMT_STATUS_NOT_SUPPORTED, 'layout-not-known'), mt.rsp, rspSize);
    const nodes = mt.type === A.MEMORY_MAP_TO_GPU_NODES;
    if (g.variable !== nodes) return this.finish(ctx, h, name, {}, fail(A.HSAKMT_STATUS_INVALID_PARAMETER, 'bad-len'), mt.rsp, rspSize);
    const b = body.decode(req, A.UNION_AT) as Record<string, unknown>;
    const fields: Record<string, unknown> = { ...b, blob_id: tail.blob_id, res_id: tail.res_id };
    if (nodes) {
      const n = Number(b.NumberOfNodes);
      if (n > A.MAX_NODES || h.len !== align8(A.NODES_AT + 4 * n)) return this.finish(ctx, h, name, fields, fail(A.HSAKMT_STATUS_INVALID_PARAMETER, 'bad-len'), mt.rsp, rspSize);
      const dv = view(req);
      fields.nodes = Array.from({ length: n }, (_, i) => dv.getUint32(A.NODES_AT + 4 * i, true));
    }
    if (g.fresh) ctx.gen = g.gen;
    const a = this.injected(name) ?? this.memoryOp(ctx, mt.type, g.gen, fields);
    this.finish(ctx, h, name, fields, a, mt.rsp, rspSize);
  }

  /**
   * The generation a MEMORY request is read with: the context's, or (not known yet) its own len when that is one of
   * the fixed sizes; a longer request of the 80-byte generation may be MAP_TO_GPU_NODES (`variable`). null: no
   * generation reads it.
   */
  private generationOf(ctx: Ctx, req: Uint8Array, len: number): { gen: A.Generation; variable: boolean; fresh: boolean } | null {
    const typeAt = (gen: A.Generation): number => A.vhsakmt_ccmd_memory_req[gen].decode(req).type;
    const fixed = (gen: A.Generation, fresh: boolean) => {
      const t = typeAt(gen);
      // MAP_TO_GPU_NODES with no node is 80 bytes long, yet tells nothing: it never fixes the generation.
      return { gen, variable: t === A.MEMORY_MAP_TO_GPU_NODES, fresh: fresh && A.MEMORY_TYPE_BY_NUM.has(t) && t !== A.MEMORY_MAP_TO_GPU_NODES };
    };
    const known = ctx.gen;
    if (known) {
      if (len === known) return fixed(known, false);
      if (known === 80 && len > 80) return { gen: 80, variable: true, fresh: false };
      if (known === 312 && len > 312 && typeAt(312) === A.MEMORY_MAP_TO_GPU_NODES) return { gen: 312, variable: true, fresh: false };
      return null;
    }
    if (len === 80 || len === 312) return fixed(len, true);
    if (len > 80) return { gen: 80, variable: true, fresh: false };
    return null;
  }

  private memoryOp(ctx: Ctx, type: number, gen: A.Generation, f: Record<string, unknown>): Answer {
    const addr = Number(f.MemoryAddress ?? 0n);
    switch (type) {
      case A.MEMORY_ALLOC: return this.alloc(ctx, gen, f);
      case A.MEMORY_FREE: return ok(); // the host learns of a free from the resource's unref
      case A.MEMORY_AVAIL_MEM: return ok({ available_bytes: BigInt(Math.max(0, this.memoryBytes - ctx.allocated)) });
      case A.MEMORY_MAP_MEM_TO_GPU:
      case A.MEMORY_MAP_TO_GPU_NODES: {
        const resId = this.backing(ctx, addr);
        if (resId === null) return fail(A.HSAKMT_STATUS_INVALID_PARAMETER);
        this.addGpuMapping(ctx, { resId, addr, size: Number(f.MemorySizeInBytes) });
        return ok({ alternate_vagpu: BigInt(addr) }); // GPU VA = CPU VA, in-page offset kept
      }
      case A.MEMORY_UNMAP_TO_GPU:
        if (this.dropGpuMapping(ctx, addr)) return ok();
        return this.backing(ctx, addr) === null ? fail(A.HSAKMT_STATUS_INVALID_PARAMETER) : ok();
      case A.MEMORY_MAP_USERPTR: {
        const r = this.own(ctx, f.res_id as number);
        if (!r || r.userptr === undefined) return fail(A.HSAKMT_STATUS_INVALID_HANDLE, this.foreign(ctx, f.res_id as number));
        const { base, end } = userptrPages(r.userptr, r.size);
        return ok({ userptr_handle: BigInt(base), npfns: (end - base) / PAGE_SIZE }); // the host address of its first page
      }
      case A.MEMORY_REG_MEM_WITH_FLAG: {
        const r = this.own(ctx, f.res_id as number);
        if (!r || r.userptr === undefined) return fail(A.HSAKMT_STATUS_INVALID_HANDLE, this.foreign(ctx, f.res_id as number));
        const size = Number(f.MemorySizeInBytes);
        const { base, end } = userptrPages(r.userptr, r.size);
        if (size === 0 || addr < base || addr + size > end) return fail(A.HSAKMT_STATUS_INVALID_PARAMETER);
        const reg: Registration = { resId: r.resId, addr, size, flags: f.MemFlags as number };
        let m = ctx.regs.get(r.resId);
        if (!m) ctx.regs.set(r.resId, (m = new Map()));
        const old = ctx.regByAddr.get(addr);
        if (old) { const om = ctx.regs.get(old.resId); om?.delete(addr); if (om && om.size === 0 && om !== m) ctx.regs.delete(old.resId); }
        m.set(addr, reg);
        ctx.regByAddr.set(addr, reg);
        return ok();
      }
      case A.MEMORY_DEREG_MEM: {
        const r = this.own(ctx, f.res_id as number);
        if (!r) return fail(A.HSAKMT_STATUS_INVALID_HANDLE, this.foreign(ctx, f.res_id as number));
        const m = ctx.regs.get(r.resId);
        if (!m) return fail(A.HSAKMT_STATUS_INVALID_HANDLE);
        for (const g of m.values()) ctx.regByAddr.delete(g.addr);
        ctx.regs.delete(r.resId);
        return ok();
      }
      default: return fail(A.HSAKMT_STATUS_NOT_SUPPORTED, 'unknown-type');
    }
  }

  private alloc(ctx: Ctx, gen: A.Generation, f: Record<string, unknown>): Answer {
    if (!ctx.vm) return fail(A.HSAKMT_STATUS_ERROR); // OPEN_KFD first
    const size = Number(f.SizeInBytes);
    const blobId = f.blob_id as bigint;
    const align = gen === 312 && f.Alignment ? Number(f.Alignment) : PAGE_SIZE;
    if (size === 0 || blobId === 0n || align & (align - 1) || ctx.allocs.has(blobId)) return fail(A.HSAKMT_STATUS_INVALID_PARAMETER);
    const addr = Math.ceil(ctx.vmNext / Math.max(align, PAGE_SIZE)) * Math.max(align, PAGE_SIZE);
    if (addr + pageUp(size) > ctx.vm.start + ctx.vm.size || ctx.allocated + size > this.memoryBytes) return fail(A.HSAKMT_STATUS_NO_MEMORY);
    ctx.vmNext = addr + pageUp(size);
    const a: Allocation = { blobId, addr, size, flags: f.MemFlags as number, node: f.PreferredNode as number, resId: 0 };
    ctx.allocs.set(blobId, a);
    ctx.allocByAddr.set(addr, a);
    ctx.allocated += size;
    return ok({ memory_handle: BigInt(addr) });
  }

  /** The resource behind a GPU mapping's address: a registration (exact, or at its page base) or an allocation. */
  private backing(ctx: Ctx, addr: number): number | null {
    const r = ctx.regByAddr.get(addr) ?? ctx.regByAddr.get(pageDown(addr));
    if (r) return r.resId;
    const a = ctx.allocByAddr.get(addr);
    return a ? a.resId : null;
  }

  /** Resource res_id when it is attached to this context (the guest driver attached it), else null. */
  private own(ctx: Ctx, resId: number): Res | null {
    const r = this.res.get(resId);
    return r && r.attached.has(ctx.id) ? r : null;
  }

  /**
   * 'foreign-res' (a protocol error) when res_id is a live resource of another context; a resource that is gone (the
   * guest closed it, or the notifier deleted it) is only answered an error.
   */
  private foreign(ctx: Ctx, resId: number): string | undefined {
    const r = this.res.get(resId);
    return r && !r.attached.has(ctx.id) ? 'foreign-res' : undefined;
  }

  private injected(name: string): Answer | null {
    return this.failSet.has(name) ? fail(A.HSAKMT_STATUS_ERROR, 'injected') : null;
  }

  /**
   * Answer: the reply (min(host size, the guest's preset len) bytes; its len left as preset) at rsp_mem_offset +
   * rsp_off, then seqno; protocol errors also count in async_error. Nothing is written outside the response area.
   */
  private finish(ctx: Ctx, h: Hdr, name: string, fields: Record<string, unknown>, a: Answer, rsp: Struct<any> | null, hostSize: number): void {
    const shm = ctx.shmem!.bytes;
    const area = shm.length - A.RSP_MEM_OFFSET;
    let error = a.error && a.error !== 'injected' ? a.error : undefined;
    const value = { ...(a.payload ?? {}), hdr: { len: 0, ret: a.ret } };
    const out = new Uint8Array(Math.max(hostSize, rsp?.size ?? RSP_HDR));
    (rsp ?? A.rsp_ret).encode(value, out);
    if (h.rsp_off > area - RSP_HDR) error ??= 'rsp-off';
    else {
      const at = A.RSP_MEM_OFFSET + h.rsp_off;
      const preset = view(shm).getUint32(at, true);
      if (preset < RSP_HDR) error ??= 'rsp-len';
      else shm.set(out.subarray(4, Math.min(hostSize, preset, area - h.rsp_off)), at + 4);
    }
    if (error) {
      this.protocolError(ctx, error, `${name} seqno ${h.seqno} len ${h.len} rsp_off ${h.rsp_off}`);
      if (a.ret === A.HSAKMT_STATUS_SUCCESS) a = { ...a, ret: A.HSAKMT_STATUS_ERROR };
    }
    A.vhsakmt_shmem.encode({ ...A.vhsakmt_shmem.decode(shm), seqno: h.seqno }, shm);
    this.o.onCcmd?.({ ctxId: ctx.id, name, seqno: h.seqno, len: h.len, rspOff: h.rsp_off, fields: hexed(fields), ret: a.ret, reply: hexed(a.payload ?? {}), error: error ?? (a.error === 'injected' ? 'injected' : undefined) });
  }

  /** Counted in the shmem's async_error (when there is a shmem) and logged once per kind. */
  private protocolError(ctx: Ctx, kind: string, what: string): void {
    ctx.asyncErrors++;
    const shm = ctx.shmem?.bytes;
    if (shm && shm.length >= A.RSP_MEM_OFFSET) view(shm).setUint32(A.vhsakmt_shmem.offsetOf('async_error'), ctx.asyncErrors >>> 0, true);
    this.logOnce(kind, `ctx ${ctx.id}: ${KIND_TEXT[kind] ?? kind}: ${what} (answered a non-zero ret; counted in async_error; further ones not logged)`);
  }

  private logOnce(kind: string, msg: string): void { this.o.log?.(`hsakmt:${kind}`, `hsakmt host: ${msg}`); }
}

const KIND_TEXT: Readonly<Record<string, string>> = {
  'bad-len': 'a ccmd with a wrong len', 'rsp-off': 'rsp_off outside the response area', 'rsp-len': 'a reply slot whose preset len is shorter than a reply header',
  'unknown-cmd': 'an unknown ccmd', 'unknown-type': 'an unknown ccmd type', 'foreign-res': 'a res_id that is not this context\'s',
  truncated: 'a request stream that ends inside a ccmd header', 'layout-not-known': 'a request whose layout in this generation is not known',
};
const CCMD_NAME = (cmd: number): string => A.CCMD_NAMES[cmd] ?? `CCMD_${cmd}`;
/** The pages of a userptr created at `addr` with `size` bytes: [base, end). */
const userptrPages = (addr: number, size: number): { base: number; end: number } => ({ base: pageDown(addr), end: pageUp(addr + size) });
/** Fields for the trace: u64 values (addresses, sizes) as hex strings, as layout dumps show them. */
const hexed = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? `0x${v.toString(16)}` : v]));
const align8 = (n: number): number => Math.ceil(n / A.RSP_ALIGN) * A.RSP_ALIGN;
