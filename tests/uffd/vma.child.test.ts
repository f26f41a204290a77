// Watching changes nothing the client can see: the uffd watcher registers whole VMAs (uffd/uffd-watcher.ts), so the
// client's VMA layout, its mremap of a partly covered mapping and its own userfaultfd in other VMAs behave as in a
// run without the server. Every scenario runs twice, in a watched client and in a plain one (no server), and the
// outcomes are compared. The child C client (tests/c/uffd_client.c) maps everything inside PROT_NONE reservations
// it never gives up, so neighbours are fixed and never merge with the mappings under test.
import test from 'ava';
import * as fs from 'fs';
import { ChildClient, RealHarness, childClientFixture, hex, vmFlags, C, PG } from './helpers/real-harness';

const fx = childClientFixture(test);
const { skip, clients } = fx;

/** VMA count of a process: lines of /proc/PID/maps, read from outside (the client allocates nothing for it). */
function vmas(pid: number): number { return fs.readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n').filter(Boolean).length; }

/** A client with the server (watched: handoff + harness) or without it (plain). */
async function client(watched: boolean) {
  const c = await ChildClient.start(watched ? fx.handoff : undefined);
  clients.push(c);
  if (!watched) return { c, pid: c.pid, h: null, f: null };
  const h = new RealHarness({ handoff: fx.handoff, procIntervalMs: 0 });
  h.setScratch(c.pid, await c.num('mmap 1'));
  const f = h.open(c.pid);
  return { c, pid: c.pid, h, f };
}

/** `pages` RW pages at page 1 of a fresh reservation of pages + 2 (PROT_NONE guard on each side). */
async function guarded(c: ChildClient, pages: number, spare = 0): Promise<number> {
  const r = await c.num(`reserve ${pages + 2 + spare}`);
  return c.num(`mmapfix ${hex(r + PG)} ${pages}`);
}

const t0 = skip ? test.serial.skip : test.serial;
if (skip) test('vma tests', (t) => { t.log(skip); t.pass(); });

t0('VMA count right after registration equals the count without the server (scattered userptrs, several per VMA)', async (t) => {
  const counts: Record<string, number[]> = {};
  for (const watched of [false, true]) {
    const { c, pid, h, f } = await client(watched);
    const a = await guarded(c, 16), b = await guarded(c, 16), d = await guarded(c, 8);
    const before = vmas(pid);
    if (h && f) {
      for (const [at, pages] of [[a + 4 * PG, 2], [a + 10 * PG, 1], [b + 7 * PG, 3], [d, 8], [a + 5 * PG, 6]] as const) t.is(h.create(f, pid, at, pages * PG).ret, 0);
      t.regex(vmFlags(pid, a), / uw/);
      t.regex(vmFlags(pid, a + 15 * PG), / uw/, 'the whole VMA is registered');
      t.deepEqual(h.provider.live.get(pid)!.events.uffd!.watchedAreas(), [[a, a + 16 * PG], [b, b + 16 * PG], [d, d + 8 * PG]].sort((x, y) => x[0] - y[0]));
    }
    counts[watched ? 'watched' : 'plain'] = [before, vmas(pid)];
    f?.close();
  }
  t.log(counts);
  t.is(counts.plain[1] - counts.plain[0], 0);
  t.is(counts.watched[1] - counts.watched[0], 0, 'registration split no VMA');
});

t0('mremap of a mapping half covered by a userptr succeeds as without the server; the moved range is an unmap (BO deleted)', async (t) => {
  const results: Record<string, string[]> = {};
  for (const watched of [false, true]) {
    const { c, pid, h, f } = await client(watched);
    const out: string[] = [];
    // grow with MAYMOVE (the reservation's guard page forbids growing in place: it moves) and a fixed move
    const a = await guarded(c, 8), b = await guarded(c, 8);
    const dest = await c.num('reserve 8');
    const ra = h && f ? h.create(f, pid, a, 4 * PG) : null;
    const rb = h && f ? h.create(f, pid, b + 4 * PG, 4 * PG) : null;
    for (const cmd of [`mremap ${hex(a)} ${8 * PG} ${16 * PG} ${C.MREMAP_MAYMOVE}`, `mremap ${hex(b)} ${8 * PG} ${8 * PG} ${C.MREMAP_MAYMOVE | C.MREMAP_FIXED} ${hex(dest)}`]) {
      try { const [at] = await c.cmd(cmd); out.push(Number(at) === a || Number(at) === b ? 'in place' : 'moved'); } catch (e) { out.push(String((e as Error).message).split('-> ')[1]); }
    }
    if (h && f && ra && rb) {
      t.is(h.info(f, pid, ra.handle), 'ENOENT', 'moved away = unmapped at the old address');
      t.is(h.info(f, pid, rb.handle), 'ENOENT');
      t.notRegex(vmFlags(pid, dest), / uw/, 'the moved VMA is not left registered');
      t.deepEqual(h.provider.live.get(pid)!.events.uffd!.watchedAreas(), []);
      f.close();
    }
    results[watched ? 'watched' : 'plain'] = out;
  }
  t.deepEqual(results.plain, ['moved', 'moved']);
  t.deepEqual(results.watched, results.plain);
});

t0('mremap that keeps the userptr (uncovered half moved away, in-place grow) works as without the server; the BO stays', async (t) => {
  const results: Record<string, string[]> = {};
  for (const watched of [false, true]) {
    const { c, pid, h, f } = await client(watched);
    const out: string[] = [];
    // One reservation holds everything, so no neighbour outside it can merge differently in the two runs:
    // [guard][a: 8 pages][guard][dest: 4 reserved pages][guard][b: 8 pages][4 pages freed for the growth][rest]
    const r = await c.num('reserve 40');
    const a = await c.num(`mmapfix ${hex(r + PG)} 8`);
    const dest = r + 10 * PG;
    const b = await c.num(`mmapfix ${hex(r + 15 * PG)} 8`);
    await c.cmd(`munmap ${hex(b + 8 * PG)} ${4 * PG}`); // our own reservation; nothing else maps in this client
    const ra = h && f ? h.create(f, pid, a, 4 * PG) : null;
    const rb = h && f ? h.create(f, pid, b, 4 * PG) : null;
    const before = vmas(pid);
    for (const cmd of [`mremap ${hex(a + 4 * PG)} ${4 * PG} ${4 * PG} ${C.MREMAP_MAYMOVE | C.MREMAP_FIXED} ${hex(dest)}`, `mremap ${hex(b)} ${8 * PG} ${12 * PG} 0`]) {
      try { const [at] = await c.cmd(cmd); out.push(Number(at) === b ? 'in place' : 'moved'); } catch (e) { out.push(String((e as Error).message).split('-> ')[1]); }
    }
    out.push(`vmas ${vmas(pid) - before}`);
    if (h && f && ra && rb) {
      t.is(h.info(f, pid, ra.handle), 0);
      t.is(h.handle(f, ra.handle)?.userptr?.last, a + 4 * PG - 1);
      t.is(h.info(f, pid, rb.handle), 0);
      t.notRegex(vmFlags(pid, dest), / uw/, 'the moved (uncovered) half is let go');
      t.regex(vmFlags(pid, b + 10 * PG), / uw/, 'grown in place: the kernel keeps the registration on the whole VMA');
      t.is(h.gemClose(f, pid, rb.handle), 0);
      t.notRegex(vmFlags(pid, b + 10 * PG), / uw/, 'the whole grown VMA is unregistered with its last userptr');
      f.close();
    }
    results[watched ? 'watched' : 'plain'] = out;
  }
  t.log(results);
  t.deepEqual(results.plain.slice(0, 2), ['moved', 'in place']);
  t.deepEqual(results.watched, results.plain);
});

t0('the client\'s own userfaultfd: in another VMA it works as without the server; inside a watched VMA it gets EBUSY', async (t) => {
  const results: Record<string, string[]> = {};
  for (const watched of [false, true]) {
    const { c, pid, h, f } = await client(watched);
    const a = await guarded(c, 8), other = await guarded(c, 4);
    if (h && f) t.is(h.create(f, pid, a, 2 * PG).ret, 0);
    const out: string[] = [];
    for (const cmd of [`ownuffd ${hex(other)} ${4 * PG}`, `ownuffd ${hex(a + 4 * PG)} ${4 * PG}`]) {
      try { await c.cmd(cmd); out.push('ok'); } catch (e) { out.push(String((e as Error).message).split('-> err ')[1]); }
    }
    results[watched ? 'watched' : 'plain'] = out;
    // the client's munmap in its own uffd's VMA goes to its reader, not to ours
    await c.cmd(`munmap ${hex(other)} ${PG}`);
    f?.close();
  }
  t.deepEqual(results.plain, ['ok', 'ok']);
  t.deepEqual(results.watched, ['ok', 'EBUSY'], 'documented: a watched VMA takes no second userfaultfd');
});

t0('events elsewhere in a watched VMA are read and dropped; the last userptr of a VMA unregisters all of it', async (t) => {
  const { c, pid, h, f } = await client(true);
  const a = await guarded(c, 16);
  const before = vmas(pid);
  const r = h!.create(f!, pid, a + 2 * PG, 2 * PG);
  const w = h!.provider.live.get(pid)!.events.uffd!;
  await c.cmd(`madvise ${hex(a + 8 * PG)} ${PG} ${C.MADV_DONTNEED}`);
  await c.cmd(`munmap ${hex(a + 12 * PG)} ${2 * PG}`); // splits the VMA as it would without the server
  t.is(h!.info(f!, pid, r.handle), 0);
  t.is(w.counters.dropped, 2);
  h!.poke(f!, pid);
  t.notRegex(vmFlags(pid, a + 14 * PG), / uw/, 'the piece no userptr touches is unregistered');
  t.deepEqual(w.watchedAreas(), [[a, a + 12 * PG]]);
  const r2 = h!.create(f!, pid, a + 6 * PG, PG);
  t.is(h!.gemClose(f!, pid, r.handle), 0);
  t.regex(vmFlags(pid, a), / uw/, 'still needed by the second userptr');
  t.is(h!.gemClose(f!, pid, r2.handle), 0);
  t.notRegex(vmFlags(pid, a), / uw/);
  t.is(vmas(pid), before + 1, 'only the client\'s own munmap split the mapping');
  t.is(w.counters.unregisterErrors, 0);
  f!.close();
  t.like(h!.dev.counts(), { files: 0, clients: 0, handles: 0, registrations: 0 });
});

t0('a userptr spanning two VMAs (different protections) registers both whole; a partial unmap keeps the rest watched', async (t) => {
  const { c, pid, h, f } = await client(true);
  const a = await guarded(c, 16);
  await c.cmd(`mprotect ${hex(a + 8 * PG)} ${8 * PG} ${C.PROT_READ}`);
  const before = vmas(pid);
  const r = h!.create(f!, pid, a + 6 * PG, 4 * PG, 8 | 16 /* USE_USERPTR | USERPTR_RDONLY */);
  t.is(r.ret, 0);
  t.is(vmas(pid), before);
  const w = h!.provider.live.get(pid)!.events.uffd!;
  t.deepEqual(w.watchedAreas(), [[a, a + 16 * PG]]);
  await c.cmd(`munmap ${hex(a + 6 * PG)} ${PG}`);
  h!.poke(f!, pid);
  t.is(h!.handle(f!, r.handle)?.userptr?.start, a + 7 * PG, 'head unmapped: the BO keeps the rest');
  t.true(w.exact(a + 7 * PG, a + 10 * PG - 1));
  t.is(vmas(pid), before + 1);
  f!.close();
  t.is(vmFlags(pid, a + 8 * PG).includes(' uw'), false);
});

t0('a client gone before its file is closed: its watched VMAs are let go without a failed syscall each', async (t) => {
  const { c, pid, h, f } = await client(true);
  const w = h!.provider.live.get(pid)!.events.uffd!;
  for (let i = 0; i < 3; i++) t.is(h!.create(f!, pid, await guarded(c, 4), 4 * PG).ret, 0);
  t.is(w.watchedAreas().length, 3);
  await c.exit();
  f!.close();
  t.is(w.counters.unregisterErrors, 0);
  t.like(h!.dev.counts(), { files: 0, clients: 0, handles: 0, registrations: 0 });
  t.is(h!.provider.live.size, 0);
});
