// The emulated HSAKMT host behind capset 8 contexts, through the uAPI (CONTEXT_INIT, CREATE_BLOB, MAP, EXECBUFFER)
// of a core device over a simulated process: the shmem header, every ccmd's request and reply byte for byte (expected
// bytes from tests/helpers/hsakmt-bytes.ts, written from the protocol note), both MEMORY generations, the host's
// objects keyed by resource id and dropped at unref, bad guest input, fault injection, and the router's recording.
import test from 'ava';
import * as fc from 'fast-check';
import * as B from '../helpers/bytes';
import * as H from '../helpers/hsakmt-bytes';
import { ContextRouter, createDevice, HsakmtHost, hsakmt, isErr, RecordingHost, type CcmdEvent, type DeviceFile, type Fence, type HsakmtHostOptions, type InFence, type IoctlFds, type Errno, EINVAL } from '../../core';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';

const PG = 4096;
const SHMEM_SIZE = 25 * PG;
const HOST3D = 2, HOST3D_GUEST = 3, MAPPABLE = 1, USE_USERPTR = 8;
const RING_IDX = 4, FENCE_FD_OUT = 2;
const SLOT = 512; // bytes reserved per reply in these tests (>= every host reply size)

class Fds implements IoctlFds {
  last: Fence | null = null;
  inFence(): InFence | Errno { return EINVAL; }
  install(_offset: number, fence: Fence): Errno | undefined { this.last = fence; return undefined; }
}

interface Env {
  dev: ReturnType<typeof createDevice>; record: RecordingHost; hs: HsakmtHost; p: SimProcess; f: DeviceFile; machine: SimMachine;
  procs: Map<number, SimProcess>; logs: string[]; ccmds: CcmdEvent[];
}

function setup(o: HsakmtHostOptions = {}): Env {
  const machine = new SimMachine();
  const procs = new Map<number, SimProcess>();
  const logs: string[] = [];
  const ccmds: CcmdEvent[] = [];
  const record = new RecordingHost();
  let dev!: ReturnType<typeof createDevice>;
  const hs = new HsakmtHost({ log: (k, m) => dev.logOnce(k, m), onCcmd: (e) => ccmds.push(e), ...o });
  dev = createDevice({ host: new ContextRouter(record, new Map([[8, hs]])), clients: simProvider(machine, procs), log: (m) => logs.push(m) });
  const p = machine.process();
  procs.set(p.pid, p);
  return { dev, record, hs, p, f: dev.open(p.pid), machine, procs, logs, ccmds };
}

function ioctl(e: Env, f: DeviceFile, p: SimProcess, cmd: number, arg: Uint8Array, fds?: IoctlFds): { ret: number | string; out: Uint8Array } {
  const r = f.ioctl(p.pid, cmd, arg, p, fds);
  return { ret: isErr(r.result) ? r.result.code : r.result, out: r.out };
}

function ctxInit(e: Env, f = e.f, p = e.p, capset = 8): number | string {
  const at = p.mmap(PG);
  p.write(at, B.ctxParams([[1, capset], [2, 64]]));
  return ioctl(e, f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(2, at)).ret;
}

function blob(e: Env, a: B.BlobArgs, f = e.f, p = e.p): { ret: number | string; handle: number; resId: number; offset: bigint } {
  const r = ioctl(e, f, p, B.VIRTGPU_RESOURCE_CREATE_BLOB, B.createBlob(a));
  return { ret: r.ret, ...B.blobOut(r.out) };
}

/** The shmem as the guest library makes it: HOST3D MAPPABLE blob_id 0, MAP, and the mapping's bytes. */
function shmem(e: Env, f = e.f, p = e.p): { bytes: Uint8Array; handle: number; resId: number } {
  const b = blob(e, { blobMem: HOST3D, flags: MAPPABLE, size: SHMEM_SIZE, blobId: 0 }, f, p);
  const m = ioctl(e, f, p, B.VIRTGPU_MAP, B.virtgpuMap(b.handle));
  const t = f.map(new B.R(m.out).u64(0), SHMEM_SIZE);
  if (isErr(t)) throw new Error(t.code);
  return { bytes: t.memory.bytes, handle: b.handle, resId: b.resId };
}

