// The addon's wrappers on REAL memory of this test process (no mocks). Serial: readers own fds and some calls
// block the JS thread until the reader thread has read the event.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { SyscallError } from '../../uffd/errors';
import { defaultAddonPaths, loadTestkit, loadUffd } from '../../uffd/load';
import type { UffdBinding } from '../../uffd/native-types';
import { READER_RECORD_HEADER_SIZE, UFFD_MSG_SIZE } from '../../uffd/abi';
import { decodeRecords, type TestRecord } from './helpers/native-records';
import { nativeIO } from '../../cuse-dev/session/loop';
import { reservation } from './helpers/reservation';

const u = loadTestkit();
const C = u.constants;
const PAGE = C.PAGE_SIZE;
const E = os.constants.errno;
const RW = C.PROT_READ | C.PROT_WRITE;
const ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS;
const SYS_MADVISE_X86_64 = 28; // arch/x86/entry/syscalls/syscall_64.tbl
const PAGEMAP_UFFD_WP_BIT = 57n; // Documentation/admin-guide/mm/pagemap.rst

const BASE_FEATURES =
  C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP;

// Every mapping lives in the test's reservation: "unmapping" maps PROT_NONE over it, a real munmap is refilled.
const R = reservation();

function mapAnon(pages: number, align = PAGE): number {
  return R.map(pages, { align, touch: false });
}

function touch(addr: number, pages: number): void {
  for (let i = 0; i < pages; i++) u.poke(addr + i * PAGE, Buffer.from([i + 1]));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Watched {
  fd: number;
  addr: number;
  len: number;
  id: number;
  features: bigint;
  ioctls: bigint;
  pending: () => number;
}

/** uffd of this process, registered MODE_WP over `pages` touched pages, with a running reader. */
function watch(pages: number, features = BASE_FEATURES, taskSyscallsPid?: number): Watched {
  const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
  const api = u.uffdApi(fd, features);
  const addr = mapAnon(pages);
  touch(addr, pages);
  const ioctls = u.uffdRegister(fd, addr, pages * PAGE, C.UFFDIO_REGISTER_MODE_WP);
  let pending = 0;
  const id = u.readerStart(fd, taskSyscallsPid === undefined ? {} : { taskSyscallsPid }, () => {
    pending++;
  });
  return { fd, addr, len: pages * PAGE, id, features: api.features, ioctls, pending: () => pending };
}

/** Stop the reader first (closing the uffd drops the registration), then unmapping cannot block. */
function unwatch(w: Watched, mapped: Array<[number, number]> = [[w.addr, w.len]]): Buffer {
  const rest = u.readerStop(w.id);
  for (const [a, l] of mapped) R.unmap(a, l);
  return rest;
}

function vmFlags(addr: number): string {
  const lines = fs.readFileSync('/proc/self/smaps', 'latin1').split('\n');
  let inside = false;
  for (const line of lines) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) inside = BigInt(addr) >= BigInt(`0x${m[1]}`) && BigInt(addr) < BigInt(`0x${m[2]}`);
    else if (inside && line.startsWith('VmFlags:')) return line;
  }
  return '';
}

function pagemapEntry(addr: number): bigint {
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  try {
    const b = Buffer.alloc(8);
    fs.readSync(fd, b, 0, 8, (addr / PAGE) * 8);
    return b.readBigUInt64LE(0);
  } finally {
    fs.closeSync(fd);
  }
}

function exitCode(status: number): number | null {
  return (status & 0x7f) === 0 ? (status >> 8) & 0xff : null;
}

function ops(...steps: number[][]): Float64Array {
  return Float64Array.from(steps.flatMap((s) => [s[0], s[1] ?? 0, s[2] ?? 0, s[3] ?? 0]));
}

/** ava's expectations cannot check `syscall`. */
function throwsSys(t: ExecutionContext, fn: () => unknown, code: string, syscall: string): void {
  const e = t.throws(fn, { instanceOf: SyscallError, code }) as SyscallError | undefined;
  t.is(e?.syscall, syscall);
}

const range = (r: TestRecord) => ({ event: r.event, start: Number(r.a), end: Number(r.b) });

// ---- loading, errors, argument checks ----

test.serial('loadUffd lists every path tried when none loads', (t) => {
  const err = t.throws(() => loadUffd({ paths: ['/nonexistent/a/virtgpu_uffd.node', '/nonexistent/b.node'] }));
  t.regex(err!.message, /\/nonexistent\/a\/virtgpu_uffd\.node: .*Cannot find module/);
  t.regex(err!.message, /\/nonexistent\/b\.node: /);
  const defaults = defaultAddonPaths(path.join('/pkg', 'dist', 'uffd'));
  t.deepEqual(defaults.slice(0, 2), ['/pkg/build/Release/virtgpu_uffd.node', '/pkg/build/Debug/virtgpu_uffd.node']);
  t.true(defaults.includes('/pkg/dist/build/Release/virtgpu_uffd.node'));
});

test.serial('loadUffd returns an injected binding and installs the error class', (t) => {
  let ctor: unknown;
  const fake = { setErrorConstructor: (c: unknown) => (ctor = c) } as unknown as UffdBinding;
  t.is(loadUffd({ binding: fake }), fake);
  t.is(ctor, SyscallError);
});

