// bench/watch: the real-memory watchers (uffd/).
//  1. munmap → BO deleted latency on the uffd path: the client (this process) munmaps a userptr range; time until
//     the device's snapshot shows the handle gone through the watcher's async wake-up (onPending → service()), with
//     no further ioctl. Median / p99.
//  2. client-side cost of munmap and madvise(DONTNEED) over a registered range vs an unregistered one (ratio): the
//     blocking round trip through the native reader thread.
//  2b. what watching whole VMAs costs the client: munmap / madvise(DONTNEED) of a range outside every userptr but in
//     a VMA holding one (the event is read and dropped) vs the same call in an unwatched VMA; and the VMA lookup a
//     registration makes (PROCMAP_QUERY vs parsing /proc/PID/maps).
//  3. /proc checker cost per GiB: one check() over 1 GiB of touched 4 KiB pages, frames compared (no uffd) and
//     mappings only (uffd covers the range).
// Run: node dist/bench/watch.js [--quick]
import { performance } from 'perf_hooks';
import { createDevice, RecordingHost, type DeviceFile } from '../core';
import { loadTestkit } from '../uffd/load';
import { createOwnUffd } from '../uffd/acquire';
import { UffdWatcher } from '../uffd/uffd-watcher';
import { ProcWatcher } from '../uffd/proc-watcher';
import { ProcessMemory } from '../uffd/process-memory';
import { parseMaps } from '../uffd/proc-maps';
import * as fs from 'fs';
import { createClientProvider } from '../uffd/provider';
import { header, summarize, table, fmt, type Sample } from './lib/measure';
import { Reservation, reservation } from '../tests/uffd/helpers/reservation';
import { createBlob, VIRTGPU_CONTEXT_INIT as CONTEXT_INIT, VIRTGPU_RESOURCE_CREATE_BLOB as CREATE_BLOB } from '../tests/helpers/bytes';

const u = loadTestkit();
const C = u.constants;
const PG = C.PAGE_SIZE;
const ME = process.pid;
const RW = C.PROT_READ | C.PROT_WRITE;
const ANON = C.MAP_PRIVATE | C.MAP_ANONYMOUS;
const quick = process.argv.includes('--quick');

function touch(a: number, pages: number): void { for (let i = 0; i < pages; i++) u.poke(a + i * PG, Buffer.from([1])); }
function now(): number { return performance.now(); }

/** CREATE_BLOB(HOST3D_GUEST, USE_USERPTR, blob_id 1) of [userptr, userptr + size). */
const blob = (userptr: number, size: number): Uint8Array => createBlob({ blobMem: 3, flags: 8, size, blobId: 1, userptr });

/** 1. munmap → BO deleted through onPending → service(). */
async function munmapToDeleted(n: number, pages: number): Promise<Sample> {
  let wake: (() => void) | null = null;
  const provider = createClientProvider({ watch: 'auto', procIntervalMs: 0, onPending: (pid) => { dev.service(pid); wake?.(); } });
  const dev = createDevice({ host: new RecordingHost(1000), clients: provider });
  const f: DeviceFile = dev.open(ME);
  const params = Buffer.alloc(16); params.writeBigUInt64LE(1n, 0); params.writeBigUInt64LE(8n, 8);
  const ci = Buffer.alloc(16); ci.writeUInt32LE(1, 0); ci.writeBigUInt64LE(BigInt(u.bufferAddress(params)), 8);
  if (f.ioctl(ME, CONTEXT_INIT, ci).result !== 0) throw new Error('context init');
  const lat: number[] = [];
  const R = reservation(); // every mapping at one address of our reservation; each munmap's hole is refilled
  const a = R.take(pages * PG);
  for (let i = 0; i < n + 50; i++) {
    R.mapAt(a, pages * PG);
    touch(a, pages);
    const r = f.ioctl(ME, CREATE_BLOB, blob(a, pages * PG));
    if (r.result !== 0) throw new Error(`create ${String(r.result)}`);
    const handle = new DataView(r.out.buffer, r.out.byteOffset).getUint32(8, true);
    const gone = new Promise<void>((resolve) => { wake = resolve; });
    const t0 = now();
    R.munmap(a, pages * PG); // returns once the reader thread read UNMAP
    await gone;
    const t1 = now();
    wake = null;
    if (!R.refill(a, pages * PG)) throw new Error('the munmapped range was taken by another mapping');
    if (f.drm.handles.get(handle)) throw new Error('handle still alive after service()');
    if (i >= 50) lat.push((t1 - t0) * 1000);
  }
  f.close();
  provider.shutdown();
  return summarize(`munmap → BO deleted (${pages} pages)`, 'µs', lat);
}

