// The preload session at the wire level (docs/preload-protocol.md), over real socket pairs in this process, with a
// stub device: OPEN hands a node fd; an IOCTL without the struct gets a NEED for it; the generic fd items — "need
// fd N" (a plan naming a client fd is answered NEED until the request attaches it, and the handler then gets it) and
// "install" (a handler's fd travels with the DONE, its number's place named by {range, at}); frames from another
// process's credentials are refused. Expected bytes are read with offsets written from the C header (wire.h).
import test from 'ava';
import * as fs from 'fs';
import { PreloadSession, type PreloadSessionOptions, type PreloadUser } from '../../cuse-dev/session/preload';
import type { CoreDevice, CoreFile } from '../../cuse-dev/session/core-api';
import { loadUffd, type UnixMessage } from '../../uffd';
import { loadTestkit } from '../../uffd/load';
import { EACCES, EBADF, EINVAL, ENODEV } from '../../core/errno';

const u = loadUffd();
const LE = true;

/** struct vge_req (32 bytes) + ranges {u64 addr, u32 len, u32 pad} + fd items {i32 fd, u32 attached} + data. */
function req(op: number, seq: number, o: { flags?: number; cmd?: number; arg?: number; ranges?: [number, Uint8Array][]; items?: [number, boolean][]; populated?: [number, number][] } = {}): Uint8Array {
  const ranges = o.ranges ?? [], items = o.items ?? [], populated = o.populated ?? [];
  const dataLen = ranges.reduce((n, [, d]) => n + d.length, 0);
  const b = new Uint8Array(32 + (ranges.length + populated.length) * 16 + items.length * 8 + dataLen);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, op, LE); dv.setUint32(4, seq, LE); dv.setUint32(8, ranges.length + populated.length, LE); dv.setUint32(12, items.length, LE);
  dv.setUint32(16, o.flags ?? 0, LE); dv.setUint32(20, o.cmd ?? 0, LE); dv.setBigUint64(24, BigInt(o.arg ?? 0), LE);
  let at = 32;
  for (const [addr, d] of ranges) { dv.setBigUint64(at, BigInt(addr), LE); dv.setUint32(at + 8, d.length, LE); at += 16; }
  for (const [addr, len] of populated) { dv.setBigUint64(at, BigInt(addr), LE); dv.setUint32(at + 8, len, LE); dv.setUint32(at + 12, 1, LE); at += 16; }
  for (const [fd, att] of items) { dv.setInt32(at, fd, LE); dv.setUint32(at + 4, att ? 1 : 0, LE); at += 8; }
  for (const [, d] of ranges) { b.set(d, at); at += d.length; }
  return b;
}

interface Reply { kind: number; seq: number; result: number; err: number; nranges: number; nfds: number; body: Buffer; fds: number[] }
function decode(m: UnixMessage): Reply {
  const dv = new DataView(m.data.buffer, m.data.byteOffset, m.data.length);
  return { kind: dv.getUint32(0, LE), seq: dv.getUint32(4, LE), result: dv.getInt32(8, LE), err: dv.getUint32(12, LE), nranges: dv.getUint32(16, LE), nfds: dv.getUint32(20, LE), body: m.data.subarray(32), fds: m.fds };
}

/** The next message on fd, when the event loop says it is readable (fd watches keep no process alive: a timer does meanwhile). */
function next(fd: number): Promise<Reply> {
  const alive = setInterval(() => undefined, 1000);
  return new Promise((res) => {
    const w = u.fdWatch(fd, () => { const m = u.unixRecv(fd, 1 << 18, 8); if (m) { u.fdUnwatch(w); clearInterval(alive); res(decode(m)); } });
  });
}

const CMD = 0xc0086499; // _IOWR('d', 0x99, 8 bytes)
const ARG = 0x10000;

