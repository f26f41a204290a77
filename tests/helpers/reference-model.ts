// A brute-force reference model of the userptr semantics (docs/semantics.md: §2 handles/res ids/contexts, §3 create,
// §4 events + invalidate, §5 work list + worker + ordering, §6 split, §8 host log), written separately from core:
// it imports nothing from core but types, and uses the SimProcess only as the machine both sides observe
// (mappings and page frames). Plain arrays and linear scans everywhere: clarity over speed.
//
// Core's own decisions where the spec leaves a choice are mirrored on purpose (most are listed in the README's
// "Decisions where the spec is silent"):
//  (a) dedup choice: lowest start, then lowest last, then oldest;
//  (b) several evict events before the worker → evict range = hull;
//  (c) an UPDATE that replaced a pending EVICT also runs the evict check;
//  (d) EVICT page rule (not present | removed && (private | frame differs) | frame differs && !exact), silent
//      update of unchanged pages, marks cleared in the range;
//  (e) a change → the evict range is treated like an UNMAP, queued and run in the same flush;
//  (f) dedup/events only consider userptrs of the same process in that file;
//  (g) which memory operation reports which event (uffd: only events overlapping a registered range).
// Ordering detail mirrored from core's interval tree: one event invalidates the overlapping userptrs of a file in
// (start, last) order, ties in the order they were (re)inserted into the tree (creation or last split).
import type { SimProcess } from '../../core/testing';

export const PAGE = 4096;
export const USER_END = 0x7ffffffff000;
export const EXISTS = 3;
const CAPSET_HSAKMT = 8;
const BLOB_GUEST = 1;
const FLAG_RDONLY = 0x10;

/**
 * What the model needs to know of a kernel revision, written by hand from docs/uapi-revisions.md (never from core's
 * table): which struct the driver sends, whether a userptr can be created at all, dedup, notifier, the errno of a
 * failed pin, whether read-only userptrs exist, and the blob_flags the host's command keeps.
 */
export interface ModelRev {
  name: string;
  struct: 'v1' | 'v3' | 'v6' | '72' | 'hints';
  userptr: boolean; dedup: boolean; notifier: boolean; pinErrno: 'ENOMEM' | 'EFAULT'; rdonly: boolean; wire: number;
}
const V1_WIRE = 0x1f, V3_WIRE = 0x0f, UPSTREAM = 0x07;
export const MODEL_REVS: Record<string, ModelRev> = {
  v1: { name: 'v1', struct: 'v1', userptr: true, dedup: true, notifier: true, pinErrno: 'ENOMEM', rdonly: true, wire: V1_WIRE },
  v2: { name: 'v2', struct: 'v1', userptr: true, dedup: true, notifier: false, pinErrno: 'ENOMEM', rdonly: true, wire: V1_WIRE },
  v3: { name: 'v3', struct: 'v3', userptr: true, dedup: false, notifier: false, pinErrno: 'EFAULT', rdonly: false, wire: V3_WIRE },
  v4: { name: 'v4', struct: 'v3', userptr: true, dedup: false, notifier: false, pinErrno: 'EFAULT', rdonly: false, wire: V3_WIRE },
  v5: { name: 'v5', struct: 'v3', userptr: true, dedup: false, notifier: false, pinErrno: 'EFAULT', rdonly: true, wire: V1_WIRE },
  v6: { name: 'v6', struct: 'v6', userptr: true, dedup: false, notifier: false, pinErrno: 'EFAULT', rdonly: true, wire: UPSTREAM },
  mainline: { name: 'mainline', struct: 'hints', userptr: false, dedup: false, notifier: false, pinErrno: 'EFAULT', rdonly: false, wire: UPSTREAM },
  'libhsakmt-72': { name: 'libhsakmt-72', struct: '72', userptr: true, dedup: true, notifier: true, pinErrno: 'ENOMEM', rdonly: true, wire: V1_WIRE | 0x20 },
};
/** `--mode pin` on a revision: no dedup, no notifier. */
export const pinned = (r: ModelRev): ModelRev => ({ ...r, dedup: false, notifier: false });

export type EvKind = 'UNMAP' | 'CLEAR' | 'PROTECTION_VMA' | 'PROTECTION_PAGE';
export interface MEvent { event: EvKind; start: number; end: number; removed?: boolean }
export type Op = 'UNMAP' | 'UPDATE' | 'EVICT';

