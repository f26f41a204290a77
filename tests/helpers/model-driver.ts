// Drives core (through the uAPI: Harness ioctls + snapshot) and the reference model with the same command
// sequence, comparing after every step. Commands are plain data (fast-check shrinks them); selectors are resolved
// against the model's state at execution time, so the same data always means the same concrete operation.
import { type DeviceFile, type Recorded } from '../../core';
import { DeferredScheduler, PROT_NONE, PROT_R, PROT_RW, SimObject, type SimProcess } from '../../core/testing';
import { Harness, HSAKMT, BLOB_GUEST, BLOB_HOST3D_GUEST, USE_USERPTR, USERPTR_RDONLY, USE_MAPPABLE } from './core-harness';
import * as B from './bytes';
import { ReferenceModel, PAGE, USER_END, MODEL_REVS, pinned, type MFile, type Ret } from './reference-model';

export type Part = 'whole' | 'head' | 'tail' | 'middle' | 'sub';
export interface Sel { kind: 'u' | 'r'; idx: number; part: Part; a: number; b: number }
export type Cmd =
  | { t: 'create'; p: number; f: number; sel: Sel; lead: number; trail: number; rdonly: boolean; guest: boolean; mappable: boolean; bad: 'zero' | 'high' | null }
  | { t: 'munmap'; p: number; sel: Sel }
  | { t: 'madvise'; p: number; sel: Sel; advice: 'DONTNEED' | 'FREE' | 'REMOVE' }
  | { t: 'mprotect'; p: number; sel: Sel; prot: 'ro' | 'rw' | 'none' }
  | { t: 'mremap'; p: number; sel: Sel; kind: 'move' | 'moveFixed' | 'shrink'; dst: number; k: number }
  | { t: 'remap'; p: number; sel: Sel; shared: boolean }
  | { t: 'fork'; p: number }
  | { t: 'touch'; p: number; sel: Sel; write: boolean }
  | { t: 'migrate'; p: number; sel: Sel }
  | { t: 'gemclose'; p: number; f: number; h: number }
  | { t: 'info'; p: number; f: number; h: number }
  | { t: 'probe'; p: number; f: number }
  | { t: 'getparam'; p: number; f: number }
  | { t: 'closefile'; f: number }
  | { t: 'open'; p: number; capset: number }
  | { t: 'hold'; held: boolean };

export interface RunConfig { watcher: 'uffd' | 'proc'; mode: 'notifier' | 'pin'; /** uAPI revision (default v1); `mode` pin on v1 turns its dedup and notifier off */ uapi?: string; twoProcs: boolean; held: boolean; fileRegion: boolean }

interface Region { start: number; npages: number }
interface PState { sim: SimProcess; regions: Region[]; scratch: number }

const MAX_PROCS = 5;
/** GETPARAM value / CONTEXT_INIT params page, away from the sim's top-down mmap area. */
const SCRATCH = 0x10000000;
const BLOB_ID = 0x1234n;
const OFFSET_SENTINEL = 0x5a5an;

export class Mismatch extends Error {}

export class Driver {
  readonly h: Harness;
  readonly sched = new DeferredScheduler();
  readonly model: ReferenceModel;
  readonly ps: PState[] = [];
  readonly files: { core: DeviceFile; m: MFile }[] = [];
  readonly log: string[] = [];
  private hostSeen = 0;
  private modelHostSeen = 0;

  constructor(readonly cfg: RunConfig) {
    this.sched.held = cfg.held;
    const uapi = cfg.uapi ?? 'v1';
    const rev = MODEL_REVS[uapi]!;
    const own = rev.notifier ? 'notifier' : 'pin';
    this.h = new Harness({ scheduler: this.sched, uapi, mode: cfg.mode === own ? undefined : cfg.mode });
    this.model = new ReferenceModel(cfg.mode === own ? rev : pinned(rev));
    this.model.held = cfg.held;
    this.addProc(this.newSim());
    if (cfg.twoProcs) this.addProc(this.newSim());
    this.openFile(0, HSAKMT);
    if (cfg.twoProcs) this.openFile(1, HSAKMT);
    this.compare('setup');
  }