let nextSeq = 1;
/** One EXECBUFFER carrying `req` (one or more ccmds), with reply slots preset as the library does (len, then fill). */
function submit(e: Env, shm: Uint8Array, req: Uint8Array, slots: { rspOff: number; preset: number }[], f = e.f, p = e.p, fds = new Fds()) {
  for (const s of slots) {
    shm.fill(0xaa, 16 + s.rspOff, 16 + s.rspOff + Math.max(s.preset, 8) + 16); // 16 more: nothing may land past the slot
    new DataView(shm.buffer, shm.byteOffset).setUint32(16 + s.rspOff, s.preset, true);
  }
  const at = p.mmap(Math.max(req.length, 1));
  p.write(at, req);
  const r = ioctl(e, f, p, B.VIRTGPU_EXECBUFFER, B.execbuffer({ flags: RING_IDX | FENCE_FD_OUT, size: req.length, command: at }), fds);
  p.munmap(at, Math.max(req.length, 1));
  return { ret: r.ret, fence: fds.last };
}

/** One ccmd in its own EXECBUFFER; returns the reply slot's bytes and the header after it. */
function ccmd(e: Env, shm: Uint8Array, req: Uint8Array, preset: number, rspOff = 0, f = e.f, p = e.p) {
  const r = submit(e, shm, req, [{ rspOff, preset }], f, p);
  return { ...r, slot: shm.slice(16 + rspOff, 16 + rspOff + preset), hdr: H.shmemHeader(shm) };
}

/** An opened KFD: context, shmem, OPEN_KFD. */
function opened(o: HsakmtHostOptions = {}) {
  const e = setup(o);
  ctxInit(e);
  const s = shmem(e);
  const q = ccmd(e, s.bytes, H.queryInfo(nextSeq++, 0), H.QUERY_INFO_RSP);
  const r = H.reply(q.slot);
  return { e, shm: s.bytes, shmemHandle: s.handle, vmStart: Number(r.v8), vmSize: Number(r.v16 === 0 ? new B.R(q.slot).u64(16) : new B.R(q.slot).u64(16)) };
}

/** A userptr as the library registers one: CREATE_BLOB USE_USERPTR, RESOURCE_INFO. */
function userptr(e: Env, addr: number, size: number, blobId: number, f = e.f, p = e.p) {
  const b = blob(e, { blobMem: HOST3D_GUEST, flags: USE_USERPTR, size, userptr: addr, blobId }, f, p);
  const info = ioctl(e, f, p, B.VIRTGPU_RESOURCE_INFO, B.resourceInfo(b.handle));
  return { ...b, resId: new B.R(info.out).u32(4) };
}

const hostObjects = (e: Env) => (e.dev.snapshot().host.objects as { capset8: any[] }).capset8;
const hostCounts = (e: Env) => e.dev.snapshot().host.counts!;

test('shmem: rsp_mem_offset = 16 is written at create, before the guest can map it; other contexts keep the recording host only', (t) => {
  const e = setup();
  t.is(ctxInit(e), 0);
  const b = blob(e, { blobMem: HOST3D, flags: MAPPABLE, size: SHMEM_SIZE, blobId: 0 });
  t.is(b.ret, 0);
  const m = ioctl(e, e.f, e.p, B.VIRTGPU_MAP, B.virtgpuMap(b.handle));
  const target = e.f.map(new B.R(m.out).u64(0), SHMEM_SIZE);
  if (isErr(target)) return t.fail();
  t.deepEqual(H.shmemHeader(target.memory.bytes), { seqno: 0, rspMemOffset: 16, asyncError: 0, globalFaults: 0 });
  // A capset-0 file in the same device: its blob_id 0 blob gets no header and its EXECBUFFER no answer.
  const p2 = e.machine.process(); e.procs.set(p2.pid, p2);
  const f2 = e.dev.open(p2.pid);
  t.is(ctxInit(e, f2, p2, 2), 0);
  const s2 = shmem(e, f2, p2);
  t.deepEqual(H.shmemHeader(s2.bytes), { seqno: 0, rspMemOffset: 0, asyncError: 0, globalFaults: 0 });
  const r = ccmd(e, s2.bytes, H.nop(5, 0), 8, 0, f2, p2);
  t.is(r.ret, 0);
  t.true(r.fence!.signalled, 'the recording host completes it');
  t.is(r.hdr.seqno, 0, 'nobody answers a capset-0 context');
  t.like(hostCounts(e), { contexts: 1, routedContexts: 1 });
  // Every command of both contexts is in the recorded log.
  t.is(e.record.ofType('CTX_CREATE').length, 2);
  t.is(e.record.ofType('SUBMIT_3D').length, 1);
});