test.serial('constants match the headers and the record table', (t) => {
  t.is(C.UFFD_MSG_SIZE, UFFD_MSG_SIZE);
  t.is(C.READER_RECORD_HEADER_SIZE, READER_RECORD_HEADER_SIZE);
  t.is(C.UFFD_EVENT_UNMAP, 0x16);
  t.is(C.UFFD_FEATURE_MOVE, 1n << 16n);
  t.is(C.UFFDIO_API, 0xc018aa3f);
  t.is(C.UFFDIO_REGISTER, 0xc020aa00);
  t.is(C.MADV_COLLAPSE, 25);
  t.is(C.USER_REGS_SIZE, 27 * 8);
  t.is(C.USER_REGS_OFFSETS.orig_rax, 15 * 8);
  t.is(C.USER_REGS_OFFSETS.rip, 16 * 8);
  t.is(C.USER_REGS_OFFSETS.rsp, 19 * 8);
  t.is(C.SYS_madvise, SYS_MADVISE_X86_64);
});

test.serial('native failures are SyscallError with errno, code, syscall', (t) => {
  const addr = mapAnon(1);
  const err = t.throws(() => u.munmap(addr + 1, PAGE), { instanceOf: SyscallError }) as SyscallError;
  t.is(err.errno, E.EINVAL);
  t.is(err.code, 'EINVAL');
  t.is(err.syscall, 'munmap');
  R.unmap(addr, PAGE);
  const e2 = t.throws(() => u.close(1 << 30), { instanceOf: SyscallError }) as SyscallError;
  t.is(e2.code, 'EBADF');
});