export interface MUserptr {
  uid: number; treeSeq: number; pid: number; fileId: number;
  origStart: number; npages: number; start: number; last: number;
  rdonly: boolean; frames: number[]; shared: boolean[]; removed: boolean[];
  op: Op | null; queued: boolean; inRelease: boolean; deleted: boolean;
  evict: [number, number] | null; reg: [number, number] | null;
}
export interface MBo { handle: number; resId: number; size: number; blobMem: number; blobFlags: number; attachedCtx: number; u: MUserptr }
export interface MFile {
  id: number; opener: number; clients: number[]; ctxId: number | null; capset: number | null;
  handles: Map<number, MBo>; work: MUserptr[]; closed: boolean;
}
interface Reg { start: number; last: number; prot: string[]; frames: number[] }
export interface MProc { pid: number; sim: SimProcess; exact: boolean; queue: MEvent[]; regs: Map<number, Reg>; refs: number; released: number }

/** Host command as the tests compare it (command name + ids, and for CREATE_BLOB its fields and page runs). */
export type HostLine = string;

export type Ret = number | string; // result or errno code

export class ReferenceModel {
  readonly files: MFile[] = [];
  readonly procs = new Map<number, MProc>();
  readonly host: HostLine[] = [];
  held = false;
  private nextFileId = 1;
  private nextResId = 2;
  private nextUid = 1;
  private treeSeq = 1;
  private readonly ctxIds = new Set<number>();
  /** A create decided in pre(): frames are read after core pinned (populate faults pages in). */
  private pending: { u: MUserptr; f: MFile; bo: MBo; blobMem: number; blobFlags: number; blobId: bigint; size: bigint; ctxId: number } | null = null;
  readonly stats = { created: 0, deduped: 0, split: 0, evicted: 0, unmapped: 0, silent: 0 };

  readonly mode: 'notifier' | 'pin';
  constructor(readonly rev: ModelRev = MODEL_REVS.v1!) { this.mode = rev.notifier ? 'notifier' : 'pin'; }

  addProc(sim: SimProcess): MProc {
    const p: MProc = { pid: sim.pid, sim, exact: sim.mode === 'uffd', queue: [], regs: new Map(), refs: 0, released: 0 };
    this.procs.set(sim.pid, p);
    return p;
  }
  proc(pid: number): MProc { const p = this.procs.get(pid); if (!p) throw new Error(`model: unknown pid ${pid}`); return p; }
  openFiles(): MFile[] { return this.files.filter((f) => !f.closed); }
  fileById(id: number): MFile | undefined { return this.files.find((f) => f.id === id); }
  liveUserptrs(pid?: number): MUserptr[] {
    const r: MUserptr[] = [];
    for (const f of this.openFiles()) for (const bo of f.handles.values()) if (pid === undefined || bo.u.pid === pid) r.push(bo.u);
    return r.sort((a, b) => a.uid - b.uid);
  }

  // ---------------------------------------------------------------- files and the ioctl entry (§5 Ordering)

  open(pid: number): MFile {
    const f: MFile = { id: this.nextFileId++, opener: pid, clients: [pid], ctxId: null, capset: null, handles: new Map(), work: [], closed: false };
    this.files.push(f);
    this.proc(pid).refs++;
    return f;
  }

  private filesOf(pid: number): MFile[] { return this.openFiles().filter((f) => f.clients.includes(pid)); }

  /** Every ioctl: a closed file → EBADF; else the caller becomes a client of the file, its events are drained, the worker runs unless held. */
  private entry(f: MFile, pid: number): boolean {
    if (f.closed) return false;
    if (!f.clients.includes(pid)) { f.clients.push(pid); this.proc(pid).refs++; }
    this.drain(pid);
    if (!this.held) for (const g of this.filesOf(pid)) this.runWorker(g);
    return true;
  }

  /** create and close always flush: drain every client of the file, run this file's worker. */
  private flush(f: MFile): void {
    for (const c of f.clients) this.drain(c);
    this.runWorker(f);
  }

