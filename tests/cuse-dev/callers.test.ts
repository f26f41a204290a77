// Caller attribution (cuse-dev/session/tgid.ts) on real threads: a cached tid → process mapping dies with its
// thread (a thread pidfd's exit, published by the watch thread), costs no look-up while it lives, is bounded with
// every pidfd closed on eviction, and a caller that cannot be established is refused with the documented errno.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { loadUffd } from '../../uffd/load';
import type { UffdBinding } from '../../uffd/native-types';
import { PidfdCallerResolver, callerResolver, procMember, tgidResolver, type CallerRefusal, type CallerResolver } from '../../cuse-dev/session/tgid';
import { Session } from '../../cuse-dev/session/session';
import { createDevice } from '../../core';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
import * as H from './helpers/fuse-bytes';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { startServer } from '../../cli/serve';

const TID_REUSE = path.resolve(__dirname, '../../../tests/c/bin/tid_reuse');
let u: UffdBinding | undefined;
let why = '';
try { u = loadUffd(); u.close(u.pidfdOpen(process.pid, u.constants.PIDFD_THREAD)); } catch (e) { why = `no addon or no thread pidfds: ${String(e)}`; u = undefined; }
if (!why && !fs.existsSync(TID_REUSE)) why = 'tests/c/bin/tid_reuse not built';
const real = why ? test.serial.skip : test.serial;
const titled = (s: string): string => (why ? `${s} (skipped: ${why})` : s);