test('NOP: ret 0 in an 8-byte reply, seqno after it, before the fence signals and before EXECBUFFER returns', (t) => {
  const { e, shm } = opened();
  const r = ccmd(e, shm, H.nop(77, 64), 16, 64);
  t.is(r.ret, 0);
  t.true(r.fence!.signalled);
  t.deepEqual([...r.slot], [...H.expectedReply(16, H.BARE_RSP, 0)], 'len as preset, ret 0, the rest untouched');
  t.is(r.hdr.seqno, 77);
  t.like(e.ccmds.at(-1)!, { name: 'NOP', seqno: 77, ret: 0 });
});

test('QUERY_INFO/OPEN_KFD: a 4 GiB VM range that is a hole of this client, the same at a second call; reply bytes', (t) => {
  const e = setup();
  ctxInit(e);
  const s = shmem(e);
  const r = ccmd(e, s.bytes, H.queryInfo(3, 8), H.QUERY_INFO_RSP, 8);
  const rr = new B.R(r.slot);
  const start = rr.u64(8), size = rr.u64(16);
  t.is(size, 1n << 32n);
  t.deepEqual([...r.slot], [...H.expectedReply(H.QUERY_INFO_RSP, H.QUERY_INFO_RSP, 0, start)].map((v, i) => (i >= 16 && i < 24 ? r.slot[i]! : v)));
  t.is(new B.R(r.slot.subarray(16, 24)).u64(0), size);
  t.deepEqual(e.p.mappings(Number(start), Number(start + size)), [], 'nothing of the client is there');
  t.is(start % (1n << 32n), 0n);
  const again = ccmd(e, s.bytes, H.queryInfo(4, 8), 40, 8);
  t.is(new B.R(again.slot).u64(8), start, 'the same range; a short preset gets min(host size, preset) bytes');
  t.deepEqual([...s.bytes.subarray(16 + 8 + 40, 16 + 8 + 56)], new Array(16).fill(0xaa), 'nothing past the preset len');
  t.like(hostObjects(e)[0], { vm: { start: Number(start), size: 2 ** 32 } });
});