/** 2. client-side munmap / madvise(DONTNEED) cost, registered (uffd WP + reader) vs not. */
function clientCost(n: number): { munmapReg: Sample; munmapUnreg: Sample; dnReg: Sample; dnUnreg: Sample } {
  const w = new UffdWatcher({ pid: ME, uffd: createOwnUffd(u) });
  const pages = 4;
  const R = reservation();
  const at = R.take(pages * PG);
  const munmapOnce = (reg: boolean): number => {
    R.mapAt(at, pages * PG);
    touch(at, pages);
    if (reg && !w.tryRegister(1, at, at + pages * PG - 1).ok) throw new Error('register');
    const t0 = now();
    R.munmap(at, pages * PG);
    const dt = (now() - t0) * 1000;
    if (!R.refill(at, pages * PG)) throw new Error('the munmapped range was taken by another mapping');
    if (reg) { w.unregister(1); w.drain(); }
    return dt;
  };
  const a = R.map(1), b = R.map(1);
  if (!w.tryRegister(2, a, a + PG - 1).ok) throw new Error('register');
  const dontneed = (addr: number): number => {
    u.poke(addr, Buffer.from([1]));
    const t0 = now();
    u.madvise(addr, PG, C.MADV_DONTNEED);
    return (now() - t0) * 1000;
  };
  const run = (f: () => number): number[] => { for (let i = 0; i < 200; i++) f(); return Array.from({ length: n }, f); };
  const out = {
    munmapUnreg: summarize('munmap 16 KiB, unregistered', 'µs', run(() => munmapOnce(false))),
    munmapReg: summarize('munmap 16 KiB, registered (uffd UNMAP round trip)', 'µs', run(() => munmapOnce(true))),
    dnUnreg: summarize('madvise(DONTNEED) 4 KiB of a touched page, unregistered', 'µs', run(() => dontneed(b))),
    dnReg: summarize('madvise(DONTNEED) 4 KiB of a touched page, registered (uffd REMOVE round trip)', 'µs', run(() => { const x = dontneed(a); if (Math.random() < 0.01) w.drain(); return x; })),
  };
  w.drain();
  w.release();
  R.unmap(a, PG); R.unmap(b, PG);
  return out;
}

/**
 * 2b. Whole-VMA registration: the client's calls elsewhere in a watched VMA. One VMA of n chunks of 8 pages with a
 * 1-page userptr at its start (registration covers the whole VMA); each sample unmaps (or DONTNEEDs) 4 touched pages
 * of another chunk. Nothing is drained during the loop, so every chunk stays registered (the watcher would let go of
 * the pieces no userptr touches once it processes the UNMAP).
 */