test.serial('bad arguments throw TypeError with the usage string', (t) => {
  t.throws(() => u.mmap('x' as unknown as number, PAGE, RW, ANON, -1, 0), { instanceOf: TypeError, message: /usage: mmap\(addr/ });
  t.throws(() => u.munmap(-1, PAGE), { instanceOf: TypeError, message: /non-negative/ });
  t.throws(() => (u.munmap as (a: number) => void)(0), { instanceOf: TypeError, message: /expected 2 arguments/ });
  t.throws(() => u.forkChild(new Float64Array(3)), { instanceOf: TypeError, message: /multiple of 4/ });
});

// ---- memory wrappers ----

test.serial('mmap / poke / peek / mprotect / munmap round trip, bigint addresses accepted', (t) => {
  const addr = mapAnon(2);
  t.is(addr % PAGE, 0);
  u.poke(addr + 10, Buffer.from('hello'));
  t.is(u.peek(addr + 10, 5).toString(), 'hello');
  t.deepEqual([...u.peek(addr, 4)], [0, 0, 0, 0]);
  u.mprotect(addr, PAGE, C.PROT_READ);
  t.is(u.peek(addr + 10, 5).toString(), 'hello');
  u.munmap(BigInt(addr) as unknown as number, 2 * PAGE);
  R.refill(addr, 2 * PAGE); // PROT_NONE again: still a fault for process_vm_readv
  t.throws(() => u.processVmRead(u.getpid(), [{ addr, len: 1 }]), { code: 'EFAULT' });
});

test.serial('mremap grows in place or moves; memfd MAP_SHARED mappings alias', (t) => {
  const addr = mapAnon(1);
  u.poke(addr, Buffer.from([42]));
  const moved = u.mremap(addr, PAGE, 4 * PAGE, C.MREMAP_MAYMOVE);
  if (moved !== addr) R.refill(addr, PAGE); // the old range is a true hole now
  t.is(u.peek(moved, 1)[0], 42);
  if (R.owns(moved, 4 * PAGE)) R.unmap(moved, 4 * PAGE);
  else u.munmap(moved, 4 * PAGE); // the kernel's new mapping is ours until this munmap; never touched again

  const fd = u.memfdCreate('native-test', C.MFD_CLOEXEC);
  fs.ftruncateSync(fd, PAGE);
  const a = R.mapAt(R.take(PAGE), PAGE, RW, C.MAP_SHARED, fd);
  const b = R.mapAt(R.take(PAGE), PAGE, RW, C.MAP_SHARED, fd);
  u.poke(a + 7, Buffer.from('shared'));
  t.is(u.peek(b + 7, 6).toString(), 'shared');
  R.unmap(a, PAGE);
  R.unmap(b, PAGE);
  u.close(fd);
});

test.serial('processMadvise on our own pidfd: MADV_COLD, and MADV_COLLAPSE on an aligned 2 MiB', (t) => {
  const pidfd = u.pidfdOpen(u.getpid());
  const addr = mapAnon(4);
  touch(addr, 4);
  t.is(u.processMadvise(pidfd, [{ addr, len: 4 * PAGE }], C.MADV_COLD), 4 * PAGE);
  R.unmap(addr, 4 * PAGE);

  const HUGE = 2 * 1024 * 1024;
  const aligned = mapAnon(HUGE / PAGE, HUGE);
  for (let off = 0; off < HUGE; off += PAGE) u.poke(aligned + off, Buffer.from([1]));
  try {
    t.is(u.processMadvise(pidfd, [{ addr: aligned, len: HUGE }], C.MADV_COLLAPSE), HUGE);
  } catch (e) {
    // THP "never" or no free huge page: the wrapper still reported a proper errno.
    t.true(e instanceof SyscallError && ['EINVAL', 'EAGAIN', 'ENOMEM'].includes(e.code), String(e));
  }
  R.unmap(aligned, HUGE);
  u.close(pidfd);
});

// ---- process_vm_* ----

test.serial('processVmRead / processVmWrite on our own pid', (t) => {
  const pid = u.getpid();
  const addr = mapAnon(2);
  u.processVmWrite(pid, addr + 100, Buffer.from('abcdef'));
  t.is(u.peek(addr + 100, 6).toString(), 'abcdef');
  const got = u.processVmRead(pid, [
    { addr: addr + 100, len: 3 },
    { addr: addr + 103, len: 0 },
    { addr: addr + 103 + PAGE - 103, len: 2 },
    { addr: addr + 103, len: 3 },
  ]);
  t.is(got.toString('latin1'), 'abc\0\0def');
  R.unmap(addr, 2 * PAGE);
});

test.serial('processVmWritev batches more than IOV_MAX iovecs and round-trips through processVmRead', (t) => {
  const pid = u.getpid();
  const addr = mapAnon(2);
  const n = C.IOV_MAX + 476; // 1500: two process_vm_writev calls
  const remote = Array.from({ length: n }, (_, i) => ({ addr: addr + i * 5, len: 4 }));
  const data = Buffer.alloc(n * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  u.processVmWritev(pid, remote, data);
  const mem = u.peek(addr, 2 * PAGE);
  for (let i = 0; i < n; i++) t.true(mem.subarray(i * 5, i * 5 + 4).equals(data.subarray(i * 4, i * 4 + 4)));
  t.true(u.processVmRead(pid, remote).equals(data));
  t.throws(() => u.processVmWritev(pid, remote, data.subarray(1)), { instanceOf: TypeError, message: /sum of remote/ });
  R.unmap(addr, 2 * PAGE);
});

test.serial('process_vm fault after a partial transfer is EFAULT', (t) => {
  const pid = u.getpid();
  const addr = mapAnon(2);
  R.unmap(addr + PAGE, PAGE); // PROT_NONE: a fault, like a hole
  const err = t.throws(() => u.processVmRead(pid, [{ addr, len: 2 * PAGE }]), { instanceOf: SyscallError }) as SyscallError;
  t.is(err.errno, E.EFAULT);
  t.is(err.syscall, 'process_vm_readv');
  t.regex(err.message, new RegExp(`after ${PAGE} of ${2 * PAGE} bytes`));
  throwsSys(t, () => u.processVmWrite(pid, addr + PAGE - 2, Buffer.alloc(4)), 'EFAULT', 'process_vm_writev');
  R.unmap(addr, PAGE);
});

// ---- pidfd, ioctl ----

test.serial('pidfdOpen + pidfdGetfd duplicate one of our own fds; pidfdExited', (t) => {
  const pidfd = u.pidfdOpen(u.getpid());
  const fd = fs.openSync('/dev/null', 'r');
  const dup = u.pidfdGetfd(pidfd, fd);
  t.not(dup, fd);
  t.is(fs.fstatSync(dup).ino, fs.fstatSync(fd).ino);
  t.false(u.pidfdExited(pidfd));
  throwsSys(t, () => u.pidfdGetfd(pidfd, 1 << 20), 'EBADF', 'pidfd_getfd');
  u.close(dup);
  fs.closeSync(fd);
  u.close(pidfd);
});

test.serial('ioctl: Buffer arg, raw pointer arg, errno; ioctlAsync resolves and rejects', async (t) => {
  const devnull = fs.openSync('/dev/null', 'r');
  const err = t.throws(() => u.ioctl(devnull, C.FIONREAD, Buffer.alloc(4)), { instanceOf: SyscallError }) as SyscallError;
  t.is(err.code, 'ENOTTY');
  t.is(err.syscall, 'ioctl');
  const on = Buffer.alloc(4);
  on.writeInt32LE(1);
  t.deepEqual(u.ioctl(devnull, C.FIONBIO, u.bufferAddress(on)), { result: 0 }); // number arg = pointer
  await t.throwsAsync(u.ioctlAsync(devnull, C.FIONREAD, Buffer.alloc(4)), { instanceOf: SyscallError, code: 'ENOTTY' });
  fs.closeSync(devnull);

  for (const mode of ['sync', 'async'] as const) {
    const uffd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
    const api = Buffer.alloc(24); // struct uffdio_api { u64 api, features, ioctls }
    api.writeBigUInt64LE(C.UFFD_API, 0);
    const r = mode === 'sync' ? u.ioctl(uffd, C.UFFDIO_API, api).result : await u.ioctlAsync(uffd, C.UFFDIO_API, api);
    t.is(r, 0);
    t.true((api.readBigUInt64LE(16) & (1n << BigInt(C._UFFDIO_REGISTER))) !== 0n);
    u.close(uffd);
  }
});

// ---- fork, wait, ptrace ----

test.serial('forkChild runs ops in a COW child; waitpid reports exit code and WNOHANG', (t) => {
  const addr = mapAnon(1);
  u.poke(addr, Buffer.from([5]));
  const pid = u.forkChild(ops([C.FORK_OP_SLEEP_MS, 30], [C.FORK_OP_WRITE_U8, addr, 9], [C.FORK_OP_READ_U8, addr], [C.FORK_OP_EXIT, 7]));
  t.true(pid > 0);
  t.deepEqual(u.waitpid(pid, C.WNOHANG), { pid: 0, status: 0 });
  const w = u.waitpid(pid, 0);
  t.is(w.pid, pid);
  t.is(exitCode(w.status), 7);
  t.is(u.peek(addr, 1)[0], 5); // the child's write hit its own copy

  const bad = u.forkChild(ops([C.FORK_OP_MUNMAP, addr + 1, PAGE]));
  t.is(exitCode(u.waitpid(bad, 0).status), C.FORK_FAIL_BASE + 0);
  t.is(exitCode(u.waitpid(u.forkChild(new Float64Array(0)), 0).status), 0);
  throwsSys(t, () => u.waitpid(pid, C.WNOHANG), 'ECHILD', 'waitpid');
  R.unmap(addr, PAGE);
});

test.serial('pidfdExited turns true when a child exits', async (t) => {
  const pid = u.forkChild(ops([C.FORK_OP_SLEEP_MS, 20], [C.FORK_OP_EXIT, 3]));
  const pidfd = u.pidfdOpen(pid);
  t.false(u.pidfdExited(pidfd));
  const deadline = Date.now() + 1000;
  while (!u.pidfdExited(pidfd) && Date.now() < deadline) await sleep(2);
  t.true(u.pidfdExited(pidfd));
  t.is(exitCode(u.waitpid(pid, 0).status), 3);
  u.close(pidfd);
});

test.serial('ptrace SEIZE/INTERRUPT, regs, PEEK/POKE and process_vm on a stopped child', (t) => {
  const addr = mapAnon(1);
  const word = 0x1122334455667788n;
  const init = Buffer.alloc(8);
  init.writeBigUInt64LE(word);
  u.poke(addr, init);
  const pid = u.forkChild(ops([C.FORK_OP_SLEEP_MS, 10000]));
  try {
    // The child may still be returning from fork (orig_rax = clone): wait until it sleeps.
    for (let i = 0; i < 2000; i++) {
      const sc = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8');
      if (sc.startsWith(`${C.SYS_clock_nanosleep} `)) break;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    u.ptrace(C.PTRACE_SEIZE, pid, 0, C.PTRACE_O_EXITKILL);
    u.ptrace(C.PTRACE_INTERRUPT, pid, 0, 0);
    const w = u.waitpid(pid, C.__WALL);
    t.is(w.pid, pid);
    t.is(w.status & 0xff, 0x7f); // stopped
    t.is(w.status >> 16, C.PTRACE_EVENT_STOP);

    const regs = u.ptraceGetRegs(pid);
    t.is(regs.length, C.USER_REGS_SIZE);
    t.is(Number(regs.readBigUInt64LE(C.USER_REGS_OFFSETS.orig_rax)), C.SYS_clock_nanosleep);
    u.ptraceSetRegs(pid, regs);
    t.throws(() => u.ptraceSetRegs(pid, regs.subarray(8)), { instanceOf: TypeError });

    t.is(u.ptrace(C.PTRACE_PEEKDATA, pid, addr, 0), word);
    u.ptrace(C.PTRACE_POKEDATA, pid, addr, 0xfffffffffffffffen);
    t.is(u.ptrace(C.PTRACE_PEEKDATA, pid, BigInt(addr), 0), 0xfffffffffffffffen);
    u.processVmWrite(pid, addr, Buffer.from([1, 2, 3]));
    t.deepEqual([...u.processVmRead(pid, [{ addr, len: 4 }])], [1, 2, 3, 0xff]);
    t.is(u.peek(addr, 8).readBigUInt64LE(0), word); // ours is untouched
    throwsSys(t, () => u.ptrace(C.PTRACE_PEEKDATA, pid, 8, 0), 'EIO', 'ptrace');
  } finally {
    process.kill(pid, 'SIGKILL');
    const w = u.waitpid(pid, C.__WALL);
    t.is(w.status & 0x7f, os.constants.signals.SIGKILL);
    R.unmap(addr, PAGE);
  }
});

// ---- userfaultfd + reader ----

test.serial('userfaultfd + UFFDIO_API + REGISTER(MODE_WP) report features and ioctls', (t) => {
  const w = watch(4);
  t.is(w.features & BASE_FEATURES, BASE_FEATURES);
  t.not(w.ioctls & (1n << BigInt(C._UFFDIO_WRITEPROTECT)), 0n);
  t.regex(vmFlags(w.addr), / uw/);
  const s = u.readerStats(w.id);
  t.like(s, { id: w.id, uffd: w.fd, running: true, errno: 0, code: null, nonblocking: true, events: 0 });
  t.is(unwatch(w).length, 0);
  const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK | C.UFFD_USER_MODE_ONLY);
  u.uffdApi(fd, 0n);
  throwsSys(t, () => u.uffdApi(fd, 0n), 'EINVAL', 'ioctl(UFFDIO_API)'); // once per uffd
  u.close(fd);
});

test.serial('munmap of part of the range -> UNMAP with the right start/end, onPending called', async (t) => {
  const w = watch(8);
  const start = w.addr + 2 * PAGE;
  R.munmap(start, 3 * PAGE); // a real munmap: blocks until the reader thread read() the event
  R.refill(start, 3 * PAGE);
  const recs = decodeRecords(u.readerDrain(w.id));
  t.deepEqual(recs.map(range), [{ event: C.UFFD_EVENT_UNMAP, start, end: start + 3 * PAGE }]);
  t.true(recs[0].readNs > 0n);
  t.is(recs[0].snapshot, '');
  const deadline = Date.now() + 500;
  while (w.pending() === 0 && Date.now() < deadline) await sleep(1);
  t.is(w.pending(), 1);
  t.like(u.readerStats(w.id), { events: 1, queuedRecords: 0, queuedBytes: 0, notifications: 1 });
  t.is(u.readerDrain(w.id).length, 0);
  unwatch(w, [[w.addr, 2 * PAGE], [start + 3 * PAGE, 3 * PAGE]]);
});

test.serial('madvise DONTNEED and FREE -> REMOVE, with the blocked thread visible in the syscall snapshot', (t) => {
  const pid = u.getpid();
  const w = watch(4, BASE_FEATURES, pid);
  u.madvise(w.addr + PAGE, PAGE, C.MADV_DONTNEED);
  u.madvise(w.addr + 2 * PAGE, 2 * PAGE, C.MADV_FREE);
  const recs = decodeRecords(u.readerDrain(w.id));
  t.deepEqual(recs.map(range), [
    { event: C.UFFD_EVENT_REMOVE, start: w.addr + PAGE, end: w.addr + 2 * PAGE },
    { event: C.UFFD_EVENT_REMOVE, start: w.addr + 2 * PAGE, end: w.addr + 4 * PAGE },
  ]);
  t.not(recs[0].batchSeq, recs[1].batchSeq);
  const hex = (n: number) => `0x${n.toString(16)}`;
  const line0 = recs[0].snapshot.split('\n').find((l) => l.startsWith(`${pid} `));
  const line1 = recs[1].snapshot.split('\n').find((l) => l.startsWith(`${pid} `));
  t.regex(line0 ?? '', new RegExp(`^${pid} ${SYS_MADVISE_X86_64} ${hex(w.addr + PAGE)} ${hex(PAGE)} ${hex(C.MADV_DONTNEED)} `));
  t.regex(line1 ?? '', new RegExp(`^${pid} ${SYS_MADVISE_X86_64} ${hex(w.addr + 2 * PAGE)} ${hex(2 * PAGE)} ${hex(C.MADV_FREE)} `));
  t.true(recs[0].snapshot.endsWith('\n'));
  // one scan of /proc/PID/task: the second snapshot preads the files the first opened (no thread came or went)
  t.like(u.readerStats(w.id), { snapshots: 2, snapshotErrors: 0, snapshotRescans: 1 });
  unwatch(w);
});

test.serial('the syscall snapshot sees a thread started after the last one (its task files are kept open, rescanned when the thread count changes)', async (t) => {
  const pid = u.getpid();
  const w = watch(4, BASE_FEATURES, pid);
  u.madvise(w.addr, PAGE, C.MADV_DONTNEED);
  const worker = new Worker(path.join(__dirname, 'helpers', 'native-worker.js'), { workerData: { readerId: w.id } });
  const next = () => new Promise<unknown>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  try {
    t.is(await next(), 'ready');
    worker.postMessage({ madvise: [w.addr + PAGE, PAGE, C.MADV_FREE] });
    t.is(await next(), 'advised');
    const recs = decodeRecords(u.readerDrain(w.id));
    t.is(recs.length, 2);
    const hex = (n: number) => `0x${n.toString(16)}`;
    const line = recs[1]!.snapshot.split('\n').find((l) => new RegExp(`^\\d+ ${SYS_MADVISE_X86_64} ${hex(w.addr + PAGE)} `).test(l));
    t.truthy(line, recs[1]!.snapshot);
    t.false(line!.startsWith(`${pid} `)); // the worker's task, not the main thread's
    t.regex(line!, new RegExp(` ${hex(PAGE)} ${hex(C.MADV_FREE)} `));
    const st = u.readerStats(w.id);
    t.like(st, { snapshots: 2, snapshotErrors: 0 });
    t.true(st.snapshotRescans >= 2);
  } finally {
    await worker.terminate();
    unwatch(w);
  }
});

test.serial('mremap move -> REMAP(from, to, len) then UNMAP of the old range', (t) => {
  const w = watch(4);
  const dest = R.mapAt(R.take(4 * PAGE), 4 * PAGE, C.PROT_NONE);
  const got = u.mremap(w.addr, w.len, w.len, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, dest);
  t.is(got, dest);
  R.refill(w.addr, w.len); // the old range is a true hole: take it back, never unmap it again
  const recs = decodeRecords(u.readerDrain(w.id));
  t.is(recs[0].event, C.UFFD_EVENT_REMAP);
  t.deepEqual([recs[0].a, recs[0].b, recs[0].c].map(Number), [w.addr, dest, w.len]);
  t.deepEqual(recs.slice(1).map(range), [{ event: C.UFFD_EVENT_UNMAP, start: w.addr, end: w.addr + w.len }]);
  t.is(u.peek(dest, 1)[0], 1);
  unwatch(w, [[dest, w.len]]);
});

test.serial('mprotect -> no event', async (t) => {
  const w = watch(2);
  u.mprotect(w.addr, PAGE, C.PROT_READ);
  u.mprotect(w.addr, PAGE, RW);
  await sleep(20);
  t.is(u.readerDrain(w.id).length, 0);
  t.like(u.readerStats(w.id), { events: 0, batches: 0 });
  unwatch(w);
});

test.serial('uffdWriteProtect sets and clears the uffd-wp pagemap bit; uffdUnregister drops the registration', (t) => {
  const w = watch(2);
  const wp = () => (pagemapEntry(w.addr) >> PAGEMAP_UFFD_WP_BIT) & 1n;
  t.is(wp(), 0n);
  u.uffdWriteProtect(w.fd, w.addr, PAGE, true);
  t.is(wp(), 1n);
  u.uffdWriteProtect(w.fd, w.addr, PAGE, false);
  t.is(wp(), 0n);
  u.uffdUnregister(w.fd, w.addr, w.len);
  t.notRegex(vmFlags(w.addr), / uw/);
  t.throws(() => u.uffdRegister(w.fd, w.addr + 1, PAGE, C.UFFDIO_REGISTER_MODE_WP), { code: 'EINVAL' });
  unwatch(w);
});

test.serial('fork with EVENT_FORK -> FORK record carrying a new uffd installed in our process', (t) => {
  const w = watch(2, BASE_FEATURES | C.UFFD_FEATURE_EVENT_FORK);
  const pid = u.forkChild(ops([C.FORK_OP_EXIT, 4])); // our clone() blocks until the reader read FORK
  const recs = decodeRecords(u.readerDrain(w.id));
  t.is(recs.length, 1);
  t.is(recs[0].event, C.UFFD_EVENT_FORK);
  const childUffd = recs[0].ufd;
  t.true(childUffd > 2);
  t.regex(fs.readlinkSync(`/proc/self/fd/${childUffd}`), /userfaultfd/);
  u.close(childUffd);
  t.is(exitCode(u.waitpid(pid, 0).status), 4);
  unwatch(w);
});

test.serial('readerStop joins, closes the uffd, releases the registration, returns undrained records', (t) => {
  const w = watch(4);
  R.unmap(w.addr + 3 * PAGE, PAGE);
  t.regex(vmFlags(w.addr), / uw/);
  const rest = decodeRecords(u.readerStop(w.id));
  t.deepEqual(rest.map(range), [{ event: C.UFFD_EVENT_UNMAP, start: w.addr + 3 * PAGE, end: w.addr + 4 * PAGE }]);
  t.notRegex(vmFlags(w.addr), / uw/);
  t.throws(() => u.close(w.fd), { code: 'EBADF' });
  t.throws(() => u.readerDrain(w.id), { instanceOf: SyscallError, code: 'ENOENT' });
  t.throws(() => u.readerStop(w.id), { code: 'ENOENT' });
  t.throws(() => u.readerStats(w.id), { code: 'ENOENT' });
  R.unmap(w.addr, 3 * PAGE); // would block forever if the registration had survived
});

test.serial('a reader on a uffd without UFFDIO_API stops with EINVAL in its stats', async (t) => {
  const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
  let pending = 0;
  const id = u.readerStart(fd, {}, () => pending++);
  const deadline = Date.now() + 500;
  while (u.readerStats(id).running && Date.now() < deadline) await sleep(1);
  t.like(u.readerStats(id), { running: false, errno: E.EINVAL, code: 'EINVAL' });
  u.readerStop(id);
  t.throws(() => u.readerStart(1 << 20, {}), { code: 'EBADF' });
  t.throws(() => u.readerStart(0, { taskSyscallsPid: -1 }), { instanceOf: TypeError });
});

test.serial('another JS thread (worker_threads) drains a reader by id', async (t) => {
  const w = watch(4);
  const worker = new Worker(path.join(__dirname, 'helpers', 'native-worker.js'), { workerData: { readerId: w.id } });
  const next = () => new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  try {
    t.is(await next(), 'ready');
    R.unmap(w.addr, PAGE);
    worker.postMessage('drain');
    const buf = Buffer.from((await next()) as Uint8Array);
    t.deepEqual(decodeRecords(buf).map(range), [{ event: C.UFFD_EVENT_UNMAP, start: w.addr, end: w.addr + PAGE }]);
    worker.postMessage('bad');
    t.deepEqual(await next(), { ctor: 'SyscallError', code: 'ENOENT' });
  } finally {
    await worker.terminate();
    unwatch(w, [[w.addr + PAGE, 3 * PAGE]]);
  }
});

// ---- eventfd / poll / reader notifyFd (the serving loop's async wake-up) ----

test.serial('eventfd + pollReadable: nothing pending → 0; a write → bit set; eventfdDrain resets it', (t) => {
  const e = u.eventfd();
  try {
    t.is(u.pollReadable([e], 0), 0);
    t.is(u.eventfdDrain(e), 0);
    fs.writeSync(e, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]));
    t.is(u.pollReadable([e], 0), 1);
    t.is(u.eventfdDrain(e), 2);
    t.is(u.pollReadable([e], 0), 0);
    t.throws(() => u.pollReadable([], 0), { instanceOf: TypeError });
  } finally {
    u.close(e);
  }
});

