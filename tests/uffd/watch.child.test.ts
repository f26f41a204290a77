// A separate C client process (tests/c/uffd_client.c) started under the preload library: it hands its userfaultfd
// over at load time (UffdHandoff), then performs real memory operations while a core Device, fed with its pid,
// sees the docs/semantics.md §4 events and gives the §7 outcomes. Also: no uffd (proc only), EBUSY (the client's own uffd),
// a daemon that never reads (client in D state until shutdown), multithreaded client, forced frame change.
import test from 'ava';
import * as fs from 'fs';
import type { NotifierEvent } from '../../core';
import { ChildClient, RealHarness, childClientFixture, hex, procState, watcherFds, vmFlags, until, sleep, u, C, PG } from './helpers/real-harness';

const HUGE = 2 * 1024 * 1024;
const fx = childClientFixture(test);
const { skip, clients } = fx;

async function ready(opts: ConstructorParameters<typeof RealHarness>[0] = {}, withHandoff = true) {
  const c = await ChildClient.start(withHandoff ? fx.handoff : undefined);
  clients.push(c);
  const h = new RealHarness({ handoff: fx.handoff, ...opts });
  h.setScratch(c.pid, await c.num('mmap 1'));
  const f = h.open(c.pid);
  const env = h.provider.live.get(c.pid)!;
  return { c, h, f, env, pid: c.pid };
}

function traced(h: RealHarness): NotifierEvent[] {
  const evs: NotifierEvent[] = [];
  h.dev.trace = (e) => {
    if (e.t === 'notifier' && (e as { handle?: number }).handle === undefined) evs.push({ event: e.event as NotifierEvent['event'], start: e.start, end: e.end, removed: e.removed, note: e.note });
  };
  return evs;
}

const t0 = skip ? test.serial.skip : test.serial;
if (skip) test('child client tests', (t) => { t.log(skip); t.pass(); });

