// Real memory of THIS test process as the client, watched by the uffd/ provider (uffd + /proc), driven through a core
// Device: every row of the facts list gives its docs/semantics.md §4 event and its docs/semantics.md §7 outcome. Serial: munmap of a registered
// range blocks the JS thread until the native reader has read the event (that is the point).
import test from 'ava';
import { RealHarness, u, C, PG, mapAnon, openFds, uffdFds, vmFlags, until } from './helpers/real-harness';
import { reservation } from './helpers/reservation';
import type { NotifierEvent } from '../../core';
import { LIGHT_PER_DRAIN } from '../../uffd/proc-watcher';

const ME = process.pid;
const RW = C.PROT_READ | C.PROT_WRITE;
const HUGE = 2 * 1024 * 1024;
// All memory lives in this process's reservation: R.unmap maps PROT_NONE over a range (the kernel reports the old
// mapping as unmapped), R.munmap is a real munmap whose hole R.refill takes back; nothing is unmapped for good.
const R = reservation();

function ready(opts: ConstructorParameters<typeof RealHarness>[0] = {}) {
  const h = new RealHarness(opts);
  const f = h.open(ME);
  const env = h.provider.live.get(ME)!;
  return { h, f, env };
}

/** Events as core drained them (trace lines without a handle = the drained event itself). */
function traced(h: RealHarness): NotifierEvent[] {
  const evs: NotifierEvent[] = [];
  h.dev.trace = (e) => {
    if (e.t === 'notifier' && (e as { handle?: number }).handle === undefined) evs.push({ event: e.event as NotifierEvent['event'], start: e.start, end: e.end, removed: e.removed, note: e.note });
  };
  return evs;
}

test.serial('munmap whole → uffd UNMAP → handle deleted (§7.1), host DETACH + UNREF; range was exact (uffd)', (t) => {
  const { h, f, env } = ready();
  const evs = traced(h);
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  t.is(r.ret, 0);
  t.is(env.events.uffd!.registrations(), 1);
  t.true(env.events.exact(a, a + 4 * PG - 1));
  t.regex(vmFlags('self', a), / uw/);
  R.munmap(a, 4 * PG); // a real munmap: returns once the reader thread read UNMAP
  R.refill(a, 4 * PG);
  t.is(h.info(f, ME, r.handle), 'ENOENT');
  t.is(h.gemClose(f, ME, r.handle), 'EINVAL');
  t.deepEqual(h.hostOf(r.resId).slice(-2), ['CTX_DETACH_RESOURCE', 'RESOURCE_UNREF']);
  t.like(evs.find((e) => e.event === 'UNMAP'), { start: a, end: a + 4 * PG, note: 'uffd UNMAP' });
  f.close();
  t.is(h.dev.counts().registrations, 0);
});

test.serial('munmap middle → UNMAP of the hole → split (§6/§7.2): head dedups +3, the hole after re-mmap is a new BO', (t) => {
  const { h, f } = ready();
  const a = mapAnon(8);
  const r = h.create(f, ME, a, 8 * PG);
  R.unmap(a + 3 * PG, 2 * PG);
  const d = h.create(f, ME, a + PG, PG);
  t.is(d.ret, 3);
  t.is(d.handle, r.handle);
  t.is(d.offset, BigInt(PG));
  t.is(h.handle(f, r.handle)!.userptr!.last, a + 3 * PG - 1);
  R.mapAt(a + 3 * PG, 2 * PG);
  const n = h.create(f, ME, a + 3 * PG, PG);
  t.is(n.ret, 0);
  t.not(n.handle, r.handle);
  f.close();
  R.unmap(a, 8 * PG);
});

test.serial('madvise DONTNEED → CLEAR removed → EVICT deletes the BO (§7.4)', (t) => {
  const { h, f } = ready();
  const evs = traced(h);
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  u.madvise(a, 4 * PG, C.MADV_DONTNEED);
  u.poke(a, Buffer.from([9])); // refault (may even get the same frame back: removal still counts)
  t.is(h.info(f, ME, r.handle), 'ENOENT');
  t.like(evs.find((e) => e.event === 'CLEAR'), { start: a, end: a + 4 * PG, removed: true, note: 'uffd REMOVE, madvise DONTNEED' });
  t.is(h.dev.stats.userptrsEvicted, 1);
  f.close();
  R.unmap(a, 4 * PG);
});

test.serial('madvise DONTNEED of part → the removed part is split off, the rest lives', (t) => {
  const { h, f } = ready();
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  u.madvise(a + 2 * PG, 2 * PG, C.MADV_DONTNEED);
  t.is(h.info(f, ME, r.handle), 0);
  t.is(h.handle(f, r.handle)!.userptr!.last, a + 2 * PG - 1);
  f.close();
  R.unmap(a, 4 * PG);
});