  private drain(pid: number): void {
    const p = this.proc(pid);
    if (!p.exact) {
      // /proc checker: per registration, what changed since the last look (gone → UNMAP, protection → PROTECTION_VMA,
      // frame changed or not present → CLEAR), adjacent pages with the same verdict merged.
      for (const r of p.regs.values()) {
        const now = this.capture(p, r.start, r.last);
        let cur: MEvent | null = null;
        for (let i = 0; i < r.prot.length; i++) {
          const a = r.start + i * PAGE;
          let ev: EvKind | null = null;
          if (r.prot[i] !== '' && now.prot[i] === '') ev = 'UNMAP';
          else if (r.prot[i] !== now.prot[i]) ev = 'PROTECTION_VMA';
          else if (now.prot[i] !== '' && (now.frames[i] === 0 || now.frames[i] !== r.frames[i])) ev = 'CLEAR';
          if (ev && cur && cur.event === ev) { cur.end = a + PAGE; continue; }
          if (cur) { p.queue.push(cur); cur = null; }
          if (ev) cur = ev === 'CLEAR' ? { event: ev, start: a, end: a + PAGE, removed: true } : { event: ev, start: a, end: a + PAGE };
        }
        if (cur) p.queue.push(cur);
        r.prot = now.prot; r.frames = now.frames;
      }
    }
    const evs = p.queue;
    p.queue = [];
    if (evs.length === 0 || this.mode !== 'notifier') return;
    for (const f of this.filesOf(pid)) this.applyEvents(f, pid, evs);
  }

  private capture(p: MProc, start: number, last: number): { prot: string[]; frames: number[] } {
    const n = (last + 1 - start) / PAGE;
    const maps = p.sim.mappings(start, last + 1);
    const prot: string[] = [];
    for (let i = 0; i < n; i++) {
      const a = start + i * PAGE;
      const m = maps.find((x) => x.start <= a && a < x.end);
      prot.push(m ? `${+m.read}${+m.write}${+m.exec}${+m.shared}` : '');
    }
    return { prot, frames: Array.from(p.sim.frames(start, n)) };
  }

  // ---------------------------------------------------------------- §4 events → invalidate

  /** An event a watcher in uffd mode reports (only if it overlaps a registered range of that process). */
  emit(pid: number, ev: MEvent): void {
    const p = this.proc(pid);
    if (!p.exact) return; // /proc mode: the diff at drain time reports
    for (const r of p.regs.values()) if (r.start < ev.end && r.last >= ev.start) { p.queue.push(ev); return; }
  }

  private applyEvents(f: MFile, pid: number, evs: MEvent[]): void {
    for (const ev of evs) {
      if (ev.end <= ev.start) continue;
      const hits = [...f.handles.values()].map((b) => b.u)
        .filter((u) => !u.deleted && u.pid === pid && u.start <= ev.end - 1 && u.last >= ev.start)
        .sort((x, y) => x.start - y.start || x.last - y.last || x.treeSeq - y.treeSeq);
      for (const u of hits) this.invalidate(f, u, ev);
    }
  }

  private invalidate(f: MFile, u: MUserptr, ev: MEvent): void {
    const s = Math.max(ev.start - (ev.start % PAGE), u.start);
    const e = Math.min(Math.ceil(ev.end / PAGE) * PAGE, u.last + 1);
    if (e <= s) return;
    if (u.queued && u.op === 'UNMAP') return; // only reschedule
    if (ev.event === 'UNMAP' || (ev.event === 'CLEAR' && ev.removed)) for (let a = s; a < e; a += PAGE) u.removed[(a - u.origStart) / PAGE] = true;
    if (ev.event === 'UNMAP') { this.unmapRange(f, u, s, e); return; }
    u.evict = u.evict ? [Math.min(u.evict[0], s), Math.max(u.evict[1], e)] : [s, e];
    this.queue(f, u, 'EVICT');
  }

  /** UNMAP of [s, e) clipped: whole → in_release + UNMAP, part → split (§6) + UPDATE. */
  private unmapRange(f: MFile, u: MUserptr, s: number, e: number): void {
    if (s <= u.start && e - 1 >= u.last) { u.inRelease = true; this.queue(f, u, 'UNMAP'); return; }
    if (s > u.start) u.last = s - 1;
    else u.start = e;
    u.treeSeq = this.treeSeq++;
    this.stats.split++;
    this.queue(f, u, 'UPDATE');
  }

  // ---------------------------------------------------------------- §5 work list and worker

  private queue(f: MFile, u: MUserptr, op: Op): void {
    if (!u.queued) { u.op = op; u.queued = true; f.work.push(u); }
    else if (u.op !== 'UNMAP') u.op = op;
  }