const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;
/** pidfds this process holds (the test's child processes add pipes, never pidfds). */
const pidfdCount = (): number => fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync(`/proc/self/fd/${f}`) === 'anon_inode:[pidfd]'; } catch { return false; } }).length;
async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A process whose second thread (a non-leader) exits when told; the process itself ends at stdin EOF. */
interface Held { p: ChildProcess; pid: number; tid: number; out: () => string; endThread(): Promise<void>; end(): Promise<void> }
async function held(): Promise<Held> {
  const p = spawn(TID_REUSE, ['thread'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((r) => p.on('exit', () => r()));
  await until('the held thread', () => /^thread \d+$/m.test(out));
  const tid = Number(/^thread (\d+)$/m.exec(out)![1]);
  return {
    p, pid: p.pid!, tid, out: () => out,
    endThread: async () => { p.stdin!.write('x\n'); await until('the thread exit', () => /^thread exited$/m.test(out)); },
    end: async () => { p.stdin!.end(); await exited; },
  };
}
const isRefusal = (r: number | CallerRefusal): r is CallerRefusal => typeof r !== 'number';

real(titled('a cached caller costs no look-up; its thread\'s exit closes the pidfd at once and the tid\'s next request is resolved afresh'), async (t) => {
  const r = new PidfdCallerResolver(u!, { slots: 8 });
  const h = await held();
  try {
    t.not(h.tid, h.pid, 'a non-leader thread');
    t.is(r.resolve(h.tid, 0, 0), h.pid);
    for (let i = 0; i < 100; i++) t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.like(r.stats(), { resolved: 1, cached: 1, pidfds: 1 });
    await h.endThread();
    // The watch thread closes the exited thread's pidfd and publishes the exit with no request to prompt it.
    await until('the exit published', () => r.stats().pidfds === 0);
    const again = r.resolve(h.tid, 0, 0);
    t.not(again, h.pid, 'the dead thread\'s mapping is never used again');
    if (isRefusal(again)) t.like(again, { kind: 'vanished', errno: { code: 'EINTR' } });
    t.like(r.stats(), { exited: 1, evicted: 0 });
    t.is(r.resolve(h.pid, 0, 0), h.pid, 'the process itself is still served');
    t.log(`watch thread SCHED_FIFO: ${r.realtime()}`);
  } finally {
    r.close();
    await h.end();
  }
});

real(titled('the pid watch (addon): a slot takes one pidfd (EBUSY else), a remove closes it once, stop closes the rest; bad slots are usage errors'), async (t) => {
  const pidfdsBefore = pidfdCount();
  const w = u!.pidWatchStart(2);
  const h = await held();
  try {
    t.throws(() => u!.pidWatchAdd(w.id, 2, 0), { instanceOf: TypeError });
    const a = u!.pidfdOpen(h.tid, u!.constants.PIDFD_THREAD);
    u!.pidWatchAdd(w.id, 0, a);
    const b = u!.pidfdOpen(h.pid, u!.constants.PIDFD_THREAD);
    t.throws(() => u!.pidWatchAdd(w.id, 0, b), { code: 'EBUSY' });
    u!.pidWatchAdd(w.id, 1, b);
    t.like(u!.pidWatchStats(w.id), { slots: 2, open: 2, added: 2 });
    t.true(u!.pidWatchRemove(w.id, 1));
    t.false(u!.pidWatchRemove(w.id, 1), 'already empty');
    t.is(pidfdCount(), pidfdsBefore + 1);
    await h.endThread();
    await until('the exit published', () => Atomics.load(w.exited, 0) === 1);
    t.like(u!.pidWatchStats(w.id), { open: 0, exits: 1 });
    t.false(u!.pidWatchRemove(w.id, 0), 'its exit had closed it');
    u!.pidWatchAdd(w.id, 0, u!.pidfdOpen(h.pid, u!.constants.PIDFD_THREAD));
    t.is(Atomics.load(w.exited, 0), 0, 'a slot filled again reads 0 until its own task exits');
  } finally {
    u!.pidWatchStop(w.id);
    await h.end();
  }
  t.is(pidfdCount(), pidfdsBefore, 'stop closed the pidfd still held');
  t.throws(() => u!.pidWatchStats(w.id), { code: 'ENOENT' });
});

real(titled('the same tid with other fsuid/fsgid than the cached entry is resolved afresh'), async (t) => {
  const r = new PidfdCallerResolver(u!, { slots: 8 });
  const h = await held();
  try {
    t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.is(r.resolve(h.tid, 65534, 65534), h.pid);
    t.is(r.resolve(h.tid, 65534, 0), h.pid);
    t.like(r.stats(), { resolved: 3, evicted: 2, cached: 1, pidfds: 1 });
  } finally {
    r.close();
    await h.end();
  }
});

real(titled('bounded: a full cache evicts its oldest entry and closes its pidfd; fds are back to their count when the threads go and at close'), async (t) => {
  const before = fdCount();
  const pidfdsBefore = pidfdCount();
  const r = new PidfdCallerResolver(u!, { slots: 2 });
  t.is(fdCount(), before + 2, 'the watch itself: an epoll fd and an eventfd');
  const hs = [await held(), await held(), await held()];
  try {
    for (const h of hs) t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.like(r.stats(), { cached: 2, pidfds: 2, evicted: 1, resolved: 3 });
    t.is(pidfdCount(), pidfdsBefore + 2);
    t.is(r.resolve(hs[0]!.tid, 0, 0), hs[0]!.pid, 'the evicted one is resolved again');
    t.like(r.stats(), { cached: 2, pidfds: 2, evicted: 2, resolved: 4 });
    for (const h of hs) h.p.kill('SIGKILL');
    await until('every pidfd closed by its exit', () => r.stats().pidfds === 0 && pidfdCount() === pidfdsBefore);
    // A full cache whose entries all exited reuses their slots (swept), evicting nothing live.
    const h4 = await held();
    hs.push(h4);
    t.is(r.resolve(h4.tid, 0, 0), h4.pid);
    t.like(r.stats(), { cached: 1, pidfds: 1, evicted: 2, exited: 2 });
  } finally {
    r.close();
    for (const h of hs) { h.p.kill('SIGKILL'); await h.end(); }
  }
  t.like(r.stats(), { pidfds: 0, cached: 0 });
  t.is(pidfdCount(), pidfdsBefore);
  await until('fds back to their count (the children\'s pipes close as they are reaped)', () => fdCount() === before);
  t.pass();
});

real(titled('a caller that cannot be established is refused: outside the pid namespace EACCES, a thread gone EINTR; nothing cached or held'), async (t) => {
  const r = new PidfdCallerResolver(u!, { slots: 4 });
  const h = await held();
  const gone = h.tid;
  await h.endThread();
  await h.end();
  try {
    t.like(r.resolve(0, 0, 0), { kind: 'invisible', errno: { code: 'EACCES' } });
    const g = r.resolve(gone, 0, 0);
    if (!fs.existsSync(`/proc/${gone}`)) t.like(g, { kind: 'vanished', errno: { code: 'EINTR' } });
    else t.log(`tid ${gone} already reused on this host: refusal of a gone thread not checked`);
    t.like(r.stats(), { cached: isRefusal(g) ? 0 : 1, pidfds: isRefusal(g) ? 0 : 1 });
  } finally {
    r.close();
  }
});

real(titled('out of fds: the cache gives half its pidfds back and retries once; with nothing to give back the error is thrown (exhaustion errnos)'), async (t) => {
  let fail = 0;
  const emfile = (): never => { throw Object.assign(new Error('pidfd_open: EMFILE'), { code: 'EMFILE', syscall: 'pidfd_open' }); };
  const b: UffdBinding = { ...u!, pidfdOpen: (pid: number, flags?: number) => (fail-- > 0 ? emfile() : u!.pidfdOpen(pid, flags)) };
  const r = new PidfdCallerResolver(b, { slots: 4 });
  const hs = [await held(), await held(), await held()];
  try {
    t.is(r.resolve(hs[0]!.tid, 0, 0), hs[0]!.pid);
    t.is(r.resolve(hs[1]!.tid, 0, 0), hs[1]!.pid);
    fail = 1;
    t.is(r.resolve(hs[2]!.tid, 0, 0), hs[2]!.pid);
    t.like(r.stats(), { evicted: 1, cached: 2, pidfds: 2 });
    r.forget(hs[1]!.tid);
    r.forget(hs[2]!.tid);
    t.like(r.stats(), { cached: 0, pidfds: 0 });
    fail = 1;
    t.throws(() => r.resolve(hs[0]!.tid, 0, 0), { code: 'EMFILE' });
    t.like(r.stats(), { cached: 0, pidfds: 0 });
    t.is(r.resolve(hs[0]!.tid, 0, 0), hs[0]!.pid, 'resolved once fds are back');
  } finally {
    r.close();
    for (const h of hs) await h.end();
  }
});

real(titled('kernels without PIDFD_GET_INFO: the tgid comes from /proc/TID/status read while the pidfd shows the thread alive'), async (t) => {
  const reads: string[] = [];
  const b: UffdBinding = { ...u!, pidfdGetInfo: () => { throw Object.assign(new Error('ioctl: ENOTTY'), { code: 'ENOTTY' }); } };
  const r = new PidfdCallerResolver(b, { slots: 4, read: (p) => { reads.push(p); return fs.readFileSync(p, 'latin1'); } });
  const h = await held();
  try {
    t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.deepEqual(reads, [`/proc/${h.tid}/status`]);
  } finally {
    r.close();
    await h.end();
  }
});

real(titled('the server\'s choice: thread pidfds when the kernel has them (an eighth of a low fd limit), else leaders\' pidfds and /proc checks, said once; /proc per request only without the watch'), async (t) => {
  const c = callerResolver(u!, { fdLimit: 64 });
  try {
    t.is(c.note, undefined);
    t.true(c.resolver instanceof PidfdCallerResolver);
    t.is((c.resolver as PidfdCallerResolver).slots, 8);
  } finally { c.resolver.close(); }
  // A kernel before 6.9: pidfd_open refuses PIDFD_THREAD with EINVAL, and a non-leader's tid without it.
  const einval = (): never => { throw Object.assign(new Error('pidfd_open: EINVAL'), { code: 'EINVAL' }); };
  const old = callerResolver({ ...u!, pidfdOpen: (pid: number, flags?: number) => (flags ? einval() : u!.pidfdOpen(pid, flags)) });
  const h = await held();
  try {
    t.regex(old.note ?? '', /no thread pidfds .*EINVAL.*kernel >= 6\.9.*main thread is cached on its pidfd.*\/proc\/TGID\/task\/TID at every request/);
    t.true(old.resolver instanceof PidfdCallerResolver);
    t.is(old.resolver.resolve(h.pid, 0, 0), h.pid);
    t.is(old.resolver.resolve(h.tid, 0, 0), h.pid);
    t.like(old.resolver.stats(), { cached: 2, pidfds: 1 });
  } finally {
    old.resolver.close();
    await h.end();
  }
  const noWatch = callerResolver({ ...u!, pidWatchStart: () => { throw new Error('epoll_create1: EMFILE'); } });
  t.regex(noWatch.note ?? '', /pidfd watch not started .*\/proc\/TID\/status at every request/);
  t.false(noWatch.resolver instanceof PidfdCallerResolver);
  t.regex(callerResolver(undefined).note ?? '', /no native addon/);
});

real(titled('without thread pidfds (kernels before 6.9): a leader\'s requests cost no look-up (its pidfd), another thread\'s one /proc/TGID/task/TID check each; a thread\'s exit sends its tid to a fresh resolution'), async (t) => {
  let checks = 0;
  const reads: string[] = [];
  const r = new PidfdCallerResolver(u!, {
    slots: 8, threadPidfds: false,
    member: (tgid, tid) => { checks++; return procMember(tgid, tid); },
    read: (p) => { reads.push(p); return fs.readFileSync(p, 'latin1'); },
  });
  const h = await held();
  try {
    for (let i = 0; i < 100; i++) t.is(r.resolve(h.pid, 0, 0), h.pid);
    t.is(checks, 0, 'a leader is checked by its pidfd\'s exit word only');
    t.deepEqual(reads, [], 'and resolved without /proc: a leader\'s pidfd opens only for a thread group id');
    t.like(r.stats(), { resolved: 1, cached: 1, pidfds: 1 });
    for (let i = 0; i < 100; i++) t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.deepEqual(reads, [`/proc/${h.tid}/status`], 'the non-leader resolved once');
    t.is(checks, 99, 'one membership check per hit');
    t.like(r.stats(), { resolved: 2, cached: 2, pidfds: 1 });
    t.false(procMember(process.pid, h.tid), 'the check names the group: the tid is no thread of ours');
    await h.endThread();
    const again = r.resolve(h.tid, 0, 0);
    t.not(again, h.pid, 'the dead thread\'s mapping is never used again');
    if (isRefusal(again)) t.like(again, { kind: 'vanished', errno: { code: 'EINTR' } });
    t.like(r.stats(), { exited: 1, evicted: 0 });
    t.is(r.resolve(h.pid, 0, 0), h.pid, 'the process itself is still served');
    await h.end();
    await until('the group\'s exit published', () => r.stats().pidfds === 0);
    const gone = r.resolve(h.pid, 0, 0);
    if (!fs.existsSync(`/proc/${h.pid}`)) t.like(gone, { kind: 'vanished', errno: { code: 'EINTR' } });
    else t.log(`pid ${h.pid} already reused on this host: refusal of a gone process not checked`);
  } finally {
    r.close();
    await h.end();
  }
});

real(titled('without thread pidfds: at most `slots` entries, with a pidfd or without'), async (t) => {
  const pidfdsBefore = pidfdCount();
  const r = new PidfdCallerResolver(u!, { slots: 2, threadPidfds: false });
  const hs = [await held(), await held(), await held()];
  try {
    for (const h of hs) t.is(r.resolve(h.tid, 0, 0), h.pid);
    t.like(r.stats(), { cached: 2, evicted: 1, pidfds: 0 });
    t.is(r.resolve(hs[0]!.pid, 0, 0), hs[0]!.pid);
    t.like(r.stats(), { cached: 2, evicted: 2, pidfds: 1 });
    t.is(pidfdCount(), pidfdsBefore + 1);
  } finally {
    r.close();
    for (const h of hs) await h.end();
  }
  t.is(pidfdCount(), pidfdsBefore, 'close gave the leader\'s pidfd back');
});

test('the session resolves every OPEN and IOCTL with the header\'s tid, fsuid and fsgid; a refused caller gets the errno, logged once per kind', (t) => {
  const calls: [number, number, number][] = [];
  let refuse: CallerRefusal | null = null;
  const stub: CallerResolver = {
    resolve: (tid, uid, gid) => { calls.push([tid, uid, gid]); return refuse ?? 1000; },
    forget: () => undefined, close: () => undefined,
    stats: () => ({ cached: 0, resolved: 0, refused: 0, exited: 0, evicted: 0, pidfds: 0 }),
  };
  const dev = createDevice({ clients: simProvider(new SimMachine(), new Map<number, SimProcess>()) });
  const logs: string[] = [];
  const s = new Session({ kind: 'cuse', device: dev, cuse: { devname: 'dri/renderD131', major: 0, minor: 0, unrestricted: false }, tgid: stub, log: (m) => logs.push(m) });
  let unique = 1n;
  const send = (op: number, body: Buffer, o: Parameters<typeof H.request>[3]) => H.parseOut(s.handle(H.request(op, ++unique, body, o))!);
  send(H.OP.CUSE_INIT, H.cuseInitIn(7, 38, 0), {});
  const ids = { pid: 1001, uid: 65534, gid: 65533 };
  const fh = send(H.OP.OPEN, H.openIn(), ids).body.readBigUInt64LE(0);
  const version = (): ReturnType<typeof send> => send(H.OP.IOCTL, H.ioctlIn(fh, 0, H.DRM_IOCTL_VERSION, 0x1000n, 64, Buffer.alloc(64)), ids);
  t.is(version().error, 0);
  t.deepEqual(calls, [[1001, 65534, 65533], [1001, 65534, 65533]]);
  refuse = { errno: (tgidResolver(() => '').resolve(0, 0, 0) as CallerRefusal).errno, kind: 'invisible', why: 'test' };
  t.is(version().error, -13, 'EACCES');
  t.is(send(H.OP.OPEN, H.openIn(), ids).error, -13);
  refuse = tgidResolver(() => { throw Object.assign(new Error('gone'), { code: 'ENOENT' }); }).resolve(5, 0, 0) as CallerRefusal;
  t.is(version().error, -4, 'EINTR');
  t.is(version().error, -4);
  t.is(s.stats.refusedCallers, 4);
  t.is(logs.filter((l) => /cannot be established/.test(l)).length, 2, logs.join('\n'));
  t.is(s.stats.ioctls, 1, 'a refused ioctl never reaches the device');
});

const fuse = probeFuse();
const served = why || !fuse.ok ? test.serial.skip : test.serial;
served(titled(`the server holds a pidfd per live calling thread only: back to its fd count when the clients' threads exit${fuse.ok ? '' : ` (skipped: ${fuse.reason})`}`), async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-callers-'));
  const s = await startServer({ transport: 'fuse', mountDir: path.join(dir, 'mnt'), watch: 'none' });
  const stats = async (): Promise<Record<string, number>> => (await s.snapshot()).stats as Record<string, number>;
  const clients: ChildProcess[] = [];
  try {
    const idle = await stats();
    const fds = fdCount();
    t.like(idle, { callersPidfds: 0, callersCached: 0 }, 'the server\'s own waking opens hold none');
    const outs: string[] = [];
    for (let i = 0; i < 4; i++) {
      // Each: a thread opens the node, makes a GETPARAM and exits; the main thread waits on stdin.
      const p = spawn(TID_REUSE, ['victim', s.path, `0x${(0x3b0000000000 + i * 0x100000).toString(16)}`], { stdio: ['pipe', 'pipe', 'inherit'] });
      clients.push(p);
      outs.push('');
      p.stdout!.on('data', (d: Buffer) => { outs[i] += d.toString(); });
    }
    await until('the clients\' threads served', () => outs.every((o) => /getparam 0 value 1/.test(o)), 15_000);
    const exitedThreads = await stats();
    // One resolution per client thread (its OPEN; its GETPARAM hits), and one per waking open of each snapshot.
    t.is(exitedThreads.callersResolved! - idle.callersResolved!, 4 + 1);
    for (let i = 0; i < 20 && (await stats()).callersPidfds !== 0; i++) await new Promise((r) => setTimeout(r, 25));
    t.is((await stats()).callersPidfds, 0, 'their threads exited: no pidfd left');
    // The main threads ask now: one pidfd each while they live.
    for (const p of clients) p.stdin!.write('\n');
    await until('the main threads served', () => outs.every((o) => /^victim getparam 0 value 1$/m.test(o)), 15_000);
    t.is((await stats()).callersPidfds, 4);
    for (const p of clients) p.stdin!.end();
    await Promise.all(clients.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    let last = await stats();
    for (let i = 0; i < 40 && last.callersPidfds !== 0; i++) { await new Promise((r) => setTimeout(r, 25)); last = await stats(); }
    t.is(last.callersPidfds, 0);
    t.is(last.callersRefused, 0);
    await until('the server\'s fds back to their count', () => fdCount() === fds, 5000);
    t.pass();
  } finally {
    for (const p of clients) if (p.exitCode === null) p.kill('SIGKILL');
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