test.serial('loopBind + loopNext: the reply is written to the bound fd, then the next read lands in the bound buffer; null writes nothing; a replaced binding and misuse throw', (t) => {
  // An eventfd stands in for /dev/fuse: a write adds to its count, a read of 8 bytes returns the count and clears it.
  const e = u.eventfd();
  const e2 = u.eventfd();
  try {
    const buf = new Uint8Array(8);
    const b = u.loopBind(e, buf);
    const reply = new Uint8Array(new BigUint64Array([5n]).buffer);
    t.is(u.loopNext(b, reply, -1), 8);
    t.is(new DataView(buf.buffer).getBigUint64(0, true), 5n, 'read back what the call wrote');
    fs.writeSync(e, Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]));
    t.is(u.loopNext(b, null, -1), 8);
    t.is(buf[0], 3, 'null: nothing written, only the read');
    t.throws(() => u.loopNext(b, new Uint16Array(4) as unknown as Uint8Array, -1), { instanceOf: TypeError });
    t.throws(() => u.loopNext(b, reply, 'x' as unknown as number), { instanceOf: TypeError });
    t.throws(() => u.loopBind(e, new Uint16Array(4) as unknown as Uint8Array), { instanceOf: TypeError });
    // A new binding replaces the old one: the old number is refused before anything is written.
    const buf2 = new Uint8Array(8);
    const b2 = u.loopBind(e2, buf2);
    t.not(b2, b);
    t.throws(() => u.loopNext(b, reply, -1), { message: /not the current loopBind/ });
    t.is(u.pollReadable([e], 0), 0, 'nothing written by the refused call');
    t.is(u.loopNext(b2, reply, -1), 8);
    t.is(buf2[0], 5);
  } finally {
    u.close(e);
    u.close(e2);
  }
});