  private runWorker(f: MFile): void {
    for (let u = f.work.shift(); u; u = f.work.shift()) {
      u.queued = false;
      if (u.deleted) continue;
      switch (u.op) {
        case 'UNMAP': {
          const bo = f.handles.get(this.handleOf(f, u));
          if (bo && bo.u === u) { this.gemClose(f, bo); this.stats.unmapped++; }
          break;
        }
        case 'UPDATE':
          u.op = null;
          this.syncReg(u);
          if (u.evict) this.evictCheck(f, u);
          break;
        case 'EVICT':
          u.op = null;
          this.evictCheck(f, u);
          this.syncReg(u);
          break;
        default: break;
      }
    }
  }

  private handleOf(f: MFile, u: MUserptr): number {
    for (const [h, bo] of f.handles) if (bo.u === u) return h;
    return -1;
  }

  private evictCheck(f: MFile, u: MUserptr): void {
    const ev = u.evict!;
    u.evict = null;
    const s = Math.max(ev[0], u.start), e = Math.min(ev[1], u.last + 1);
    if (e <= s) return;
    const p = this.proc(u.pid);
    const n = (e - s) / PAGE;
    const cur = p.sim.frames(s, n);
    const i0 = (s - u.origStart) / PAGE;
    let changed = false;
    for (let k = 0; k < n && !changed; k++) {
      const i = i0 + k, fr = cur[k], pinned = u.frames[i];
      if (fr === 0) changed = true;
      else if (u.removed[i] && (!u.shared[i] || fr !== pinned)) changed = true;
      else if (fr !== pinned && !p.exact) changed = true;
    }
    if (!changed) {
      for (let k = 0; k < n; k++) {
        const i = i0 + k;
        if (cur[k] !== u.frames[i]) { u.frames[i] = cur[k]; this.stats.silent++; }
        u.removed[i] = false;
      }
      return;
    }
    for (let k = 0; k < n; k++) u.removed[i0 + k] = false;
    this.stats.evicted++;
    this.unmapRange(f, u, s, e);
  }

  private syncReg(u: MUserptr): void {
    if (u.deleted || (u.reg && u.reg[0] === u.start && u.reg[1] === u.last)) return;
    const p = this.proc(u.pid);
    p.regs.delete(u.uid);
    const c = this.capture(p, u.start, u.last);
    p.regs.set(u.uid, { start: u.start, last: u.last, prot: c.prot, frames: c.frames });
    u.reg = [u.start, u.last];
  }

  // ---------------------------------------------------------------- objects

  private lowestFree(used: Iterable<number>): number {
    const s = new Set(used);
    let h = 1;
    while (s.has(h)) h++;
    return h;
  }

  private gemClose(f: MFile, bo: MBo): void {
    f.handles.delete(bo.handle);
    bo.u.deleted = true;
    if (bo.attachedCtx) this.host.push(`CTX_DETACH_RESOURCE ctx=${bo.attachedCtx} res=${bo.resId}`);
    if (bo.u.reg) { this.proc(bo.u.pid).regs.delete(bo.u.uid); bo.u.reg = null; }
    this.host.push(`RESOURCE_UNREF res=${bo.resId}`);
  }

  // ---------------------------------------------------------------- ioctls (call before core; then post())

  contextInit(f: MFile, pid: number, capset: number): Ret {
    if (!this.entry(f, pid)) return 'EBADF';
    if (f.ctxId !== null) return 'EEXIST';
    const id = this.lowestFree(this.ctxIds);
    this.ctxIds.add(id);
    f.ctxId = id; f.capset = capset;
    this.host.push(`CTX_CREATE ctx=${id}`);
    return 0;
  }

  getparam(f: MFile, pid: number): Ret { return this.entry(f, pid) ? 0 : 'EBADF'; }

  gemCloseIoctl(f: MFile, pid: number, h: number): Ret {
    if (!this.entry(f, pid)) return 'EBADF';
    const bo = f.handles.get(h);
    if (!bo) return 'EINVAL';
    this.gemClose(f, bo);
    return 0;
  }