function vmaCost(n: number): { munmapIn: Sample; munmapOut: Sample; dnIn: Sample; dnOut: Sample; query: Sample; parse: Sample } {
  const chunk = 8, pages = 4;
  const one = (watched: boolean, op: 'munmap' | 'dontneed'): Sample => {
    const len = (n + 1) * chunk * PG;
    // inside a PROT_NONE reservation: the VMA under test merges with nothing of Node's (its whole VMA is registered)
    const res = u.mmap(0, len + 2 * PG, C.PROT_NONE, ANON | C.MAP_NORESERVE, -1, 0);
    const a = u.mmap(res + PG, len, RW, ANON | C.MAP_NORESERVE | C.MAP_FIXED, -1, 0);
    const w = watched ? new UffdWatcher({ pid: ME, uffd: createOwnUffd(u), wholeVmas: true }) : null;
    if (w && !w.tryRegister(1, a, a + PG - 1).ok) throw new Error('register');
    for (let i = 1; i <= n; i++) touch(a + i * chunk * PG, pages);
    const xs: number[] = [];
    for (let i = 1; i <= n; i++) {
      const at = a + i * chunk * PG;
      const t0 = now();
      if (op === 'munmap') u.munmap(at, pages * PG); else u.madvise(at, pages * PG, C.MADV_DONTNEED);
      xs.push((now() - t0) * 1000);
    }
    if (w) {
      w.drain();
      if (w.counters.dropped !== n) throw new Error(`dropped ${w.counters.dropped} of ${n}`);
      w.release();
    }
    u.munmap(res, len + 2 * PG);
    const what = op === 'munmap' ? `munmap ${pages * 4} KiB` : `madvise(DONTNEED) ${pages * 4} KiB of touched pages`;
    return summarize(`${what}, outside the userptr, ${watched ? 'in its watched VMA (event read and dropped)' : 'unwatched VMA'}`, 'µs', xs.slice(Math.min(200, n >> 2)));
  };
  const munmapOut = one(false, 'munmap'), munmapIn = one(true, 'munmap'), dnOut = one(false, 'dontneed'), dnIn = one(true, 'dontneed');
  const fd = fs.openSync(`/proc/${ME}/maps`, 'r');
  const q = new Float64Array(3);
  const probe = u.mmap(0, PG, RW, ANON, -1, 0);
  const lookups = Math.max(1000, n);
  const qs: number[] = [], ps: number[] = [];
  for (let i = 0; i < lookups; i++) { const t0 = now(); u.procmapQuery(fd, probe, false, q); qs.push((now() - t0) * 1000); }
  for (let i = 0; i < Math.min(lookups, 2000); i++) { const t0 = now(); parseMaps(fs.readFileSync(`/proc/${ME}/maps`, 'latin1'), probe, probe + PG); ps.push((now() - t0) * 1000); }
  fs.closeSync(fd);
  u.munmap(probe, PG);
  const nmaps = fs.readFileSync(`/proc/${ME}/maps`, 'latin1').split('\n').length - 1;
  return {
    munmapIn, munmapOut, dnIn, dnOut,
    query: summarize('VMA lookup: PROCMAP_QUERY on /proc/PID/maps', 'µs', qs),
    parse: summarize(`VMA lookup: read + parse /proc/PID/maps (${nmaps} lines)`, 'µs', ps),
  };
}

/** 3. /proc checker: ms per check over `mib` MiB of touched pages. */
function procCost(mib: number, reps: number): { frames: Sample; maps: Sample } {
  const len = mib * 1024 * 1024;
  const R = new Reservation(len + 2 * PG); // room for the guard pages around the range
  const a = R.mapAt(R.take(len), len, RW, ANON | C.MAP_NORESERVE);
  u.madvise(a, len, C.MADV_NOHUGEPAGE);
  u.madvise(a, len, C.MADV_POPULATE_WRITE);
  const mem = new ProcessMemory(ME);
  const measure = (framesToo: boolean): number[] => {
    const pw = new ProcWatcher(mem);
    pw.register(1, a, a + len - 1, framesToo);
    const xs: number[] = [];
    for (let i = 0; i < reps + 3; i++) { const t0 = now(); pw.check(); const dt = now() - t0; if (i >= 3) xs.push(dt); }
    if (pw.drain().length) throw new Error('unexpected /proc events');
    pw.release();
    return xs;
  };
  const frames = summarize(`/proc check, frames compared, ${mib} MiB`, 'ms', measure(true));
  const maps = summarize(`/proc check, mappings only, ${mib} MiB`, 'ms', measure(false));
  mem.close();
  R.unmap(a, len);
  return { frames, maps };
}