for (const gen of [80, 312] as const) {
  test(`MEMORY (${gen}-byte requests): ALLOC + CREATE_BLOB {HOST3D, blob_id}, MAP_MEM_TO_GPU, AVAIL_MEM, UNMAP_TO_GPU, FREE byte for byte; GEM_CLOSE drops the allocation`, (t) => {
    const { e, shm, vmStart } = opened();
    const R = H.MEMORY_RSP[gen];
    const size = 3 * PG;
    const a = ccmd(e, shm, H.memory(gen, H.ALLOC, 10, 0, { PreferredNode: 1, AllocFlags: 0x40, SizeInBytes: size, Alignment: gen === 312 ? PG : 0 }, 0, 5), R);
    const handle = new B.R(a.slot).u64(8);
    t.true(Number(handle) >= vmStart && Number(handle) + size <= vmStart + 2 ** 32, 'inside the VM range');
    t.deepEqual([...a.slot], [...H.expectedReply(R, R, 0, handle)]);
    t.is(a.hdr.seqno, 10);
    t.is(hostObjects(e)[0].generation, gen);
    const b = blob(e, { blobMem: HOST3D, flags: MAPPABLE, size, blobId: 5 });
    t.is(b.ret, 0);
    t.like(hostObjects(e)[0].allocations[0], { blobId: 5, addr: Number(handle), size, resId: b.resId });
    const m = ccmd(e, shm, H.memory(gen, H.MAP_MEM_TO_GPU, 11, 0, { MemoryAddress: handle, MemorySizeInBytes: size }), R);
    t.deepEqual([...m.slot], [...H.expectedReply(R, R, 0, handle)], 'alternate_vagpu');
    t.like(hostCounts(e), { gpuMappings: 1, allocations: 1 });
    const av = ccmd(e, shm, H.memory(gen, H.AVAIL_MEM, 12, 0), R);
    t.deepEqual([...av.slot], [...H.expectedReply(R, R, 0, BigInt(8 * 2 ** 30 - size))]);
    const u = ccmd(e, shm, H.memory(gen, H.UNMAP_TO_GPU, 13, 0, { MemoryAddress: handle }), R);
    t.deepEqual([...u.slot], [...H.expectedReply(R, R, 0)]);
    t.like(hostCounts(e), { gpuMappings: 0 });
    const fr = ccmd(e, shm, H.memory(gen, H.FREE, 14, 0), R);
    t.deepEqual([...fr.slot], [...H.expectedReply(R, R, 0)]);
    t.is(ioctl(e, e.f, e.p, B.DRM_IOCTL_GEM_CLOSE, B.gemClose(b.handle)).ret, 0);
    t.like(hostCounts(e), { allocations: 0 }, 'the resource unref released it');
  });

  test(`MEMORY (${gen}-byte requests): MAP_USERPTR, REG_MEM_WITH_FLAG, a +3 sub-range, DEREG_MEM; munmap auto-deletes the BO and its host registration`, (t) => {
    const { e, shm } = opened();
    const R = H.MEMORY_RSP[gen];
    const base = e.p.mmap(4 * PG);
    const u = userptr(e, base, 4 * PG, 2);
    t.is(u.ret, 0);
    const mu = ccmd(e, shm, H.memory(gen, H.MAP_USERPTR, 20, 0, {}, u.resId), R);
    t.deepEqual([...mu.slot], [...H.expectedReply(R, R, 0, BigInt(base), 4)], 'userptr_handle = the page base, npfns');
    const reg = ccmd(e, shm, H.memory(gen, H.REG_MEM_WITH_FLAG, 21, 0, { MemoryAddress: base, MemorySizeInBytes: 4 * PG - 100, MemFlags: 3 }, u.resId), R);
    t.deepEqual([...reg.slot], [...H.expectedReply(R, R, 0)]);
    // A contained sub-range: the kernel answers +3 with the same BO; the library registers base + offset.
    const sub = blob(e, { blobMem: HOST3D_GUEST, flags: USE_USERPTR, size: PG, userptr: base + 2 * PG, blobId: 3 });
    t.is(sub.ret, 3);
    t.is(sub.handle, u.handle);
    t.is(sub.offset, BigInt(2 * PG));
    const reg2 = ccmd(e, shm, H.memory(gen, H.REG_MEM_WITH_FLAG, 22, 0, { MemoryAddress: base + 2 * PG, MemorySizeInBytes: PG, MemFlags: 3 }, u.resId), R);
    t.is(H.reply(reg2.slot).ret, 0);
    const g = ccmd(e, shm, H.memory(gen, H.MAP_MEM_TO_GPU, 23, 0, { MemoryAddress: base + 2 * PG + 12, MemorySizeInBytes: 8 }), R);
    t.is(H.reply(g.slot).v8, BigInt(base + 2 * PG + 12), 'the in-page offset is kept');
    t.like(hostCounts(e), { registrations: 2, gpuMappings: 1 });
    t.deepEqual(hostObjects(e)[0].registrations.map((x: any) => [x.resId, x.addr]), [[u.resId, base], [u.resId, base + 2 * PG]]);
    const d = ccmd(e, shm, H.memory(gen, H.DEREG_MEM, 24, 0, {}, u.resId), R);
    t.deepEqual([...d.slot], [...H.expectedReply(R, R, 0)]);
    t.like(hostCounts(e), { registrations: 0 });
    ccmd(e, shm, H.memory(gen, H.REG_MEM_WITH_FLAG, 25, 0, { MemoryAddress: base, MemorySizeInBytes: 4 * PG, MemFlags: 3 }, u.resId), R);
    t.like(hostCounts(e), { registrations: 1 });
    // The application munmaps registered memory: the notifier deletes the BO, the host drops what it keyed by it.
    e.p.munmap(base, 4 * PG);
    e.dev.service(e.p.pid);
    t.like(hostCounts(e), { registrations: 0, gpuMappings: 0 });
    const dead = ccmd(e, shm, H.memory(gen, H.MAP_USERPTR, 26, 0, {}, u.resId), R);
    t.not(H.reply(dead.slot).ret, 0, 'a dead resource: an error, never a handle');
    t.is(H.reply(dead.slot).v8, 0n);
  });
}