test.serial('madvise FREE → CLEAR not removed → BO unchanged', (t) => {
  const { h, f } = ready();
  const evs = traced(h);
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  u.madvise(a, 4 * PG, C.MADV_FREE);
  t.is(h.info(f, ME, r.handle), 0);
  t.like(evs.find((e) => e.event === 'CLEAR'), { removed: false, note: 'uffd REMOVE, madvise FREE' });
  t.is(h.create(f, ME, a, 4 * PG).ret, 3, 'still valid for dedup');
  f.close();
  R.unmap(a, 4 * PG);
});

test.serial('mremap move → REMAP + UNMAP of the old range → BO deleted; the moved VMA is unregistered', (t) => {
  const { h, f, env } = ready();
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  const dest = R.mapAt(R.take(4 * PG), 4 * PG, C.PROT_NONE);
  t.is(u.mremap(a, 4 * PG, 4 * PG, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, dest), dest);
  R.refill(a, 4 * PG); // the old range is a true hole: take it back, never unmap it again
  t.is(h.info(f, ME, r.handle), 'ENOENT');
  t.notRegex(vmFlags('self', dest), / uw/, 'registration dropped at the destination');
  t.is(env.events.uffd!.counters.remap, 1);
  R.unmap(dest, 4 * PG); // would block forever if it were still registered with nobody reading... it is read; and not registered
  f.close();
});

test.serial('mremap shrink → UNMAP of the tail → split; grow-with-move → BO deleted', (t) => {
  const { h, f } = ready();
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  t.is(u.mremap(a, 4 * PG, PG, 0), a);
  R.refill(a + PG, 3 * PG); // the shrunk tail is a true hole
  t.is(h.info(f, ME, r.handle), 0);
  t.is(h.handle(f, r.handle)!.userptr!.last, a + PG - 1);
  const b = mapAnon(2);
  R.mapAt(b + 2 * PG, PG, C.PROT_NONE); // block in-place growth
  const rb = h.create(f, ME, b, 2 * PG);
  const moved = u.mremap(b, 2 * PG, 64 * PG, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, R.take(64 * PG));
  t.not(moved, b);
  R.refill(b, 2 * PG);
  t.is(h.info(f, ME, rb.handle), 'ENOENT');
  f.close();
  R.unmap(a, PG);
  R.unmap(b + 2 * PG, PG);
  R.unmap(moved, 64 * PG);
});

test.serial('mprotect RO then RW → /proc PROTECTION_VMA → EVICT finds the same frames → unchanged (§7.4)', (t) => {
  const { h, f } = ready();
  const evs = traced(h);
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  u.mprotect(a, 2 * PG, C.PROT_READ);
  h.poke(f, ME);
  u.mprotect(a, 2 * PG, RW);
  t.is(h.info(f, ME, r.handle), 0);
  t.true(evs.some((e) => e.event === 'PROTECTION_VMA' && e.start === a && e.end === a + 2 * PG));
  t.is(h.dev.stats.userptrsEvicted, 0);
  f.close();
  R.unmap(a, 4 * PG);
});

test.serial('auto, nothing changed: an ioctl reads no maps file and asks about at most LIGHT_PER_DRAIN ranges; an mprotect is still seen within n / LIGHT_PER_DRAIN ioctls', (t) => {
  const { h, f, env } = ready({ procIntervalMs: 0 });
  const evs = traced(h);
  const n = 5 * LIGHT_PER_DRAIN;
  const a = mapAnon(2 * n);
  // One userptr on every other page: n ranges (in our own process each is registered exactly, so each is a VMA).
  for (let i = 0; i < n; i++) t.is(h.create(f, ME, a + 2 * i * PG, PG).ret, 0);
  t.is(env.events.proc.registrations(), n);
  const vq = env.memory.vmas.counters;
  const reads = vq.fileReads, queries = vq.queries, ranges = env.events.proc.rangesChecked;
  for (let k = 0; k < 20; k++) h.poke(f, ME);
  t.is(vq.fileReads, reads, 'no whole maps read at an ioctl entry');
  t.true(env.events.proc.rangesChecked - ranges <= 20 * LIGHT_PER_DRAIN);
  t.true(vq.queries - queries <= 20 * LIGHT_PER_DRAIN, `PROCMAP_QUERY calls: ${vq.queries - queries} for 20 ioctls`);
  // An mprotect over the last userptr's page: seen within n / LIGHT_PER_DRAIN ioctls (the checker's walk comes round).
  const last = a + 2 * (n - 1) * PG;
  u.mprotect(last, PG, C.PROT_READ);
  for (let k = 0; k < n / LIGHT_PER_DRAIN && !evs.some((e) => e.event === 'PROTECTION_VMA'); k++) h.poke(f, ME);
  t.like(evs.find((e) => e.event === 'PROTECTION_VMA'), { start: last, end: last + PG });
  t.is(vq.fileReads, reads);
  u.mprotect(last, PG, RW);
  f.close();
  R.unmap(a, 2 * n * PG);
});

