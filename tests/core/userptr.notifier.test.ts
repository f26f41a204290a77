// Spec §4–§7: invalidation events, the work list, split, evict with frame re-check, observable consequences.
import test from 'ava';
import { Harness, USE_USERPTR, USERPTR_RDONLY } from '../helpers/core-harness';
import { DeferredScheduler, PROT_R, PROT_RW } from '../../core/testing';

const PG = 4096;
function ready(opts: ConstructorParameters<typeof Harness>[0] = {}, mode: 'uffd' | 'proc' = 'uffd') {
  const h = new Harness(opts);
  const p = h.proc(mode);
  const f = h.open(p);
  if (h.initHsakmt(f, p) !== 0) throw new Error('context');
  return { h, p, f };
}

test('§7.1 full munmap: the next create flushes; old handle → GEM_CLOSE EINVAL, RESOURCE_INFO ENOENT; host saw DETACH + UNREF', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  const b = p.mmap(PG);
  const keep = h.create(f, p, b, PG);
  p.munmap(a, 4 * PG);
  t.is(h.create(f, p, b, PG).ret, 3, 'the next create (a dedup: no new handle to reuse the number)');
  t.is(h.close(f, p, r.handle), 'EINVAL');
  t.true(h.alive(f, p, keep.handle));
  t.is(h.info(f, p, r.handle).ret, 'ENOENT');
  t.deepEqual(h.hostOf(r.resId).slice(-2), ['CTX_DETACH_RESOURCE', 'RESOURCE_UNREF']);
});

test('§5 ordering: after munmap returns, ANY next ioctl of that client already sees the BO deleted', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(2 * PG);
  const r = h.create(f, p, a, 2 * PG);
  p.munmap(a, 2 * PG);
  t.is(h.info(f, p, r.handle).ret, 'ENOENT', 'RESOURCE_INFO itself runs the entry flush');
});

test('§5 ordering: free + re-register at the same address never returns the stale BO (tight loop)', (t) => {
  const { h, p, f } = ready();
  let addr = p.mmap(PG);
  let prev = -1;
  for (let i = 0; i < 500; i++) {
    const r = h.create(f, p, addr, PG);
    t.is(r.ret, 0, `iteration ${i}`);
    t.not(r.resId, prev);
    prev = r.resId;
    p.munmap(addr, PG);
    addr = p.mmap(PG, PROT_RW, { fixed: addr });
  }
  t.is(h.dev.counts().handles, 1);
});

test('§6/§7.2 partial munmap of the tail: kept head dedups (+3, offset from the original start); dropped part makes a new BO', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * PG);
  const r = h.create(f, p, a, 8 * PG);
  p.munmap(a + 6 * PG, 2 * PG);
  const d = h.create(f, p, a + 2 * PG, 2 * PG);
  t.is(d.ret, 3);
  t.is(d.handle, r.handle);
  t.is(d.offset, BigInt(2 * PG));
  const u = h.userptrOf(f, r.handle)!;
  t.deepEqual([u.start, u.last], [a, a + 6 * PG - 1]);
  t.deepEqual(u.registered, [a, a + 6 * PG - 1], 'UPDATE re-registered the shrunk range');
  p.mmap(2 * PG, PROT_RW, { fixed: a + 6 * PG });
  const n = h.create(f, p, a + 6 * PG, PG);
  t.is(n.ret, 0);
  t.not(n.handle, r.handle);
  t.is(h.info(f, p, r.handle).size, 8 * PG, 'the host resource keeps its original size');
});

test('§6 partial munmap of the head keeps the tail; offsets stay anchored at the original start', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * PG);
  const r = h.create(f, p, a, 8 * PG);
  p.munmap(a, 3 * PG);
  const d = h.create(f, p, a + 5 * PG, PG);
  t.is(d.ret, 3);
  t.is(d.offset, BigInt(5 * PG));
  t.deepEqual([h.userptrOf(f, r.handle)!.start, h.userptrOf(f, r.handle)!.last], [a + 3 * PG, a + 8 * PG - 1]);
});

test('§6 a hole in the middle keeps only the part before it (everything after the hole is dropped)', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * PG);
  const r = h.create(f, p, a, 8 * PG);
  p.munmap(a + 3 * PG, PG);
  const u = h.userptrOf(f, (h.poke(f, p), r.handle))!;
  t.deepEqual([u.start, u.last], [a, a + 3 * PG - 1]);
  t.is(h.create(f, p, a + 5 * PG, PG).ret, 0, 'after the hole: a new BO');
  t.is(h.create(f, p, a + PG, PG).ret, 3, 'before the hole: dedup');
});

test('§7.4 madvise(DONTNEED) over a populated userptr evicts it (pages removed), even if the refault gives the same frame', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.madvise(a, 4 * PG, 'DONTNEED');
  p.touch(a, 4 * PG); // refault before the next ioctl
  h.poke(f, p);
  t.false(h.alive(f, p, r.handle));
  t.is(h.dev.stats.userptrsEvicted, 1);
});