export async function main(): Promise<string> {
  const keepAlive = setInterval(() => undefined, 1000); // the reader's wake-up is unref'd: keep the loop alive while awaiting it
  const out: string[] = [];
  const print = (s: string): void => { out.push(s); };
  print(header(`npm run bench -- watch${quick ? ' (--quick)' : ''}`));
  const n = quick ? 300 : 3000;
  const lat1 = await munmapToDeleted(n, 1);
  const lat16 = await munmapToDeleted(n, 16);
  const cc = clientCost(n);
  const vc = vmaCost(quick ? 300 : 2000);
  const mib = quick ? 256 : 1024;
  const pc = procCost(mib, quick ? 5 : 15);
  const perGiB = (s: Sample) => (s.median * 1024) / mib;
  print('');
  print(table('munmap → BO deleted, uffd path (client = this process; async wake-up → device.service(), no further ioctl)', [
    { name: `${lat1.name}, median`, value: lat1.median, unit: 'µs', note: `p99 ${fmt(lat1.p99)} µs, n=${lat1.n}` },
    { name: `${lat16.name}, median`, value: lat16.median, unit: 'µs', note: `p99 ${fmt(lat16.p99)} µs, n=${lat16.n}` },
  ]));
  print('');
  print(table('client-side cost of the blocking event round trip (baseline: same call, unregistered range)', [
    { name: cc.munmapUnreg.name, value: cc.munmapUnreg.median, unit: 'µs', note: `p99 ${fmt(cc.munmapUnreg.p99)} µs (baseline)` },
    { name: cc.munmapReg.name, value: cc.munmapReg.median, unit: 'µs', baseline: cc.munmapUnreg.median, note: `p99 ${fmt(cc.munmapReg.p99)} µs` },
    { name: cc.dnUnreg.name, value: cc.dnUnreg.median, unit: 'µs', note: `p99 ${fmt(cc.dnUnreg.p99)} µs (baseline)` },
    { name: cc.dnReg.name, value: cc.dnReg.median, unit: 'µs', baseline: cc.dnUnreg.median, note: `p99 ${fmt(cc.dnReg.p99)} µs` },
  ]));
  print('');
  print(table('whole-VMA registration: the client\'s calls outside every userptr (baseline: same call in an unwatched VMA), and the lookup per registration', [
    { name: vc.munmapOut.name, value: vc.munmapOut.median, unit: 'µs', note: `p99 ${fmt(vc.munmapOut.p99)} µs (baseline)` },
    { name: vc.munmapIn.name, value: vc.munmapIn.median, unit: 'µs', baseline: vc.munmapOut.median, note: `p99 ${fmt(vc.munmapIn.p99)} µs` },
    { name: vc.dnOut.name, value: vc.dnOut.median, unit: 'µs', note: `p99 ${fmt(vc.dnOut.p99)} µs (baseline)` },
    { name: vc.dnIn.name, value: vc.dnIn.median, unit: 'µs', baseline: vc.dnOut.median, note: `p99 ${fmt(vc.dnIn.p99)} µs` },
    { name: vc.parse.name, value: vc.parse.median, unit: 'µs', note: `p99 ${fmt(vc.parse.p99)} µs (baseline: the fallback)` },
    { name: vc.query.name, value: vc.query.median, unit: 'µs', baseline: vc.parse.median, note: `p99 ${fmt(vc.query.p99)} µs; one per VMA a registration touches` },
  ]));
  print('');
  print(table(`/proc checker cost (measured over ${mib} MiB of 4 KiB pages, scaled per GiB)`, [
    { name: 'frames compared (no uffd on the range), per GiB', value: perGiB(pc.frames), unit: 'ms', note: `median of ${pc.frames.n}; p99 ${fmt((pc.frames.p99 * 1024) / mib)} ms/GiB` },
    { name: 'mappings only (uffd covers the range), per GiB', value: perGiB(pc.maps), unit: 'ms', baseline: perGiB(pc.frames), note: `ratio to the frames check; p99 ${fmt((pc.maps.p99 * 1024) / mib)} ms/GiB` },
  ]));
  clearInterval(keepAlive);
  return out.join('\n');
}

if (require.main === module) main().then((s) => console.log(s), (e) => { console.error(e); process.exit(1); });