  info(f: MFile, pid: number, h: number): { ret: Ret; resId: number; size: number; blobMem: number } {
    if (!this.entry(f, pid)) return { ret: 'EBADF', resId: 0, size: 0, blobMem: 0 };
    const bo = f.handles.get(h);
    if (!bo) return { ret: 'ENOENT', resId: 0, size: 0, blobMem: 0 };
    return { ret: 0, resId: bo.resId, size: bo.size, blobMem: bo.blobMem };
  }

  /** §3 create (blob_mem GUEST or HOST3D_GUEST with USE_USERPTR, upstream checks already known to pass). */
  create(f: MFile, pid: number, a: { blobMem: number; blobFlags: number; blobId: bigint; size: bigint; userptr: bigint; rdonly?: boolean }): { ret: Ret; handle: number; resId: number; offset: bigint | null } {
    const none = { handle: 0, resId: 0, offset: null };
    if (!this.entry(f, pid)) return { ret: 'EBADF', ...none };
    // 1. upstream checks pass by construction; the file already has a context (every file is initialised).
    if (f.ctxId === null) throw new Error('model: create on a file with no context is not modelled');
    // mainline: USE_USERPTR is not in its flag mask.
    if (!this.rev.userptr) return { ret: 'EINVAL', ...none };
    // 2.
    if (f.capset !== CAPSET_HSAKMT) return { ret: 'EINVAL', ...none };
    // 3.
    if (a.size === 0n) return { ret: 'EINVAL', ...none };
    if (a.userptr + a.size > BigInt(USER_END)) return { ret: 'EFAULT', ...none };
    const uaddr = Number(a.userptr), size = Number(a.size);
    const start = uaddr - (uaddr % PAGE);
    const npages = Math.ceil(((uaddr % PAGE) + size) / PAGE);
    const lo = uaddr, hi = uaddr + size - 1;
    // 4.
    if (this.rev.dedup) {
      if (this.rev.notifier) this.flush(f);
      let best: MUserptr | null = null;
      for (const bo of f.handles.values()) {
        const u = bo.u;
        if (u.deleted || u.inRelease || u.op !== null || u.pid !== pid || u.start > lo || u.last < hi) continue;
        if (!best || u.start < best.start || (u.start === best.start && (u.last < best.last || (u.last === best.last && u.uid < best.uid)))) best = u;
      }
      if (best) {
        const bo = [...f.handles.values()].find((b) => b.u === best)!;
        this.stats.deduped++;
        return { ret: EXISTS, handle: bo.handle, resId: bo.resId, offset: BigInt(start - best.origStart) };
      }
    }
    // 5. pin rules, from the mappings (populate is core's job; frames are read in post()).
    const rdonly = a.rdonly ?? (a.blobFlags & FLAG_RDONLY) !== 0;
    const end = start + npages * PAGE;
    const maps = this.proc(pid).sim.mappings(start, end);
    const shared: boolean[] = [];
    for (let i = 0; i < npages; i++) {
      const addr = start + i * PAGE;
      const m = maps.find((x) => x.start <= addr && addr < x.end);
      const bad = this.rev.pinErrno;
      if (!m) return { ret: bad, ...none };
      if (!m.read && !m.write) return { ret: bad, ...none };
      if (!rdonly && (!m.write || (m.shared && m.backing === 'file'))) return { ret: bad, ...none };
      if (m.backing === 'special') return { ret: bad, ...none };
      shared.push(m.shared);
    }
    // 6.
    const resId = this.nextResId++;
    const handle = this.lowestFree(f.handles.keys());
    const u: MUserptr = {
      uid: this.nextUid++, treeSeq: this.treeSeq++, pid, fileId: f.id, origStart: start, npages, start, last: end - 1, rdonly,
      frames: [], shared, removed: new Array(npages).fill(false), op: null, queued: false, inRelease: false, deleted: false, evict: null, reg: null,
    };
    const bo: MBo = { handle, resId, size: npages * PAGE, blobMem: a.blobMem, blobFlags: a.blobFlags, attachedCtx: f.ctxId, u };
    f.handles.set(handle, bo);
    this.stats.created++;
    this.pending = { u, f, bo, blobMem: a.blobMem, blobFlags: a.blobFlags, blobId: a.blobId, size: a.size, ctxId: a.blobMem === BLOB_GUEST ? 0 : f.ctxId };
    return { ret: 0, handle, resId, offset: null };
  }