test('§4 DONTNEED of part: EVICT splits, keeping the part before the removed pages', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * PG);
  const r = h.create(f, p, a, 8 * PG);
  p.madvise(a + 4 * PG, PG, 'DONTNEED');
  h.poke(f, p);
  const u = h.userptrOf(f, r.handle)!;
  t.deepEqual([u.start, u.last], [a, a + 4 * PG - 1]);
  t.true(u.valid);
});

test('§4 MADV_FREE removes nothing: the BO is unchanged', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.madvise(a, 4 * PG, 'FREE');
  h.poke(f, p);
  const u = h.userptrOf(f, r.handle)!;
  t.deepEqual([u.start, u.last, u.valid], [a, a + 4 * PG - 1, true]);
  t.is(h.create(f, p, a, PG).ret, 3);
});

test('§7.4 mprotect that leaves the pages in place: EVICT finds the same frames, nothing changes', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.mprotect(a, 4 * PG, PROT_R);
  p.mprotect(a, 4 * PG, PROT_RW);
  t.true(h.alive(f, p, r.handle));
  t.is(h.create(f, p, a + PG, PG).ret, 3);
});

test('§4 shared memory: DONTNEED then refault to the same page-cache page is compared by frame (kept); MADV_REMOVE frees it (evicted)', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(2 * PG, PROT_RW, { shared: true });
  const r = h.create(f, p, a, 2 * PG);
  p.madvise(a, 2 * PG, 'DONTNEED');
  p.touch(a, 2 * PG);
  t.true(h.alive(f, p, r.handle), 'same page-cache pages');
  p.madvise(a, 2 * PG, 'REMOVE');
  p.touch(a, 2 * PG);
  t.false(h.alive(f, p, r.handle), 'a new page after MADV_REMOVE');
});

test('§4 frames and pins: fork → PROTECTION_PAGE → EVICT finds the same frames; the parent writing later (COW) is a silent frame update', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  const child = h.adopt(p.fork());
  h.poke(f, p);
  t.true(h.alive(f, p, r.handle), 'fork alone changes nothing');
  p.touch(a, 4 * PG, true); // parent's copy-on-write: new frames, no event
  child.touch(a, PG, true);
  t.true(h.alive(f, p, r.handle));
  p.mprotect(a, PG, PROT_R); // forces an EVICT check now
  t.true(h.alive(f, p, r.handle), 'changed frames without a removal are updated silently');
  t.true(h.dev.stats.silentFrameUpdates >= 1);
  t.is(h.create(f, p, a, 4 * PG).ret, 3);
});

test('§4 frames and pins: a migration (compaction/THP collapse) with no event leaves the userptr alive', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.migrate(a, 4 * PG);
  p.mprotect(a, 4 * PG, PROT_RW);
  t.true(h.alive(f, p, r.handle));
});

test('§4 /proc checker alone: a changed or missing frame is the only signal and counts as changed', (t) => {
  const { h, p, f } = ready({}, 'proc');
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.migrate(a, PG);
  h.poke(f, p);
  const u = h.userptrOf(f, r.handle);
  t.true(u === undefined || u.start > a, 'the migrated page is no longer part of the BO');
  const b = p.mmap(2 * PG);
  const r2 = h.create(f, p, b, 2 * PG);
  p.munmap(b, 2 * PG);
  h.poke(f, p);
  t.false(h.alive(f, p, r2.handle), 'unmap seen through /proc/PID/maps');
  const c = p.mmap(2 * PG);
  const r3 = h.create(f, p, c, 2 * PG);
  p.mprotect(c, 2 * PG, PROT_R);
  h.poke(f, p);
  t.true(h.alive(f, p, r3.handle), 'protection change with the same frames: kept');
});

test('§4 mremap move: UNMAP of the old range deletes the BO; mremap shrink splits it', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.mremap(a, 4 * PG, 4 * PG, a - 64 * PG);
  t.false(h.alive(f, p, r.handle));
  const b = p.mmap(4 * PG);
  const r2 = h.create(f, p, b, 4 * PG);
  p.mremap(b, 4 * PG, 2 * PG);
  h.poke(f, p);
  const u = h.userptrOf(f, r2.handle)!;
  t.deepEqual([u.start, u.last], [b, b + 2 * PG - 1]);
});

test('§4 events are clipped to the current range: an event outside a split userptr is ignored', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(8 * PG);
  const r = h.create(f, p, a, 8 * PG);
  p.munmap(a + 4 * PG, 4 * PG); // keeps [0,4)
  h.poke(f, p);
  p.mmap(4 * PG, PROT_RW, { fixed: a + 4 * PG });
  const other = h.create(f, p, a + 4 * PG, 4 * PG);
  p.madvise(a + 4 * PG, 4 * PG, 'DONTNEED');
  h.poke(f, p);
  t.true(h.alive(f, p, r.handle), 'pages outside the kept part are not its business');
  t.false(h.alive(f, p, other.handle));
});