function harness(plan: (file: CoreFile) => { fds?: number[]; populate?: { addr: number; len: number; write: boolean }[]; in?: { addr: number; len: number }[] }, ioctl: (user: PreloadUser) => number, map?: CoreFile['map'], readClient?: PreloadSessionOptions['readClient'], more: { pidfd?: () => number } = {}) {
  const logged: string[] = [];
  const keys = new Set<string>(); // as the server's LogLimiter.once: one line per key
  const file: CoreFile = { ioctl: (_pid, _cmd, argIn, user) => ({ result: ioctl(user as PreloadUser), out: Uint8Array.from(argIn) }), close: () => undefined, map };
  const dev = {
    open: () => file,
    plan: (_cmd: number, _argIn: Uint8Array | null, f: CoreFile) => ({ inSize: 8, outSize: 8, in: [], out: [], ...plan(f) }),
    service: () => undefined, counts: () => ({}), snapshot: () => ({}), shutdown: () => undefined,
  } as unknown as CoreDevice;
  const session = new PreloadSession({ dev, u, readClient, logOnce: (k, m) => { if (!keys.has(k)) { keys.add(k); logged.push(m); } }, isThreadOf: () => true, parentOf: () => process.ppid });
  const [ours, theirs] = u.unixPair();
  const answer = session.adoptLane({ kind: 'lane', args: [String(process.pid)], pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), fds: [], takePidfd: more.pidfd ?? (() => -1), adopt: () => ours });
  return { session, lane: theirs, answer, logged };
}

async function open(lane: number): Promise<number> {
  u.unixSendFds(lane, req(1, 1, { flags: 2 }), []);
  const r = await next(lane);
  if (r.kind !== 1 || r.err !== 0 || r.fds.length !== 1) throw new Error(`OPEN answered ${JSON.stringify({ ...r, body: undefined })}`);
  return r.fds[0]!;
}