test('MAP_TO_GPU_NODES: 80-byte generation, len ALIGN8(80 + 4n) with node ids from @80; the 312-byte generation gets a non-zero ret', (t) => {
  const { e, shm } = opened();
  const base = e.p.mmap(PG);
  const u = userptr(e, base, PG, 2);
  ccmd(e, shm, H.memory(80, H.REG_MEM_WITH_FLAG, 30, 0, { MemoryAddress: base, MemorySizeInBytes: PG }, u.resId), 24);
  const req = H.memory(80, H.MAP_TO_GPU_NODES, 31, 0, { MemoryAddress: base, MemorySizeInBytes: PG, MemMapFlags: 1, nodes: [1, 2, 3] });
  t.is(req.length, 96);
  const r = ccmd(e, shm, req, 24);
  t.deepEqual([...r.slot], [...H.expectedReply(24, 24, 0, BigInt(base))]);
  t.deepEqual(e.ccmds.at(-1)!.fields.nodes, [1, 2, 3]);
  const { e: e2, shm: s2 } = opened();
  ccmd(e2, s2, H.memory(312, H.AVAIL_MEM, 32, 0), 320); // fixes the generation
  const n = ccmd(e2, s2, H.memory(312, H.MAP_TO_GPU_NODES, 33, 0, { MemoryAddress: base, nodes: [1] }, 0, 0, 320), 320);
  t.not(H.reply(n.slot).ret, 0);
  t.is(n.hdr.seqno, 33, 'answered, never silent');
});

test('several ccmds in one stream are processed in order; seqno ends at the last', (t) => {
  const { e, shm } = opened();
  const a = H.nop(40, 0), b = H.memory(80, H.AVAIL_MEM, 41, 64), c = H.memory(80, H.ALLOC, 42, 128, { SizeInBytes: PG }, 0, 9);
  const stream = new Uint8Array(a.length + b.length + c.length);
  stream.set(a, 0); stream.set(b, a.length); stream.set(c, a.length + b.length);
  const r = submit(e, shm, stream, [{ rspOff: 0, preset: 8 }, { rspOff: 64, preset: 24 }, { rspOff: 128, preset: 24 }]);
  t.is(r.ret, 0);
  t.deepEqual(e.ccmds.slice(-3).map((x) => x.name), ['NOP', 'MEMORY/AVAIL_MEM', 'MEMORY/ALLOC']);
  t.is(H.shmemHeader(shm).seqno, 42);
  t.is(H.reply(shm.slice(16 + 64, 16 + 88)).v8, BigInt(8 * 2 ** 30), 'AVAIL_MEM ran before ALLOC');
  t.is(H.reply(shm.slice(16 + 128, 16 + 152)).ret, 0);
});