t0('preload handoff: the daemon holds the client\'s uffd, the client kept no copy; ranges are registered on it', async (t) => {
  const { c, h, f, env, pid } = await ready();
  t.truthy(env.events.uffd);
  const own = fs.readdirSync(`/proc/${pid}/fd`).map((x) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${x}`); } catch { return ''; } });
  t.false(own.some((l) => l.includes('userfaultfd')));
  const a = await c.num('mmap 4');
  const r = h.create(f, pid, a, 4 * PG);
  t.is(r.ret, 0);
  t.regex(vmFlags(pid, a), / uw/);
  t.true(env.events.exact(a, a + 4 * PG - 1));
  await c.cmd(`munmap ${hex(a)} ${4 * PG}`);
  t.is(h.info(f, pid, r.handle), 'ENOENT');
  f.close();
});

t0('munmap middle → split; DONTNEED → evicted; MADV_FREE → unchanged; mprotect → unchanged', async (t) => {
  const { c, h, f, pid } = await ready();
  const evs = traced(h);
  const a = await c.num('mmap 8'), b = await c.num('mmap 4'), d = await c.num('mmap 4'), e = await c.num('mmap 4');
  const ra = h.create(f, pid, a, 8 * PG), rb = h.create(f, pid, b, 4 * PG), rd = h.create(f, pid, d, 4 * PG), re = h.create(f, pid, e, 4 * PG);
  await c.cmd(`munmap ${hex(a + 2 * PG)} ${PG}`);
  await c.cmd(`madvise ${hex(b)} ${4 * PG} ${C.MADV_DONTNEED}`);
  await c.cmd(`madvise ${hex(d)} ${4 * PG} ${C.MADV_FREE}`);
  await c.cmd(`mprotect ${hex(e)} ${4 * PG} ${C.PROT_READ}`);
  t.is(h.create(f, pid, a, 2 * PG).ret, 3, 'kept head dedups');
  t.is(h.handle(f, ra.handle)!.userptr!.last, a + 2 * PG - 1);
  t.is(h.info(f, pid, rb.handle), 'ENOENT');
  t.is(h.info(f, pid, rd.handle), 0);
  t.is(h.info(f, pid, re.handle), 0);
  t.like(evs.find((x) => x.event === 'CLEAR' && x.start === b), { removed: true });
  t.like(evs.find((x) => x.event === 'CLEAR' && x.start === d), { removed: false, note: 'uffd REMOVE, madvise FREE' });
  t.true(evs.some((x) => x.event === 'PROTECTION_VMA' && x.start === e));
  f.close();
});

t0('mremap move → BO deleted; mremap shrink → split', async (t) => {
  const { c, h, f, pid } = await ready();
  const a = await c.num('mmap 4'), b = await c.num('mmap 4');
  const ra = h.create(f, pid, a, 4 * PG), rb = h.create(f, pid, b, 4 * PG);
  const dest = await c.num('mmap 4');
  t.is(await c.num(`mremap ${hex(a)} ${4 * PG} ${4 * PG} ${C.MREMAP_MAYMOVE | C.MREMAP_FIXED} ${hex(dest)}`), dest);
  await c.cmd(`mremap ${hex(b)} ${4 * PG} ${PG} 0`);
  t.is(h.info(f, pid, ra.handle), 'ENOENT');
  t.is(h.info(f, pid, rb.handle), 0);
  t.is(h.handle(f, rb.handle)!.userptr!.last, b + PG - 1);
  t.notRegex(vmFlags(pid, dest), / uw/);
  f.close();
});

t0('fork: PROTECTION_PAGE; the parent writes while the child lives and after it exits: BO alive; child uffd closed', async (t) => {
  const { c, h, f, pid, env } = await ready();
  const evs = traced(h);
  const a = await c.num('mmap 4');
  const r = h.create(f, pid, a, 4 * PG);
  const kid = await c.num(`fork 150 ${hex(a + PG)} 7`);
  await c.cmd(`write ${hex(a)} 4 1`); // COW break in the parent while the child is alive: silent frame change
  t.is(h.info(f, pid, r.handle), 0);
  t.true(evs.some((x) => x.event === 'PROTECTION_PAGE'));
  await c.cmd(`wait ${kid}`);
  await c.cmd(`write ${hex(a)} 4 2`);
  t.is(h.info(f, pid, r.handle), 0);
  t.is(env.events.uffd!.counters.forkFdsClosed, 1);
  t.is(h.create(f, pid, a, 4 * PG).ret, 3);
  f.close();
});

t0('multithreaded client: one uffd per process, events from other threads, FREE from a thread told apart', async (t) => {
  const { c, h, f, pid, env } = await ready();
  const evs = traced(h);
  const a = await c.num('thread mmap 4'), b = await c.num('thread mmap 4');
  t.is(h.provider.watchingClients, 0, 'no range registered yet');
  const ra = h.create(f, pid, a, 4 * PG), rb = h.create(f, pid, b, 4 * PG);
  t.is(env.events.uffd!.registrations(), 2);
  t.is(h.provider.watchingClients, 1, 'one client with registered ranges, however many ranges');
  await c.cmd(`thread madvise ${hex(a)} ${4 * PG} ${C.MADV_FREE}`);
  await c.cmd(`thread munmap ${hex(b)} ${4 * PG}`);
  t.is(h.info(f, pid, ra.handle), 0);
  t.is(h.info(f, pid, rb.handle), 'ENOENT');
  t.like(evs.find((x) => x.event === 'CLEAR'), { removed: false });
  t.false(h.provider.announcements.some((m) => /EBUSY/.test(m)));
  t.is(h.provider.watchingClients, 1, 'one range left');
  f.close();
  t.is(h.provider.watchingClients, 0, 'the last range went with the file');
});

t0('forced frame change with no event: process_madvise(MADV_COLLAPSE) on the client leaves the userptr alive', async (t) => {
  const { c, h, f, pid } = await ready();
  const raw = await c.num(`mmap ${(2 * HUGE) / PG}`);
  const a = Math.ceil(raw / HUGE) * HUGE;
  const r = h.create(f, pid, a, HUGE);
  t.is(r.ret, 0);
  const mem = h.dev.clients.get(pid)!.memory;
  const before = mem.frames(a, HUGE / PG);
  const pidfd = u.pidfdOpen(pid);
  try { u.processMadvise(pidfd, [{ addr: a, len: HUGE }], C.MADV_COLLAPSE); } catch (e) { t.log(`no collapse: ${String(e)}`); } finally { u.close(pidfd); }
  const after = mem.frames(a, HUGE / PG);
  t.log(`frames changed: ${after.filter((x, i) => x !== before[i]).length}/${HUGE / PG}`);
  await c.cmd(`mprotect ${hex(a)} ${PG} ${C.PROT_READ}`); // forces an EVICT check over a collapsed page
  t.is(h.info(f, pid, r.handle), 0);
  if (after.some((x, i) => x !== before[i])) t.true(h.dev.stats.silentFrameUpdates > 0);
  f.close();
});

t0('client without a handed-over uffd: /proc checker at its next ioctl (announced); populate by touching', async (t) => {
  const { c, h, f, pid, env } = await ready({ procIntervalMs: 0 }, false);
  t.is(env.events.uffd, null);
  t.true(h.provider.announcements.some((m) => /no userfaultfd/.test(m)));
  const a = await c.num('mmap 4'), b = await c.num('mmap 4');
  await c.cmd(`madvise ${hex(b)} ${4 * PG} ${C.MADV_DONTNEED}`); // untouched again: create must populate from outside
  const ra = h.create(f, pid, a, 4 * PG), rb = h.create(f, pid, b, 4 * PG);
  t.is(rb.ret, 0);
  t.is(env.memory.populateMethod, 'touch', 'process_madvise(MADV_POPULATE_*) is refused: pages are touched (announced once per daemon)');
  await c.cmd(`munmap ${hex(a)} ${4 * PG}`);
  await c.cmd(`mprotect ${hex(b)} ${4 * PG} ${C.PROT_READ}`);
  t.is(h.info(f, pid, ra.handle), 'ENOENT');
  t.is(h.info(f, pid, rb.handle), 0);
  f.close();
});

t0('EBUSY: the client registered its own uffd first → that range falls back to /proc (announced once), outcomes still right', async (t) => {
  const { c, h, f, pid, env } = await ready({ procIntervalMs: 0 });
  const a = await c.num('mmap 4'), b = await c.num('mmap 4');
  await c.cmd(`ownuffd ${hex(a)} ${4 * PG}`);
  await c.cmd(`ownuffd ${hex(b)} ${4 * PG}`);
  const ra = h.create(f, pid, a, 4 * PG), rb = h.create(f, pid, b, 4 * PG);
  t.is(ra.ret, 0);
  t.is(env.events.uffd!.registrations(), 0);
  t.false(env.events.exact(a, a + PG - 1));
  t.is(h.provider.announcements.filter((m) => /EBUSY/.test(m)).length, 1);
  await c.cmd(`munmap ${hex(a)} ${4 * PG}`);
  await c.cmd(`madvise ${hex(b)} ${2 * PG} ${C.MADV_DONTNEED}`);
  t.is(h.info(f, pid, ra.handle), 'ENOENT');
  t.is(h.handle(f, rb.handle)?.userptr?.start, b + 2 * PG, 'removed head split off at the next ioctl');
  f.close();
});

t0('a daemon that never reads: the client sits in D state in munmap; shutting the daemon down releases it', async (t) => {
  const { c, h, f, pid } = await ready({ startReader: false, procIntervalMs: 0 });
  const a = await c.num('mmap 4');
  const r = h.create(f, pid, a, 4 * PG);
  t.is(r.ret, 0);
  c.send(`munmap ${hex(a)} ${4 * PG}`);
  t.true(await until(() => procState(pid) === 'D', 3000), `state ${procState(pid)}`);
  await sleep(50);
  t.is(procState(pid), 'D');
  h.provider.shutdown(); // daemon shutdown: every uffd closed
  t.is(await c.next(3000), 'ok');
  t.not(procState(pid), 'D');
  f.close();
  t.is(h.dev.counts().handles, 0);
});

t0('client exit → RELEASE (ignored: handles live until close); counts and fds back to zero', async (t) => {
  const fds0 = watcherFds();
  const { c, h, f, pid } = await ready();
  const evs = traced(h);
  const a = await c.num('mmap 4');
  const r = h.create(f, pid, a, 4 * PG);
  await c.exit();
  await new Promise((res) => setTimeout(res, 150)); // exit is polled at most every 100 ms
  // An ioctl entry drains as the caller's own: a client making an ioctl is alive, so no exit check there.
  h.poke(f, pid);
  t.false(evs.some((x) => x.event === 'RELEASE'), 'not at an entry of its own ioctl');
  // Any other drain looks: here a watcher's wake-up.
  h.dev.service(pid);
  t.true(evs.some((x) => x.event === 'RELEASE'));
  t.is(h.handle(f, r.handle)?.handle, r.handle);
  f.close();
  t.like(h.dev.counts(), { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0 });
  t.is(h.provider.live.size, 0);
  t.is(watcherFds(), fds0);
});

t0('kernel queries: a create asks about its range once (pin, populate, uffd registration and /proc baseline share the answer); its close asks once besides the entry check', async (t) => {
  const { c, h, f, env, pid } = await ready({ procIntervalMs: 0 });
  const a = await c.num('mmap 4');
  const vq = env.memory.vmas.counters;
  const q0 = vq.queries, r0 = vq.reused;
  const r = h.create(f, pid, a, 4 * PG);
  t.is(r.ret, 0);
  t.true(env.events.exact(a, a + 4 * PG - 1));
  t.is(vq.queries - q0, 1, 'one PROCMAP_QUERY: the range lies in one VMA');
  t.true(vq.reused - r0 >= 2, `answers reused: ${vq.reused - r0}`);
  const q1 = vq.queries;
  t.is(h.gemClose(f, pid, r.handle), 0);
  t.is(vq.queries - q1, 2, 'the entry\'s mapping check of the one range, and the VMA of the area let go');
  t.is(vq.fileReads, 0);
  f.close();
});