test.serial('munmap of a whole registered range: its registration went with it, no UFFDIO_UNREGISTER follows', (t) => {
  const { h, f, env } = ready();
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  const c = env.events.uffd!.counters;
  const before = { unreg: c.vmaUnregisters, err: c.unregisterErrors };
  R.munmap(a, 4 * PG);
  R.refill(a, 4 * PG);
  t.is(h.info(f, ME, r.handle), 'ENOENT');
  t.is(c.vmaUnregisters, before.unreg, 'nothing to unregister');
  t.is(c.unregisterErrors, before.err);
  f.close();
});

test.serial('fork → FORK → PROTECTION_PAGE; parent writes while the child lives and after it exits: BO stays alive', async (t) => {
  const { h, f, env } = ready();
  const evs = traced(h);
  const a = mapAnon(4);
  const r = h.create(f, ME, a, 4 * PG);
  const fds = uffdFds();
  const child = u.forkChild(Float64Array.from([C.FORK_OP_SLEEP_MS, 100, 0, 0, C.FORK_OP_WRITE_U8, a + PG, 7, 0, C.FORK_OP_EXIT, 0, 0, 0]));
  u.poke(a, Buffer.from([1])); // parent COW write while the child lives: a silent frame change
  t.is(h.info(f, ME, r.handle), 0);
  t.is(uffdFds(), fds, 'the child\'s new uffd was closed at the first drain');
  t.true(evs.some((e) => e.event === 'PROTECTION_PAGE' && e.note === 'uffd FORK'));
  t.is(u.waitpid(child, 0).status, 0);
  u.poke(a + 2 * PG, Buffer.from([2]));
  h.poke(f, ME);
  t.is(h.info(f, ME, r.handle), 0);
  t.is(env.events.uffd!.counters.forkFdsClosed, 1);
  f.close();
  R.unmap(a, 4 * PG);
});

test.serial('forced frame change with no event (process_madvise MADV_COLLAPSE) leaves the userptr alive; frames updated silently', (t) => {
  const { h, f } = ready();
  const a = R.map(HUGE / PG, { align: HUGE, touch: false });
  for (let off = 0; off < HUGE; off += PG) u.poke(a + off, Buffer.from([1]));
  const r = h.create(f, ME, a, HUGE);
  t.is(r.ret, 0);
  const mem = h.dev.clients.get(ME)!.memory;
  const before = mem.frames(a, 512);
  const pidfd = u.pidfdOpen(ME);
  try {
    u.processMadvise(pidfd, [{ addr: a, len: HUGE }], C.MADV_COLLAPSE);
  } catch (e) {
    u.close(pidfd);
    R.unmap(a, HUGE);
    f.close();
    t.log(`MADV_COLLAPSE unavailable: ${String(e)}`);
    t.pass();
    return;
  }
  u.close(pidfd);
  const after = mem.frames(a, 512);
  t.true(after.some((x, i) => x !== before[i]), 'collapse moved pages');
  u.mprotect(a, PG, C.PROT_READ); // an EVICT check over the first page…
  h.poke(f, ME);
  u.mprotect(a, PG, RW);
  t.is(h.info(f, ME, r.handle), 0, '…finds a changed frame with no removal: not an invalidation');
  t.true(h.dev.stats.silentFrameUpdates > 0);
  f.close();
  R.unmap(a, HUGE);
});

test.serial('two userptrs over the same pages: closing one keeps the other registered', (t) => {
  const { h, f, env } = ready();
  const a = mapAnon(4);
  const r1 = h.create(f, ME, a, 4 * PG);
  const ctx = h.open(ME); // a second file of the same process: no dedup across files
  const r2 = h.create(ctx, ME, a + PG, 2 * PG);
  t.is(r2.ret, 0);
  t.is(env.events.uffd!.registrations(), 2);
  t.is(h.gemClose(f, ME, r1.handle), 0);
  t.regex(vmFlags('self', a + PG), / uw/);
  t.true(env.events.exact(a + PG, a + 3 * PG - 1));
  R.unmap(a, 4 * PG);
  t.is(h.info(ctx, ME, r2.handle), 'ENOENT');
  f.close(); ctx.close();
});