test('bad input: wrong len, len outside the stream, rsp_off outside the area, unknown cmd and type, foreign res_id: non-zero ret, async_error, logged once, never silent', (t) => {
  const { e, shm } = opened();
  ccmd(e, shm, H.memory(80, H.AVAIL_MEM, 50, 0), 24); // the generation: 80
  const bad: [string, Uint8Array, number][] = [
    ['wrong MEMORY len', H.memory(80, H.AVAIL_MEM, 51, 0, {}, 0, 0, 84), 24],
    ['wrong QUERY_INFO len', H.queryInfo(52, 0).subarray(0, 120).map((v, i) => (i === 4 ? 120 : v)), H.QUERY_INFO_RSP],
    ['unknown cmd', H.header(99, 16, 53, 0).b, 8],
    ['unknown MEMORY type', H.memory(80, 77, 54, 0), 24],
    ['unknown QUERY_INFO type', H.queryInfo(55, 0, 9), H.QUERY_INFO_RSP],
    ['len past the stream', H.header(H.NOP, 64, 56, 0).b.subarray(0, 16), 8],
  ];
  let errors = H.shmemHeader(shm).asyncError;
  for (const [what, req, preset] of bad) {
    const r = ccmd(e, shm, req, preset);
    t.is(r.ret, 0, `${what}: EXECBUFFER itself succeeds`);
    t.true(r.fence!.signalled, what);
    t.not(H.reply(r.slot).ret, 0, `${what}: non-zero ret`);
    t.is(r.hdr.seqno, new B.R(req).u32(8), `${what}: seqno written`);
    t.is(r.hdr.asyncError, ++errors, `${what}: async_error counts it`);
  }
  // rsp_off outside the response area: nothing written there, async_error and seqno still.
  const far = SHMEM_SIZE - 16 - 4;
  const r = ccmd(e, shm, H.nop(60, far), 8, 0);
  t.is(r.hdr.seqno, 60);
  t.is(r.hdr.asyncError, ++errors);
  const r2 = ccmd(e, shm, H.nop(61, 0xffff_fff0), 8, 0);
  t.is(r2.hdr.seqno, 61);
  // A res_id that is another context's.
  const p2 = e.machine.process(); e.procs.set(p2.pid, p2);
  const f2 = e.dev.open(p2.pid);
  ctxInit(e, f2, p2);
  const other = userptr(e, p2.mmap(PG), PG, 2, f2, p2);
  const fr = ccmd(e, shm, H.memory(80, H.MAP_USERPTR, 62, 0, {}, other.resId), 24);
  t.not(H.reply(fr.slot).ret, 0);
  t.is(H.reply(fr.slot).v8, 0n);
  t.true(fr.hdr.asyncError > errors);
  // Each kind logged once, whatever the repeats.
  ccmd(e, shm, H.header(99, 16, 63, 0).b, 8);
  ccmd(e, shm, H.header(98, 16, 64, 0).b, 8);
  const lines = e.logs.filter((l) => l.includes('hsakmt host'));
  t.is(lines.filter((l) => l.includes('unknown ccmd:')).length, 1);
  t.is(lines.filter((l) => l.includes('wrong len')).length, 1);
  t.is(lines.filter((l) => l.includes('rsp_off outside')).length, 1);
  t.is(lines.filter((l) => l.includes("not this context's")).length, 1);
});

test('bad input: a request before the shmem exists is logged once, its fence still signals; the server goes on', (t) => {
  const e = setup();
  ctxInit(e);
  const fds = new Fds();
  const at = e.p.mmap(PG);
  e.p.write(at, H.nop(1, 0));
  for (let i = 0; i < 2; i++) t.is(ioctl(e, e.f, e.p, B.VIRTGPU_EXECBUFFER, B.execbuffer({ flags: RING_IDX | FENCE_FD_OUT, size: 16, command: at }), fds).ret, 0);
  t.true(fds.last!.signalled);
  t.is(e.logs.filter((l) => l.includes('before the shmem')).length, 1);
  t.like(hostObjects(e)[0], { lostBeforeShmem: 2 });
  const s = shmem(e);
  t.is(ccmd(e, s.bytes, H.nop(2, 0), 8).hdr.seqno, 2, 'answers once the shmem exists');
});