test.serial('the serving loop\'s nativeIO binds at first use and binds again when another loopBind of the thread replaced its binding', (t) => {
  const e = u.eventfd();
  const other = u.eventfd();
  try {
    const io = nativeIO(u);
    const buf = Buffer.alloc(8);
    const reply = new Uint8Array(new BigUint64Array([7n]).buffer);
    t.is(io.writeRead!(e, reply, buf, -1), 8);
    t.is(buf[0], 7);
    u.loopBind(other, new Uint8Array(8)); // someone else on this thread
    t.is(io.writeRead!(e, reply, buf, -1), 8, 'bound again, the call made once');
    t.is(buf[0], 7);
    t.is(u.pollReadable([other], 0), 0, 'nothing went to the other binding');
    fs.writeSync(e, Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]));
    t.is(io.read(e, buf, -1), 8);
    t.is(buf[0], 9);
  } finally {
    u.close(e);
    u.close(other);
  }
});

test.serial('a reader with notifyFd bumps that eventfd when an event is queued (wakes a thread blocked in poll)', (t) => {
  const e = u.eventfd();
  const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
  u.uffdApi(fd, BASE_FEATURES);
  const addr = mapAnon(4);
  touch(addr, 4);
  u.uffdRegister(fd, addr, 4 * PAGE, C.UFFDIO_REGISTER_MODE_WP);
  const id = u.readerStart(fd, { notifyFd: e });
  try {
    t.is(u.pollReadable([e], 0), 0);
    R.unmap(addr + PAGE, PAGE); // returns once the reader thread has read the event
    t.is(u.pollReadable([e], 1000), 1);
    t.true(u.eventfdDrain(e) >= 1);
    t.true(u.readerDrain(id).length > 0);
  } finally {
    u.readerStop(id);
    R.unmap(addr, PAGE);
    R.unmap(addr + 2 * PAGE, 2 * PAGE);
    u.close(e);
  }
});