test('OPEN hands a node fd; an IOCTL without its struct gets a NEED for {arg, 8}; with it, a DONE with the struct out', async (t) => {
  const h = harness(() => ({}), () => 0);
  t.is(h.answer, 'OK 1');
  const node = await open(h.lane);
  u.unixSendFds(h.lane, req(2, 2, { cmd: CMD, arg: ARG }), [node]);
  const need = await next(h.lane);
  t.deepEqual([need.kind, need.seq, need.nranges, need.nfds], [2, 2, 1, 0]);
  t.is(need.body.readBigUInt64LE(0), BigInt(ARG));
  t.is(need.body.readUInt32LE(8), 8);
  const struct = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  u.unixSendFds(h.lane, req(2, 3, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  const done = await next(h.lane);
  t.deepEqual([done.kind, done.seq, done.result, done.err, done.nranges, done.nfds], [1, 3, 0, 0, 1, 0]);
  t.deepEqual([...done.body.subarray(16, 24)], [...struct]);
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('embedded ranges: read from the client by the server where it may (one round trip), NEED after EFAULT for that request, NEED for good after a refusal', async (t) => {
  const EMB = 0x20000;
  const struct = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  let answer: Uint8Array | string = 'EFAULT';
  const asked: { pid: number; ranges: { addr: number; len: number }[] }[] = [];
  let seen = '';
  const h = harness(() => ({ in: [{ addr: EMB, len: 4 }] }), (user) => { const r = user.read(EMB, 4); seen = r instanceof Uint8Array ? [...r].join(',') : 'fault'; return 7; }, undefined,
    (pid, ranges) => { asked.push({ pid, ranges: ranges.map((r) => ({ ...r })) }); return answer; });
  const node = await open(h.lane);
  const send = async (seq: number): Promise<Reply> => { u.unixSendFds(h.lane, req(2, seq, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]); return next(h.lane); };
  // A bad pointer: this request is NEED (the client's own read answers EFAULT), reading stays on.
  const n1 = await send(2);
  t.deepEqual([n1.kind, n1.nranges], [2, 2]);
  t.deepEqual(asked, [{ pid: process.pid, ranges: [{ addr: ARG, len: 8 }, { addr: EMB, len: 4 }] }]);
  // Readable: one frame, DONE, the handler got the bytes the server read.
  answer = Uint8Array.from([...struct, 9, 8, 7, 6]);
  const d = await send(3);
  t.deepEqual([d.kind, d.result, d.err], [1, 7, 0]);
  t.is(seen, '9,8,7,6');
  t.is(h.session.stats.peeks, 1);
  // Refused (another uid, non-dumpable, Yama): NEED, logged once, and the lane never asks the kernel again.
  answer = 'EPERM';
  const n2 = await send(4);
  t.is(n2.kind, 2);
  t.is(asked.length, 3);
  const n3 = await send(5);
  t.is(n3.kind, 2);
  t.is(asked.length, 3);
  t.is(h.logged.filter((l) => l.includes('EPERM')).length, 1);
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('embedded ranges read from this process for real (process_vm_readv, the pidfd checked after): bytes of mapped memory; a PROT_NONE page is EFAULT to the kernel, so NEED, never its bytes', async (t) => {
  // /proc/PID/mem would read the PROT_NONE page (it reads with FOLL_FORCE): a pointer into a reservation must not.
  const tk = loadTestkit();
  const emb = Buffer.from([9, 8, 7, 6]);
  const EMB = tk.bufferAddress(emb);
  let seen = '';
  let planned = { addr: EMB, len: 4 };
  const h = harness(() => ({ in: [planned] }), (user) => { const r = user.read(planned.addr, 4); seen = r instanceof Uint8Array ? [...r].join(',') : 'fault'; return 7; }, undefined,
    (pid, ranges) => { try { return u.processVmRead(pid, [...ranges]); } catch (e) { return (e as NodeJS.ErrnoException).code ?? 'EIO'; } },
    { pidfd: () => u.pidfdOpen(process.pid) });
  const node = await open(h.lane);
  const structBuf = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const send = async (seq: number): Promise<Reply> => { u.unixSendFds(h.lane, req(2, seq, { cmd: CMD, arg: tk.bufferAddress(structBuf) }), [node]); return next(h.lane); };
  const d = await send(2);
  t.deepEqual([d.kind, d.result, d.err], [1, 7, 0], 'one frame, DONE');
  t.is(seen, '9,8,7,6');
  t.is(h.session.stats.peeks, 2, 'the struct, then the range it points to');
  const hole = tk.mmap(0, 4096, 0, tk.constants.MAP_PRIVATE | tk.constants.MAP_ANONYMOUS, -1, 0);
  try {
    planned = { addr: hole, len: 4 };
    t.is((await send(3)).kind, 2, 'a PROT_NONE page: NEED (the library\'s own read then answers EFAULT)');
    planned = { addr: EMB, len: 4 };
    t.is((await send(4)).kind, 1, 'the next request is read again');
  } finally {
    tk.munmap(hole, 4096);
  }
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('"need fd N": NEED names fd N until the request attaches it; the handler gets a copy of the client\'s fd, closed after', async (t) => {
  const pipe = fs.openSync('/dev/null', 'r');
  let seen = -2;
  const h = harness(() => ({ fds: [pipe] }), (user) => { const f = user.clientFd(pipe); seen = f === undefined ? -1 : fs.fstatSync(f).rdev; return 0; });
  const node = await open(h.lane);
  const struct = new Uint8Array(8);
  u.unixSendFds(h.lane, req(2, 4, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  const need = await next(h.lane);
  t.deepEqual([need.kind, need.nranges, need.nfds], [2, 1, 1]);
  t.is(need.body.readInt32LE(16), pipe, 'the fd number wanted');
  u.unixSendFds(h.lane, req(2, 5, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]], items: [[pipe, true]] }), [node, pipe]);
  const done = await next(h.lane);
  t.deepEqual([done.kind, done.err], [1, 0]);
  t.is(seen, fs.fstatSync(pipe).rdev, 'the handler saw the client\'s fd');
  fs.closeSync(pipe);
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('"install": the handler\'s fd travels with the DONE, {range 0, at 4} says where its number goes', async (t) => {
  const h = harness(() => ({}), (user) => { user.installFd(fs.openSync('/dev/null', 'r'), 4); return 0; });
  const node = await open(h.lane);
  u.unixSendFds(h.lane, req(2, 6, { cmd: CMD, arg: ARG, ranges: [[ARG, new Uint8Array(8)]] }), [node]);
  const done = await next(h.lane);
  t.deepEqual([done.kind, done.err, done.nranges, done.nfds, done.fds.length], [1, 0, 1, 1, 1]);
  t.deepEqual([done.body.readUInt32LE(16), done.body.readUInt32LE(20)], [0, 4], 'vge_install {range, at} after the range');
  t.is(fs.fstatSync(done.fds[0]!).rdev, fs.statSync('/dev/null').rdev);
  fs.closeSync(done.fds[0]!);
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('a node fd hang-up releases the file; a frame whose credentials are not the lane\'s is EPERM, logged once', async (t) => {
  let closed = 0;
  const h = harness(() => ({}), () => 0);
  const node = await open(h.lane);
  t.is(h.session.openFiles(), 1);
  u.close(node);
  const until = Date.now() + 5000;
  while (h.session.openFiles() > 0 && Date.now() < until) await new Promise((r) => setImmediate(r));
  t.is(h.session.openFiles(), 0);
  t.is(h.session.stats.releases, 1);
  closed++;
  // The lane belongs to another pid than ours: every frame on it is refused.
  const [ours, theirs] = u.unixPair();
  h.session.adoptLane({ kind: 'lane', args: ['1'], pid: 1, uid: process.getuid!(), gid: 0, fds: [], takePidfd: () => -1, adopt: () => ours });
  for (let i = 0; i < 2; i++) {
    u.unixSendFds(theirs, req(1, 9), []);
    const r = await next(theirs);
    t.deepEqual([r.kind, r.err], [1, 1], 'EPERM');
  }
  t.is(h.logged.filter((l) => l.includes('came from pid')).length, 1);
  h.session.closeAll();
  u.close(theirs);
  u.close(h.lane);
  t.is(closed, 1);
});

test('VGE_IOCTL_SAME_FILE names the file the lane\'s previous IOCTL carried; on a lane that carried none it is EBADF', async (t) => {
  const h = harness(() => ({}), () => 0);
  const node = await open(h.lane);
  const struct = new Uint8Array(8);
  u.unixSendFds(h.lane, req(2, 10, { flags: 1, cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), []);
  t.deepEqual((({ kind, err }) => [kind, err])(await next(h.lane)), [1, 9], 'EBADF before any node fd was carried');
  u.unixSendFds(h.lane, req(2, 11, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  t.is((await next(h.lane)).err, 0);
  u.unixSendFds(h.lane, req(2, 12, { flags: 1, cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), []);
  const r = await next(h.lane);
  t.deepEqual([r.kind, r.seq, r.err, r.nranges], [1, 12, 0, 1]);
  u.unixSendFds(h.lane, req(2, 13, { flags: 4, cmd: CMD, arg: ARG }), []);
  t.is((await next(h.lane)).err, 22, 'unknown flag bits: EINVAL');
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('populate: a plan\'s pages come back in the NEED flagged POPULATE_WRITE, and a request naming them (no bytes) runs', async (t) => {
  let ran = 0;
  const h = harness(() => ({ populate: [{ addr: 0x200000, len: 0x3000, write: true }] }), () => { ran++; return 3; });
  const node = await open(h.lane);
  const struct = new Uint8Array(8);
  u.unixSendFds(h.lane, req(2, 20, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  const need = await next(h.lane);
  t.deepEqual([need.kind, need.nranges], [2, 2]);
  t.deepEqual([need.body.readBigUInt64LE(16), need.body.readUInt32LE(24), need.body.readUInt32LE(28)], [0x200000n, 0x3000, 1]);
  t.is(ran, 0, 'the handler waits for the client\'s own populate');
  u.unixSendFds(h.lane, req(2, 21, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]], populated: [[0x200000, 0x3000]] }), [node]);
  const done = await next(h.lane);
  t.deepEqual([done.kind, done.err, done.result], [1, 0, 3]);
  t.is(ran, 1);
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
});

test('MAP {arg offset, cmd pages}: the object\'s memfd travels with the DONE, the offset inside it in aux; the device\'s errno otherwise; malformed MAPs answered', async (t) => {
  const memfd = fs.openSync('/dev/null', 'r'); // stands for the object's memfd: the session sends a copy
  const asked: [bigint, number][] = [];
  const h = harness(() => ({}), () => 0, (offset, length) => {
    asked.push([offset, length]);
    return offset === 0x100000000n ? { memory: { size: 8192, bytes: new Uint8Array(0), fd: memfd, release: () => undefined }, offset: 4096, resId: 2 } : EACCES;
  });
  const node = await open(h.lane);
  u.unixSendFds(h.lane, req(3, 7, { arg: 0x100000000, cmd: 1, flags: 3 }), [node]);
  const ok = await next(h.lane);
  t.deepEqual([ok.kind, ok.seq, ok.err, ok.fds.length], [1, 7, 0, 1]);
  t.is(new DataView(ok.body.buffer, ok.body.byteOffset - 32).getBigUint64(24, LE), 4096n, 'aux: the offset inside the memfd');
  t.is(fs.fstatSync(ok.fds[0]!).rdev, fs.statSync('/dev/null').rdev);
  fs.closeSync(ok.fds[0]!);
  t.deepEqual(asked, [[0x100000000n, 4096]], 'length in pages');
  u.unixSendFds(h.lane, req(3, 8, { arg: 0x200000000, cmd: 1 }), [node]);
  t.deepEqual(await next(h.lane).then((r) => [r.err, r.fds.length]), [EACCES.errno, 0], 'the device\'s errno');
  u.unixSendFds(h.lane, req(3, 9, { arg: 0x100000000, cmd: 1 }), []);
  t.is((await next(h.lane)).err, EBADF.errno, 'no node fd');
  const [x, y] = u.unixPair();
  u.unixSendFds(h.lane, req(3, 10, { arg: 0x100000000, cmd: 1 }), [x]);
  t.is((await next(h.lane)).err, ENODEV.errno, 'a socket that is no node fd');
  u.unixSendFds(h.lane, req(3, 11, { arg: 0x100000000, cmd: 1, items: [[5, false]] }), [node]);
  t.is((await next(h.lane)).err, EINVAL.errno, 'a MAP longer than its header');
  t.is(asked.length, 2);
  for (const f of [x, y, node, h.lane]) u.close(f);
  fs.closeSync(memfd);
  h.session.closeAll();
});

test('a lane the kernel will not watch (fdSetAdd fails) is refused ERR ENOMEM, logged once; its fd and pidfd are closed after the answer', async (t) => {
  const logged: string[] = [];
  const dev = { open: () => { throw new Error('no file'); }, plan: () => ({ inSize: 0, outSize: 0, in: [], out: [] }), service: () => undefined, counts: () => ({}), snapshot: () => ({}), shutdown: () => undefined } as unknown as CoreDevice;
  const failing = { ...u, fdSetAdd: () => { throw Object.assign(new Error('epoll_ctl(ADD): ENOSPC'), { code: 'ENOSPC' }); } } as typeof u;
  const session = new PreloadSession({ dev, u: failing, readClient: () => 'EPERM', logOnce: (_k, m) => logged.push(m), isThreadOf: () => true });
  const [ours, theirs] = u.unixPair();
  const pidfd = u.pidfdOpen(process.pid);
  const answer = session.adoptLane({ kind: 'lane', args: [String(process.pid)], pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), fds: [], takePidfd: () => pidfd, adopt: () => ours });
  t.is(answer, 'ERR ENOMEM');
  t.is(session.stats.lanes, 0);
  t.is(session.stats.refused, 1);
  t.true(logged.some((l) => l.includes('ENOSPC')));
  t.throws(() => u.sockCookie(pidfd) ?? u.close(pidfd), undefined, 'the pidfd is closed at once');
  t.not(u.sockCookie(ours), null, 'the lane stays open until the channel has answered on it');
  await new Promise((r) => setImmediate(r));
  t.is(u.sockCookie(ours), null, 'then it is closed');
  session.closeAll();
  u.close(theirs);
});

test('lanes are served in turn: a lane with 100 frames queued does not hold back another lane\'s one frame', async (t) => {
  const h = harness(() => ({}), () => 0);
  const [ours2, lane2] = u.unixPair();
  t.is(h.session.adoptLane({ kind: 'lane', args: [String(process.pid)], pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), fds: [], takePidfd: () => -1, adopt: () => ours2 }), 'OK 1');
  const node = await open(h.lane);
  const struct = new Uint8Array(8);
  u.unixSendFds(h.lane, req(2, 1, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  t.is((await next(h.lane)).err, 0);
  // 100 frames queued on the first lane, then one on the second (its node fd attached).
  const N = 100;
  for (let i = 0; i < N; i++) u.unixSendFds(h.lane, req(2, 100 + i, { flags: 1, cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), []);
  u.unixSendFds(lane2, req(2, 7, { cmd: CMD, arg: ARG, ranges: [[ARG, struct]] }), [node]);
  const r = await next(lane2);
  t.deepEqual([r.kind, r.seq, r.err], [1, 7, 0]);
  // When the second lane's answer arrived, the first lane had had a few of its frames answered, not all of them.
  let before = 0;
  while (u.unixRecv(h.lane, 1 << 16, 8)) before++;
  t.true(before < 10, `${before} of the first lane's ${N} frames were answered before the other lane's one`);
  let rest = 0;
  while (before + rest < N) { await next(h.lane); rest++; while (before + rest < N && u.unixRecv(h.lane, 1 << 16, 8)) rest++; }
  t.is(before + rest, N, 'and every frame is answered');
  u.close(node);
  h.session.closeAll();
  u.close(h.lane);
  u.close(lane2);
});