test('fault injection: a named ccmd fails with a non-zero ret without acting; a delayed fence signals later, after the reply and seqno', (t) => {
  const later: (() => void)[] = [];
  const { e, shm } = opened({ fail: ['MEMORY/ALLOC'], delayFence: (done) => later.push(done) });
  later.splice(0).forEach((d) => d());
  const a = ccmd(e, shm, H.memory(80, H.ALLOC, 70, 0, { SizeInBytes: PG }, 0, 4), 24);
  t.not(H.reply(a.slot).ret, 0);
  t.like(hostCounts(e), { allocations: 0 });
  t.is(e.ccmds.at(-1)!.error, 'injected');
  t.is(a.hdr.seqno, 70, 'reply and seqno are written at once');
  t.false(a.fence!.signalled, 'the fence waits');
  t.like(e.dev.counts(), { fences: 1 });
  later.splice(0).forEach((d) => d());
  t.true(a.fence!.signalled);
  t.like(e.dev.counts(), { fences: 0 });
});

test('close: every host object and context goes with the file; counts back to zero on both sides', (t) => {
  const { e, shm } = opened();
  const base = e.p.mmap(2 * PG);
  const u = userptr(e, base, 2 * PG, 2);
  ccmd(e, shm, H.memory(80, H.REG_MEM_WITH_FLAG, 80, 0, { MemoryAddress: base, MemorySizeInBytes: 2 * PG }, u.resId), 24);
  ccmd(e, shm, H.memory(80, H.MAP_MEM_TO_GPU, 81, 0, { MemoryAddress: base, MemorySizeInBytes: 2 * PG }), 24);
  const al = ccmd(e, shm, H.memory(80, H.ALLOC, 82, 0, { SizeInBytes: PG }, 0, 3), 24);
  blob(e, { blobMem: HOST3D, flags: MAPPABLE, size: PG, blobId: 3 });
  t.like(hostCounts(e), { contexts: 1, registrations: 1, gpuMappings: 1, allocations: 1 });
  t.true(H.reply(al.slot).v8 > 0n);
  e.f.close();
  t.deepEqual(hostCounts(e), { routedContexts: 0, routedResources: 0, contexts: 0, resources: 0, registrations: 0, gpuMappings: 0, allocations: 0 });
  t.like(e.dev.counts(), { files: 0, handles: 0, resources: 0, contexts: 0, blobMemory: 0, fences: 0 });
});

for (const gen of [80, 312] as const) {
  test(`requests (${gen}-byte): every field the note's offsets place is what the host decodes (trace fields), tail included`, (t) => {
    const { e, shm } = opened();
    const R = H.MEMORY_RSP[gen];
    const last = () => e.ccmds.at(-1)!;
    ccmd(e, shm, H.memory(gen, H.ALLOC, 90, 0, { PreferredNode: 7, AllocFlags: 0x1234, SizeInBytes: 0x3000, Alignment: gen === 312 ? 0x10000 : 0 }, 0, 0x77), R);
    t.deepEqual(last().fields, { PreferredNode: 7, MemFlags: 0x1234, SizeInBytes: '0x3000', ...(gen === 312 ? { Alignment: '0x10000' } : {}), blob_id: '0x77', res_id: 0 });
    if (gen === 312) t.is(Number(H.reply(shm.slice(16, 40)).v8) % 0x10000, 0, 'the 312-byte ALLOC honours Alignment');
    ccmd(e, shm, H.memory(gen, H.REG_MEM_WITH_FLAG, 91, 0, { MemoryAddress: 0x1122334455, MemorySizeInBytes: 0x6677, MemFlags: 0x99 }, 0x42), R);
    t.like(last().fields, { MemoryAddress: '0x1122334455', MemorySizeInBytes: '0x6677', MemFlags: 0x99, res_id: 0x42 });
    ccmd(e, shm, H.memory(gen, H.MAP_MEM_TO_GPU, 92, 0, { MemoryAddress: 0xabc000, MemorySizeInBytes: 0x1000, need_create_bo: 1 }), R);
    t.like(last().fields, { MemoryAddress: '0xabc000', MemorySizeInBytes: '0x1000', need_create_bo: 1 });
    ccmd(e, shm, H.memory(gen, H.UNMAP_TO_GPU, 93, 0, { MemoryAddress: 0xdef000 }), R);
    t.like(last().fields, { MemoryAddress: '0xdef000' });
    ccmd(e, shm, H.memory(gen, H.MAP_USERPTR, 94, 0, {}, 0x31), R);
    t.like(last().fields, { res_id: 0x31 });
    if (gen === 80) {
      ccmd(e, shm, H.memory(80, H.MAP_TO_GPU_NODES, 95, 0, { MemoryAddress: 0x5000, MemorySizeInBytes: 0x2000, MemMapFlags: 0x1f, nodes: [4, 5] }), R);
      t.like(last().fields, { MemoryAddress: '0x5000', MemorySizeInBytes: '0x2000', MemMapFlags: 0x1f, NumberOfNodes: '0x2', nodes: [4, 5] });
    }
    const q = ccmd(e, shm, H.queryInfo(96, 0, H.OPEN_KFD, 0x7777_0000), H.QUERY_INFO_RSP);
    t.like(last().fields, { type: 1, cur_vm_start: '0x77770000' });
    t.is(q.hdr.seqno, 96);
  });
}