  /** After core ran the same ioctl: read the pinned frames of a new userptr, host commands, register with the watcher. */
  post(): void {
    const pd = this.pending;
    if (!pd) return;
    this.pending = null;
    const { u } = pd;
    const p = this.proc(u.pid);
    u.frames = Array.from(p.sim.frames(u.origStart, u.npages));
    const runs: string[] = [];
    let runStart = -1, runLen = 0;
    for (let i = 0; i <= u.npages; i++) {
      const fr = i < u.npages ? u.frames[i] : -1;
      if (runStart >= 0 && fr === runStart + runLen) { runLen++; continue; }
      if (runStart >= 0) runs.push(`${(runStart * PAGE).toString(16)}+${runLen * PAGE}`);
      runStart = fr; runLen = 1;
    }
    this.host.push(`RESOURCE_CREATE_BLOB res=${pd.bo.resId} ctx=${pd.ctxId} mem=${pd.blobMem} flags=${pd.blobFlags & this.rev.wire} id=${pd.blobId} size=${pd.size} [${runs.join(',')}]`);
    this.host.push(`CTX_ATTACH_RESOURCE ctx=${pd.f.ctxId} res=${pd.bo.resId}`);
    if (this.mode === 'notifier') this.syncReg(u);
  }

  closeFile(f: MFile): void {
    if (f.closed) return;
    for (const c of f.clients) this.drain(c);
    this.runWorker(f);
    f.closed = true;
    for (const h of [...f.handles.keys()].sort((x, y) => x - y)) this.gemClose(f, f.handles.get(h)!);
    if (f.ctxId !== null) { this.host.push(`CTX_DESTROY ctx=${f.ctxId}`); this.ctxIds.delete(f.ctxId); f.ctxId = null; }
    for (const c of f.clients) {
      const p = this.proc(c);
      if (--p.refs === 0) { p.released++; p.queue = []; p.regs.clear(); }
    }
    f.work = [];
  }

  // ---------------------------------------------------------------- §4 (g): what each memory operation reports

  private mapped(pid: number, s: number, e: number): boolean { return this.proc(pid).sim.mappings(s, e).length > 0; }

  /** Call BEFORE doing the operation on the sim. */
  munmap(pid: number, s: number, e: number): void { if (this.mapped(pid, s, e)) this.emit(pid, { event: 'UNMAP', start: s, end: e }); }
  mmapFixed(pid: number, s: number, e: number): void { this.munmap(pid, s, e); }
  madvise(pid: number, s: number, e: number, advice: 'DONTNEED' | 'FREE' | 'REMOVE'): void { this.emit(pid, { event: 'CLEAR', start: s, end: e, removed: advice !== 'FREE' }); }
  mprotect(pid: number, s: number, e: number): void { this.emit(pid, { event: 'PROTECTION_VMA', start: s, end: e }); }
  mremapShrink(pid: number, s: number, oldEnd: number, newSize: number): void { this.munmap(pid, s + newSize, oldEnd); }
  /** Move: MAP_FIXED destination replaced (UNMAP there), then UNMAP of the old range. */
  mremapMove(pid: number, s: number, oldEnd: number, fixedDst: number | null, newSize: number): void {
    const hadOld = this.mapped(pid, s, oldEnd);
    if (fixedDst !== null) this.munmap(pid, fixedDst, fixedDst + newSize);
    if (hadOld) this.emit(pid, { event: 'UNMAP', start: s, end: oldEnd });
  }
  fork(pid: number): void { this.emit(pid, { event: 'PROTECTION_PAGE', start: 0, end: USER_END }); }

  // ---------------------------------------------------------------- introspection in the shape of core's snapshot

  /** The model creates userptrs only and submits nothing: no blob memory, no fences. */
  counts(): { files: number; clients: number; handles: number; resources: number; pins: number; registrations: number; queued: number; contexts: number; blobMemory: number; blobMemoryBytes: number; fences: number } {
    let handles = 0, pins = 0, queued = 0, registrations = 0, clients = 0;
    for (const f of this.openFiles()) { handles += f.handles.size; queued += f.work.length; for (const bo of f.handles.values()) pins += bo.u.npages; }
    for (const p of this.procs.values()) { registrations += p.regs.size; if (p.refs > 0) clients++; }
    return { files: this.openFiles().length, clients, handles, resources: handles, pins, registrations, queued, contexts: this.ctxIds.size, blobMemory: 0, blobMemoryBytes: 0, fences: 0 };
  }
}