test('§5 coalescing: UNMAP always wins over a later EVICT; the worker deletes the handle once', (t) => {
  const sched = new DeferredScheduler();
  const { h, p, f } = ready({ scheduler: sched });
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.munmap(a, 4 * PG);
  p.mmap(4 * PG, PROT_RW, { fixed: a });
  h.poke(f, p); // drained, queued, not run
  const u = h.userptrOf(f, r.handle)!;
  t.deepEqual([u.op, u.inRelease, u.valid], ['UNMAP', true, false]);
  t.is(h.dev.counts().queued, 1);
  sched.held = false;
  h.poke(f, p);
  t.false(h.alive(f, p, r.handle));
  t.is(h.userptrOf(f, r.handle), undefined);
});

test('§5 coalescing: a queued userptr is not valid — dedup misses it until the worker ran, and create flushes first', (t) => {
  const sched = new DeferredScheduler();
  const { h, p, f } = ready({ scheduler: sched });
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.mprotect(a, PG, PROT_R);
  p.mprotect(a, PG, PROT_RW);
  h.poke(f, p);
  t.is(h.userptrOf(f, r.handle)!.op, 'EVICT');
  const d = h.create(f, p, a, PG); // create flushes (docs/semantics.md §3.4) whatever the scheduler says
  t.is(d.ret, 3);
  t.is(h.userptrOf(f, r.handle)!.op, null, 'EVICT leaves op = NULL [decision]');
});

test('§5 a queued item whose object was closed meanwhile is dropped', (t) => {
  const sched = new DeferredScheduler();
  const { h, p, f } = ready({ scheduler: sched });
  const a = p.mmap(2 * PG);
  const r = h.create(f, p, a, 2 * PG);
  p.munmap(a, 2 * PG);
  h.poke(f, p);
  t.is(h.close(f, p, r.handle), 0);
  const b = p.mmap(2 * PG);
  const n = h.create(f, p, b, 2 * PG); // reuses handle number r.handle
  t.is(n.handle, r.handle);
  sched.held = false;
  h.poke(f, p);
  t.true(h.alive(f, p, n.handle), 'UNMAP deletes the handle only if it still names the same object [decision]');
});

test('§5 clients are processes: a second file of the same process shares its watcher; another process does not see its userptrs', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(2 * PG);
  const r = h.create(f, p, a, 2 * PG);
  const q = h.proc();
  const g = h.open(q);
  h.initHsakmt(g, q);
  const b = q.mmap(2 * PG);
  const r2 = h.create(g, q, b, 2 * PG);
  q.munmap(b, 2 * PG);
  h.poke(f, p);
  t.true(h.alive(f, p, r.handle));
  h.poke(g, q);
  t.false(h.alive(g, q, r2.handle));
});

test('§7.3 pin mode: munmap changes nothing visible; the handle lives until GEM_CLOSE; the host keeps the page list', (t) => {
  const { h, p, f } = ready({ mode: 'pin' });
  const a = p.mmap(4 * PG);
  const r = h.create(f, p, a, 4 * PG);
  p.munmap(a, 4 * PG);
  h.poke(f, p);
  t.true(h.alive(f, p, r.handle));
  t.deepEqual(h.hostOf(r.resId), ['RESOURCE_CREATE_BLOB', 'CTX_ATTACH_RESOURCE']);
  t.is(h.dev.counts().pins, 4);
  t.is(h.close(f, p, r.handle), 0);
  t.is(h.dev.counts().pins, 0);
});

test('§7.5 counts return to zero after close, whatever happened before; exit (RELEASE) is ignored', (t) => {
  const { h, p, f } = ready();
  const a = p.mmap(16 * PG);
  h.create(f, p, a, 8 * PG);
  h.create(f, p, a + PG, PG);
  h.create(f, p, a + 4 * PG, 8 * PG);
  h.create(f, p, a + 12 * PG, 4 * PG, USE_USERPTR | USERPTR_RDONLY);
  p.munmap(a + 2 * PG, PG);
  p.madvise(a + 9 * PG, PG, 'DONTNEED');
  p.exit();
  h.poke(f, p);
  t.true(h.dev.counts().handles >= 1);
  f.close();
  t.deepEqual(h.dev.counts(), { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0, queued: 0, contexts: 0, blobMemory: 0, blobMemoryBytes: 0, fences: 0 });
  t.is(h.released.get(p.pid), 1);
  t.is(h.host.liveResources(), 0);
  const log = h.host.log.map((c) => c.cmd);
  t.is(log[log.length - 1], 'CTX_DESTROY', 'close: handles released, then CTX_DESTROY');
});

test('§3 closing the file flushes pending work first (no double free of an UNMAP-queued BO)', (t) => {
  const sched = new DeferredScheduler();
  const { h, p, f } = ready({ scheduler: sched });
  const a = p.mmap(2 * PG);
  const r = h.create(f, p, a, 2 * PG);
  p.munmap(a, 2 * PG);
  f.close();
  t.is(h.host.ofType('RESOURCE_UNREF').filter((c) => c.resId === r.resId).length, 1);
  t.is(h.dev.counts().handles, 0);
});