  private newSim(): SimProcess {
    const sim = this.h.proc(this.cfg.watcher);
    return sim;
  }

  private addProc(sim: SimProcess, regions?: Region[], scratch?: number): void {
    if (!regions) {
      regions = [{ start: sim.mmap(16 * PAGE), npages: 16 }, { start: sim.mmap(16 * PAGE), npages: 16 }, { start: sim.mmap(8 * PAGE, PROT_RW, { shared: true }), npages: 8 }];
      if (this.cfg.fileRegion) regions.push({ start: sim.mmap(4 * PAGE, PROT_RW, { shared: true, obj: new SimObject('file') }), npages: 4 });
      scratch = sim.mmap(PAGE, PROT_RW, { fixed: SCRATCH }); // far below the regions: no move or remap ever lands on it
    }
    this.ps.push({ sim, regions, scratch: scratch! });
    this.model.addProc(sim);
  }

  private openFile(pi: number, capset: number): void {
    const p = this.ps[pi];
    const core = this.h.open(p.sim);
    const m = this.model.open(p.sim.pid);
    this.files.push({ core, m });
    this.ctxInit(this.files.length - 1, pi, capset);
  }

  private ctxInit(fi: number, pi: number, capset: number): void {
    const p = this.ps[pi], F = this.files[fi];
    p.sim.write(p.scratch + 64, B.ctxParams([[1, capset]]));
    const exp = this.model.contextInit(F.m, p.sim.pid, capset);
    const got = this.h.ioctl(F.core, p.sim, B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, p.scratch + 64)).ret;
    this.eq('CONTEXT_INIT ret', got, exp);
  }

  // ------------------------------------------------------------------ selectors

  private resolve(pi: number, sel: Sel): [number, number] {
    const pid = this.ps[pi].sim.pid;
    if (sel.kind === 'u') {
      const us = this.model.liveUserptrs(pid);
      if (us.length) { const u = us[sel.idx % us.length]; return this.part(u.start, u.last + 1, sel); }
    }
    const rs = this.ps[pi].regions;
    const r = rs[sel.idx % rs.length];
    return this.part(r.start, r.start + r.npages * PAGE, sel);
  }

  private part(s: number, e: number, sel: Sel): [number, number] {
    const n = (e - s) / PAGE;
    const k = n > 1 ? 1 + (sel.a % (n - 1)) : n;
    switch (sel.part) {
      case 'whole': return [s, e];
      case 'head': return [s, s + k * PAGE];
      case 'tail': return [e - k * PAGE, e];
      case 'middle': {
        if (n < 3) return [s, e];
        const i = 1 + (sel.a % (n - 2));
        const len = 1 + (sel.b % (n - 1 - i));
        return [s + i * PAGE, s + (i + len) * PAGE];
      }
      case 'sub': {
        const i = sel.a % n;
        const len = 1 + (sel.b % (n - i));
        return [s + i * PAGE, s + (i + len) * PAGE];
      }
    }
  }

  // ------------------------------------------------------------------ steps

  run(cmds: Cmd[]): void {
    cmds.forEach((c, i) => {
      this.step(c);
      this.compare(`step ${i} ${JSON.stringify(c)}`);
    });
    this.finish();
  }

  step(c: Cmd): void {
    const P = (i: number): number => i % this.ps.length;
    // f < 8: one of the open files (if any); f = 8: any file ever opened, closed ones included (→ EBADF)
    const FI = (i: number): number => {
      const open = this.files.map((F, k) => (F.m.closed ? -1 : k)).filter((k) => k >= 0);
      return i < 8 && open.length ? open[i % open.length] : i % this.files.length;
    };
    // h < 6: a live handle of the file (if any), by rank; else the raw number (often stale)
    const HD = (fi: number, h: number): number => {
      const live = [...this.files[fi].m.handles.keys()].sort((a, b) => a - b);
      return h < 6 ? (live.length ? live[h % live.length] : h) : h - 6;
    };
    switch (c.t) {
      case 'create': return this.create(c, P(c.p), FI(c.f));
      case 'munmap': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel), p = this.ps[pi];
        this.log.push(`P${pi} munmap [${hx(s)}, ${hx(e)})`);
        this.model.munmap(p.sim.pid, s, e);
        p.sim.munmap(s, e - s);
        return;
      }
      case 'madvise': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel), p = this.ps[pi];
        this.log.push(`P${pi} madvise ${c.advice} [${hx(s)}, ${hx(e)})`);
        this.model.madvise(p.sim.pid, s, e, c.advice);
        p.sim.madvise(s, e - s, c.advice);
        return;
      }
      case 'mprotect': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel), p = this.ps[pi];
        this.log.push(`P${pi} mprotect ${c.prot} [${hx(s)}, ${hx(e)})`);
        this.model.mprotect(p.sim.pid, s, e);
        p.sim.mprotect(s, e - s, c.prot === 'ro' ? PROT_R : c.prot === 'rw' ? PROT_RW : PROT_NONE);
        return;
      }
      case 'remap': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel), p = this.ps[pi];
        this.log.push(`P${pi} mmap(MAP_FIXED${c.shared ? '|MAP_SHARED' : ''}) [${hx(s)}, ${hx(e)})`);
        this.model.mmapFixed(p.sim.pid, s, e);
        p.sim.mmap(e - s, PROT_RW, { fixed: s, shared: c.shared });
        return;
      }
      case 'mremap': return this.mremap(c, P(c.p));
      case 'fork': {
        const pi = P(c.p), p = this.ps[pi];
        if (this.ps.length >= MAX_PROCS) { this.log.push(`P${pi} fork skipped (max procs)`); return; }
        this.model.fork(p.sim.pid);
        const child = this.h.adopt(p.sim.fork());
        this.addProc(child, p.regions.map((r) => ({ ...r })), p.scratch);
        this.log.push(`P${pi} fork → P${this.ps.length - 1} (pid ${child.pid})`);
        return;
      }
      case 'touch': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel);
        this.log.push(`P${pi} touch(${c.write ? 'write' : 'read'}) [${hx(s)}, ${hx(e)})`);
        this.ps[pi].sim.touch(s, e - s, c.write);
        return;
      }
      case 'migrate': {
        const pi = P(c.p), [s, e] = this.resolve(pi, c.sel);
        this.log.push(`P${pi} migrate [${hx(s)}, ${hx(e)})`);
        this.ps[pi].sim.migrate(s, e - s);
        return;
      }
      case 'gemclose': {
        const pi = P(c.p), fi = FI(c.f), p = this.ps[pi], F = this.files[fi];
        const hd = HD(fi, c.h);
        this.log.push(`P${pi} GEM_CLOSE(F${fi}, ${hd})`);
        const exp = this.model.gemCloseIoctl(F.m, p.sim.pid, hd);
        this.eq('GEM_CLOSE ret', this.h.close(F.core, p.sim, hd), exp);
        return;
      }
      case 'info': { const fi = FI(c.f); return this.info(P(c.p), fi, HD(fi, c.h)); }
      case 'probe': {
        const pi = P(c.p), fi = FI(c.f), F = this.files[fi];
        const max = Math.max(0, ...F.m.handles.keys());
        for (let hd = 1; hd <= max + 1; hd++) this.info(pi, fi, hd);
        return;
      }
      case 'getparam': {
        const pi = P(c.p), fi = FI(c.f), p = this.ps[pi], F = this.files[fi];
        this.log.push(`P${pi} GETPARAM(F${fi})`);
        const exp = this.model.getparam(F.m, p.sim.pid);
        this.eq('GETPARAM ret', this.h.ioctl(F.core, p.sim, B.VIRTGPU_GETPARAM, B.getparam(1, p.scratch)).ret, exp);
        return;
      }
      case 'closefile': {
        const fi = FI(c.f), F = this.files[fi];
        this.log.push(`close F${fi}`);
        this.model.closeFile(F.m);
        F.core.close();
        return;
      }
      case 'open': {
        const pi = P(c.p);
        this.log.push(`P${pi} open F${this.files.length} + CONTEXT_INIT(capset ${c.capset})`);
        this.openFile(pi, c.capset);
        return;
      }
      case 'hold': {
        this.log.push(`worker ${c.held ? 'held' : 'released'}`);
        this.sched.held = c.held;
        this.model.held = c.held;
        return;
      }
    }
  }

  private info(pi: number, fi: number, hd: number): void {
    const p = this.ps[pi], F = this.files[fi];
    this.log.push(`P${pi} RESOURCE_INFO(F${fi}, ${hd})`);
    const exp = this.model.info(F.m, p.sim.pid, hd);
    const r = this.h.ioctl(F.core, p.sim, B.VIRTGPU_RESOURCE_INFO, B.resourceInfo(hd));
    this.eq(`RESOURCE_INFO(${hd}) ret`, r.ret, exp.ret);
    if (exp.ret === 'EBADF') { this.eq('RESOURCE_INFO out length on a closed file', r.out.length, 0); return; }
    const o = new B.R(r.out);
    // out is copied back even on failure: unchanged input (res_handle, size, blob_mem 0) for an unknown handle
    this.eq(`RESOURCE_INFO(${hd}) out`, [o.u32(0), o.u32(4), o.u32(8), o.u32(12)], [hd, exp.resId, exp.size, exp.blobMem]);
  }

  private create(c: Extract<Cmd, { t: 'create' }>, pi: number, fi: number): void {
    const p = this.ps[pi], F = this.files[fi];
    const [s, e] = this.resolve(pi, c.sel);
    const rev = this.model.rev;
    const aligned = rev.struct === 'v6'; // v6 takes page-aligned ranges only
    let userptr = s + (aligned ? 0 : c.lead % PAGE);
    let size = e - userptr - (aligned ? 0 : c.trail % PAGE);
    if (size <= 0) { userptr = s; size = e - s; }
    if (c.bad === 'zero') size = 0;
    if (c.bad === 'high') { userptr = USER_END - PAGE; size = 2 * PAGE; }
    const blobMem = c.guest ? BLOB_GUEST : BLOB_HOST3D_GUEST;
    const rdonly = c.rdonly && rev.rdonly;
    // v6 asks for a userptr and read-only pages in blob_hints (HINT_USERPTR 0x2, HINT_USERPTR_RDONLY 0x4), the others with flags.
    const flags = (rev.struct === 'v6' ? 0 : USE_USERPTR | (rdonly ? USERPTR_RDONLY : 0)) | (c.mappable ? USE_MAPPABLE : 0);
    const hints = rev.struct === 'v6' ? 0x2 | (rdonly ? 0x4 : 0) : 0;
    const blobId = c.guest ? 0n : BLOB_ID;
    this.log.push(`P${pi} CREATE_BLOB(F${fi}, userptr ${hx(userptr)}, size ${hx(size)}, ${c.guest ? 'GUEST' : 'HOST3D_GUEST'}${rdonly ? ', RDONLY' : ''})`);
    const exp = this.model.create(F.m, p.sim.pid, { blobMem, blobFlags: flags, blobId, size: BigInt(size), userptr: BigInt(userptr), rdonly });
    const a = { blobMem, flags, size, userptr, blobId, offset: OFFSET_SENTINEL, hints };
    // Each revision's struct, and where it writes `offset` back (none: the bytes come back as sent).
    const [bytes, offsetAt] = rev.struct === 'v1' ? [B.createBlob(a), 56] : rev.struct === '72' ? [B.createBlob72(a), 64]
      : rev.struct === 'v6' ? [B.createBlobV6(a), -1] : rev.struct === 'hints' ? [B.createBlobHints(a), -1] : [B.createBlob(a, 56), -1];
    const r = this.h.ioctl(F.core, p.sim, B.IOWR(0x4a, bytes.length), bytes);
    this.model.post();
    this.eq('CREATE_BLOB ret', r.ret, exp.ret);
    if (r.ret === 'EBADF') { this.eq('CREATE_BLOB out length on a closed file', r.out.length, 0); return; }
    const o = new B.R(r.out);
    const offset = offsetAt < 0 ? OFFSET_SENTINEL : o.u64(offsetAt);
    this.eq('CREATE_BLOB out {bo_handle, res_handle, offset}', [o.u32(8), o.u32(12), offset], [exp.handle, exp.resId, exp.offset ?? OFFSET_SENTINEL]);
  }

  private mremap(c: Extract<Cmd, { t: 'mremap' }>, pi: number): void {
    const p = this.ps[pi], pid = p.sim.pid;
    const [s, e] = this.resolve(pi, c.sel);
    const size = e - s, n = size / PAGE;
    if (c.kind === 'shrink') {
      if (n < 2) { this.log.push(`P${pi} mremap shrink skipped (1 page)`); return; }
      const newSize = (1 + (c.k % (n - 1))) * PAGE;
      this.log.push(`P${pi} mremap shrink [${hx(s)}, ${hx(e)}) → ${newSize / PAGE} pages`);
      if (!this.mappedWhole(p.sim, s, e)) { this.log.push('  → EFAULT (not one mapping)'); return; }
      this.model.mremapShrink(pid, s, e, newSize);
      p.sim.mremap(s, size, newSize);
      return;
    }
    // Same-size mremap without MREMAP_FIXED does not move: 'move' reserves a fresh range and moves onto it.
    let dst: number | null = null, fresh = false;
    if (c.kind === 'moveFixed') {
      const r = p.regions[c.dst % p.regions.length];
      const d = r.start + (c.k % r.npages) * PAGE;
      if (d + size <= s || d >= e) dst = d;
    }
    if (dst === null) { dst = p.sim.mmap(size); fresh = true; }
    this.log.push(`P${pi} mremap move [${hx(s)}, ${hx(e)}) → ${hx(dst)}${fresh ? ' (fresh)' : ''}`);
    if (fresh) p.regions.push({ start: dst, npages: n });
    if (!this.mappedWhole(p.sim, s, e)) { this.log.push('  → EFAULT (not one mapping)'); return; }
    this.model.mremapMove(pid, s, e, dst, size);
    p.sim.mremap(s, size, size, dst);
  }

  /** The kernel's mremap refuses a range with holes (EFAULT): then nothing happens on either side. */
  private mappedWhole(sim: { vmaAt(a: number): unknown }, s: number, e: number): boolean {
    for (let a = s; a < e; a += PAGE) if (!sim.vmaAt(a)) return false;
    return true;
  }

  // ------------------------------------------------------------------ comparison

  eq(what: string, got: unknown, exp: unknown): void {
    const g = JSON.stringify(got, big), x = JSON.stringify(exp, big);
    if (g !== x) throw new Mismatch(`${what}: core ${g} ≠ model ${x}\n--- steps ---\n${this.log.join('\n')}`);
  }

  compare(where: string): void {
    // host log: only the new commands since the last step
    const log = this.h.host.log;
    const got = log.slice(this.hostSeen).map(hostLine);
    this.hostSeen = log.length;
    const exp = this.model.host.slice(this.modelHostSeen);
    this.modelHostSeen = this.model.host.length;
    this.eq(`${where}: host commands`, got, exp);
    // snapshot of every open file
    const snap = this.h.dev.snapshot();
    const coreFiles = snap.files.map((f) => ({
      id: f.id, clients: f.clients, ctx: f.ctx?.id ?? null, queued: f.queued,
      handles: f.handles.map((x) => ({ h: x.handle, res: x.resId, size: x.size, mem: x.blobMem, flags: x.blobFlags, u: x.userptr ? { start: hx(x.userptr.start), last: hx(x.userptr.last), orig: hx(x.userptr.origStart), n: x.userptr.npages, op: x.userptr.op, queued: x.userptr.queued, inRelease: x.userptr.inRelease, valid: x.userptr.valid, reg: x.userptr.registered ? x.userptr.registered.map(hx) : null, ro: x.userptr.rdonly } : null })),
    }));
    const modelFiles = this.model.openFiles().map((f) => ({
      id: f.id, clients: f.clients, ctx: f.ctxId, queued: f.work.length,
      handles: [...f.handles.values()].sort((a, b) => a.handle - b.handle).map((bo) => {
        const u = bo.u;
        return { h: bo.handle, res: bo.resId, size: bo.size, mem: bo.blobMem, flags: bo.blobFlags, u: { start: hx(u.start), last: hx(u.last), orig: hx(u.origStart), n: u.npages, op: u.op, queued: u.queued, inRelease: u.inRelease, valid: !u.inRelease && u.op === null && !u.deleted, reg: u.reg ? u.reg.map(hx) : null, ro: u.rdonly } };
      }),
    }));
    this.eq(`${where}: snapshot files`, coreFiles, modelFiles);
    this.eq(`${where}: counts`, snap.counts, this.model.counts());
    const st = snap.stats, ms = this.model.stats;
    this.eq(`${where}: stats {created, deduped, split, evicted, unmapped, silentFrameUpdates}`,
      [st.userptrsCreated, st.userptrsDeduped, st.userptrsSplit, st.userptrsEvicted, st.userptrsUnmapped, st.silentFrameUpdates],
      [ms.created, ms.deduped, ms.split, ms.evicted, ms.unmapped, ms.silent]);
    this.eq(`${where}: release() calls`, this.releasedOf(this.h.released), this.releasedOf(null));
  }

  private releasedOf(m: Map<number, number> | null): Record<string, number> {
    const r: Record<string, number> = {};
    for (const p of this.model.procs.values()) {
      const n = m ? (m.get(p.pid) ?? 0) : p.released;
      if (n) r[p.pid] = n;
    }
    return r;
  }

  /** Close everything; counts back to zero and every client released (docs/semantics.md §7.5). */
  finish(): void {
    this.files.forEach((F, i) => {
      if (F.m.closed) return;
      this.log.push(`final close F${i}`);
      this.model.closeFile(F.m);
      F.core.close();
    });
    this.compare('final');
    const c = this.h.dev.counts();
    this.eq('final counts', c, { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0, queued: 0, contexts: 0, blobMemory: 0, blobMemoryBytes: 0, fences: 0 });
    this.eq('host live resources', this.h.host.liveResources(), 0);
    for (const p of this.model.procs.values()) {
      const used = this.files.some((F) => F.m.clients.includes(p.pid));
      if (used && (this.h.released.get(p.pid) ?? 0) < 1) throw new Mismatch(`pid ${p.pid} never released\n${this.log.join('\n')}`);
    }
  }
}

function hx(n: number): string { return '0x' + n.toString(16); }
function big(_k: string, v: unknown): unknown { return typeof v === 'bigint' ? `${v}n` : v; }

export function hostLine(c: Recorded): string {
  switch (c.cmd) {
    case 'CTX_CREATE': return `CTX_CREATE ctx=${c.ctxId}`;
    case 'CTX_DESTROY': return `CTX_DESTROY ctx=${c.ctxId}`;
    case 'CTX_ATTACH_RESOURCE': return `CTX_ATTACH_RESOURCE ctx=${c.ctxId} res=${c.resId}`;
    case 'CTX_DETACH_RESOURCE': return `CTX_DETACH_RESOURCE ctx=${c.ctxId} res=${c.resId}`;
    case 'RESOURCE_UNREF': return `RESOURCE_UNREF res=${c.resId}`;
    case 'RESOURCE_CREATE_BLOB': return `RESOURCE_CREATE_BLOB res=${c.resId} ctx=${c.ctxId} mem=${c.blobMem} flags=${c.blobFlags} id=${c.blobId} size=${c.size} [${c.entries.map((e) => `${e.addr.toString(16)}+${e.length}`).join(',')}]`;
    default: return c.cmd;
  }
}
export type { Ret };