test.serial('a wake queue learns which readers bumped it: each token once per drain, none after close', (t) => {
  const q = u.wakeQueueCreate();
  const readers: Array<{ fd: number; addr: number; id: number }> = [];
  let closed = false;
  try {
    for (const token of [101, 202]) {
      const fd = u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK);
      u.uffdApi(fd, BASE_FEATURES);
      const addr = mapAnon(4);
      touch(addr, 4);
      u.uffdRegister(fd, addr, 4 * PAGE, C.UFFDIO_REGISTER_MODE_WP);
      readers.push({ fd, addr, id: u.readerStart(fd, { notifyFd: q, notifyToken: token }) });
    }
    t.deepEqual([...u.wakeQueueDrain(q)], []);
    t.is(u.pollReadable([q], 0), 0);
    // Two events of the second reader before any drain of it: its token is queued once; the first stays silent.
    R.unmap(readers[1]!.addr + PAGE, PAGE);
    R.unmap(readers[1]!.addr + 3 * PAGE, PAGE);
    t.is(u.pollReadable([q], 1000), 1);
    t.true(u.eventfdDrain(q) >= 1);
    t.deepEqual([...u.wakeQueueDrain(q)], [202]);
    t.deepEqual([...u.wakeQueueDrain(q)], []);
    // Drained, then an event of each: both tokens, in the order their readers bumped.
    t.true(u.readerDrain(readers[1]!.id).length > 0);
    R.unmap(readers[0]!.addr + PAGE, PAGE);
    t.is(u.pollReadable([q], 1000), 1); // the first reader's token is queued before its bump
    R.unmap(readers[1]!.addr + 2 * PAGE, PAGE);
    // munmap returns once the reader read the event; its token is queued just after: collect until both are in.
    const got: number[] = [];
    for (const end = Date.now() + 2000; got.length < 2 && Date.now() < end;) if (u.pollReadable([q], 100)) { u.eventfdDrain(q); got.push(...u.wakeQueueDrain(q)); }
    t.deepEqual(got, [101, 202]);
    t.throws(() => u.wakeQueueDrain(q + 100000), { code: 'ENOENT' });
    // Closed while readers still hold it: a later event bumps and queues nothing (no write to a reused fd number).
    t.true(u.readerDrain(readers[0]!.id).length > 0);
    u.wakeQueueClose(q);
    closed = true;
    t.throws(() => u.wakeQueueDrain(q), { code: 'ENOENT' });
    R.unmap(readers[0]!.addr + 2 * PAGE, PAGE);
    t.true(u.readerDrain(readers[0]!.id).length > 0);
  } finally {
    const left: Array<[number, number][]> = [
      [[readers[0]?.addr ?? 0, PAGE], [(readers[0]?.addr ?? 0) + 3 * PAGE, PAGE]],
      [[readers[1]?.addr ?? 0, PAGE]],
    ];
    readers.forEach((r, i) => { u.readerStop(r.id); for (const [a, l] of left[i]!) R.unmap(a, l); });
    if (!closed) u.wakeQueueClose(q);
  }
});