test.serial('async wake-up: munmap alone (no further ioctl) deletes the BO via onPending → service(), with no /proc check', async (t) => {
  const { h, f, env } = ready({ procIntervalMs: 0 });
  const a = mapAnon(2);
  const r = h.create(f, ME, a, 2 * PG);
  const checks = env.events.proc.checks, ranges = env.events.proc.rangesChecked, reads = env.memory.vmas.counters.fileReads;
  R.munmap(a, 2 * PG); // a real munmap, and no further ioctl
  R.refill(a, 2 * PG);
  t.true(await until(() => h.handle(f, r.handle) === undefined, 2000));
  t.true(h.serviced > 0);
  // the wake-up's drain takes the uffd's events only: the /proc comparison is the ioctl entry's and the timer's
  t.is(env.events.proc.checks, checks);
  t.is(env.events.proc.rangesChecked, ranges);
  t.is(env.memory.vmas.counters.fileReads, reads);
  f.close();
});

test.serial('serving-loop wake-up: with a wake queue (notifyFd), munmap bumps it with the client pid and queues no onPending call; the loop\'s service() deletes the BO', async (t) => {
  const q = u.wakeQueueCreate();
  try {
    const { h, f } = ready({ procIntervalMs: 0, notifyFd: q });
    const a = mapAnon(2);
    const r = h.create(f, ME, a, 2 * PG);
    R.munmap(a, 2 * PG); // returns once the reader read UNMAP; its bump follows
    R.refill(a, 2 * PG);
    t.true(await until(() => u.pollReadable([q], 0) !== 0, 2000), 'the wake fd is readable');
    u.eventfdDrain(q);
    t.deepEqual([...u.wakeQueueDrain(q)], [ME]);
    await new Promise((res) => setTimeout(res, 20)); // event-loop turns: an onPending call would have run by now
    t.is(h.serviced, 0, 'no onPending call: a serving loop is woken through the fd only');
    t.not(h.handle(f, r.handle), undefined, 'nothing serviced yet');
    h.dev.service(ME); // what the serving loop does for each pid the queue names
    t.is(h.handle(f, r.handle), undefined);
    f.close();
    h.provider.shutdown();
  } finally {
    u.wakeQueueClose(q);
  }
});

test.serial('/proc mode: munmap → UNMAP at the next ioctl, mprotect unchanged, DONTNEED evicts; exact() false', (t) => {
  const { h, f, env } = ready({ watch: 'proc', procIntervalMs: 0 });
  t.is(env.events.uffd, null);
  const a = mapAnon(4), b = mapAnon(4), c = mapAnon(4);
  const ra = h.create(f, ME, a, 4 * PG), rb = h.create(f, ME, b, 4 * PG), rc = h.create(f, ME, c, 4 * PG);
  t.false(env.events.exact(a, a + PG - 1));
  R.munmap(a, 4 * PG); // a real munmap: /proc must see the mapping gone
  u.mprotect(b, 4 * PG, C.PROT_READ);
  u.madvise(c, 4 * PG, C.MADV_DONTNEED);
  t.is(h.info(f, ME, ra.handle), 'ENOENT');
  R.refill(a, 4 * PG);
  t.is(h.info(f, ME, rb.handle), 0);
  t.is(h.info(f, ME, rc.handle), 'ENOENT');
  f.close();
  R.unmap(b, 4 * PG);
  R.unmap(c, 4 * PG);
});

test.serial('§5 ordering: 10k free/re-register cycles at the same address never return the stale BO', (t) => {
  const { h, f } = ready();
  const a = mapAnon(1);
  let prev = -1, bad = 0;
  const N = 10000;
  for (let i = 0; i < N; i++) {
    const r = h.create(f, ME, a, PG);
    if (r.ret !== 0 || r.resId === prev) bad++;
    prev = r.resId;
    R.unmap(a, PG); // the old mapping is unmapped (uffd UNMAP), the address stays ours
    R.mapAt(a, PG);
    u.poke(a, Buffer.from([i & 0xff]));
  }
  t.is(bad, 0);
  t.is(h.dev.counts().handles, 1);
  f.close();
  R.unmap(a, PG);
});

test.serial('counts, registrations, readers and fds return to zero after release', (t) => {
  const fds0 = openFds();
  const { h, f, env } = ready();
  const a = mapAnon(8);
  for (let i = 0; i < 4; i++) h.create(f, ME, a + i * 2 * PG, 2 * PG);
  const w = env.events.uffd!;
  t.truthy(w.readerStats()?.running);
  t.true(openFds() > fds0);
  f.close();
  t.like(h.dev.counts(), { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0, queued: 0 });
  t.is(h.provider.live.size, 0);
  t.true(w.released);
  t.is(w.readerStats(), null);
  t.notRegex(vmFlags('self', a), / uw/);
  t.is(openFds(), fds0);
  R.unmap(a, 8 * PG);
});