test('tables: sizes and tail offsets as the protocol note gives them', (t) => {
  t.is(hsakmt.vhsakmt_shmem.size, 16);
  t.is(hsakmt.vhsakmt_ccmd_req.size, 16);
  t.is(hsakmt.vhsakmt_ccmd_query_info_req.size, 128);
  t.is(hsakmt.vhsakmt_ccmd_query_info_req.offsetOf('type'), 48);
  t.is(hsakmt.vhsakmt_ccmd_query_info_req.offsetOf('cur_vm_start'), 56);
  t.is(hsakmt.vhsakmt_ccmd_query_info_rsp.size, 424);
  for (const [gen, blob, type, res] of [[80, 64, 72, 76], [312, 296, 304, 308]] as const) {
    const L = hsakmt.vhsakmt_ccmd_memory_req[gen];
    t.deepEqual([L.size, L.offsetOf('blob_id'), L.offsetOf('type'), L.offsetOf('res_id')], [gen, blob, type, res]);
    t.is(hsakmt.MEMORY_RSP_SIZE[gen], H.MEMORY_RSP[gen]);
  }
  t.is(hsakmt.UNION_AT + hsakmt.alloc_body_312.offsetOf('Alignment'), 40);
  t.is(hsakmt.UNION_AT + hsakmt.map_to_gpu_nodes_body.offsetOf('MemMapFlags'), 40);
  t.is(hsakmt.UNION_AT + hsakmt.map_to_gpu_nodes_body.offsetOf('NumberOfNodes'), 48);
  t.is(hsakmt.UNION_AT + hsakmt.reg_mem_with_flag_body.offsetOf('MemFlags'), 32);
});

test('fuzz: random request streams (headers, lens, rsp_offs, bodies) never throw, always return, always signal; the host stays consistent', (t) => {
  const { e, shm } = opened();
  const word = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 80, 84, 128, 312, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
  const ccmdArb = fc.record({ cmd: fc.oneof(fc.constantFrom(1, 2, 4, 99), word), len: fc.oneof(fc.constantFrom(16, 80, 88, 128, 312, 320), word), rspOff: fc.oneof(fc.constantFrom(0, 8, 64, SHMEM_SIZE - 24), word), body: fc.uint8Array({ maxLength: 330 }) });
  fc.assert(fc.property(fc.array(ccmdArb, { minLength: 1, maxLength: 4 }), (cs) => {
    const parts = cs.map((c) => {
      const b = new Uint8Array(16 + c.body.length);
      b.set(c.body, 16);
      new B.W(16).u32(0, c.cmd).u32(4, c.len).u32(8, 1000).u32(12, c.rspOff).b.forEach((v, i) => { b[i] = v; });
      return b;
    });
    const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { stream.set(p, o); o += p.length; }
    const r = submit(e, shm, stream, []);
    return r.ret === 0 && r.fence!.signalled === true;
  }), { numRuns: 300 });
  t.is(H.shmemHeader(shm).rspMemOffset, 16, 'the header survives');
  t.false(e.logs.some((l) => l.includes('BUG')), e.logs.filter((l) => l.includes('BUG')).join('\n'));
  e.f.close();
  t.like(hostCounts(e), { contexts: 0, resources: 0, registrations: 0, gpuMappings: 0, allocations: 0 });
});