test.serial('readerDrainInto: takes every queued record when they fit, nothing (minus the bytes queued) when they do not; clears the hint and re-arms onPending', async (t) => {
  const w = watch(4);
  try {
    const h = u.readerPendingView(w.id);
    t.is(u.readerDrainInto(w.id, new Uint8Array(64)), 0, 'nothing queued');
    R.munmap(w.addr + PAGE, PAGE); // blocks until the reader read UNMAP
    R.refill(w.addr + PAGE, PAGE);
    u.madvise(w.addr + 2 * PAGE, PAGE, C.MADV_DONTNEED);
    const one = READER_RECORD_HEADER_SIZE + UFFD_MSG_SIZE;
    for (const end = Date.now() + 2000; u.readerStats(w.id).queuedBytes < 2 * one && Date.now() < end;) await sleep(1);
    t.is(u.readerDrainInto(w.id, new Uint8Array(2 * one - 1)), -2 * one, 'one byte short: nothing taken');
    t.like(u.readerStats(w.id), { queuedRecords: 2, queuedBytes: 2 * one });
    const buf = new Uint8Array(3 * one).fill(0xee);
    t.is(u.readerDrainInto(w.id, buf), 2 * one);
    t.is(buf[2 * one], 0xee, 'nothing written past the records');
    t.deepEqual(decodeRecords(Buffer.from(buf.subarray(0, 2 * one))).map(range), [
      { event: C.UFFD_EVENT_UNMAP, start: w.addr + PAGE, end: w.addr + 2 * PAGE },
      { event: C.UFFD_EVENT_REMOVE, start: w.addr + 2 * PAGE, end: w.addr + 3 * PAGE },
    ]);
    t.like(u.readerStats(w.id), { queuedRecords: 0, queuedBytes: 0 });
    t.is(Atomics.load(h, 0) & C.READER_HINT_QUEUED, 0);
    t.is(u.readerDrainInto(w.id, buf), 0);
    // drained: the next event notifies again
    const before = u.readerStats(w.id).notifications;
    u.madvise(w.addr + 3 * PAGE, PAGE, C.MADV_DONTNEED);
    for (const end = Date.now() + 2000; u.readerStats(w.id).notifications === before && Date.now() < end;) await sleep(1);
    t.is(u.readerStats(w.id).notifications, before + 1);
    t.throws(() => u.readerDrainInto(w.id, new Uint16Array(8) as unknown as Uint8Array), { message: /Uint8Array/ });
    t.throws(() => u.readerDrainInto(-1, buf), { instanceOf: SyscallError, code: 'ENOENT' });
  } finally {
    unwatch(w, [[w.addr, 4 * PAGE]]);
  }
});

test.serial('readerPendingView: the hint word 0 when idle; an event read sets "queued"; readerDrain clears it', async (t) => {
  const w = watch(4);
  const settle = async (ok: () => boolean): Promise<boolean> => {
    for (const end = Date.now() + 2000; !ok() && Date.now() < end;) await sleep(1);
    return ok();
  };
  try {
    const h = u.readerPendingView(w.id);
    t.is(h.length, 1);
    t.is(Atomics.load(h, 0), 0);
    // munmap returns once the kernel handed the event to the reader's read(), which may not have returned yet: from
    // then on "read in progress" or "queued" is set (the protocol JS relies on), and the read sets "queued".
    R.unmap(w.addr + PAGE, PAGE);
    t.not(Atomics.load(h, 0) & (C.READER_HINT_READING | C.READER_HINT_QUEUED), 0, 'a read in progress or a record queued');
    t.true(await settle(() => Atomics.load(h, 0) === C.READER_HINT_QUEUED), 'the read ends with "queued" set, "reading" clear');
    t.true(u.readerDrain(w.id).length > 0);
    t.is(Atomics.load(h, 0), 0);
  } finally {
    unwatch(w, [[w.addr, PAGE], [w.addr + 2 * PAGE, 2 * PAGE]]);
  }
});
