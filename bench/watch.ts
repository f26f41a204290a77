// bench/watch: the real-memory watchers (uffd/).
//  1. munmap → BO deleted latency on the uffd path: the client (this process) munmaps a userptr range; time until
//     the device's snapshot shows the handle gone through the watcher's async wake-up (onPending → service()), with
//     no further ioctl. Median / p99. Also from the reader's read() of the event to the end of that service()
//     (event read → BO deleted), in-process and in `serve` (a C client through the FUSE node; the server's summary),
//     and the same path in C across two processes (tests/c/uffd_floor: munmap call → event read → another thread of
//     the reader's process woken) as the floor, same run, at each size (the kernel unmaps the pages before it queues
//     the event: on a VM that can be ~20 µs per touched page, so 16 pages cost several times one page on both sides).
//  2. client-side cost of munmap and madvise(DONTNEED) over a registered range vs an unregistered one (ratio): the
//     blocking round trip through the native reader thread.
//  2b. what watching whole VMAs costs the client: munmap / madvise(DONTNEED) of a range outside every userptr but in
//     a VMA holding one (the event is read and dropped) vs the same call in an unwatched VMA; and the VMA lookup a
//     registration makes (PROCMAP_QUERY vs parsing /proc/PID/maps).
//  3. /proc checker cost per GiB: one check() over 1 GiB of touched 4 KiB pages, frames compared (no uffd) and
//     mappings only (uffd covers the range).
//  4. the watcher's bookkeeping at scale: one more userptr registered and dropped among n live ones (each in its own
//     VMA), and an UNMAP event drained that cuts a hole in one VMA holding n userptrs; ratios to n = 100, same run.
// Run: node dist/bench/watch.js [--quick]
import { performance } from 'perf_hooks';
import { createDevice, RecordingHost, type DeviceFile } from '../core';
import { loadTestkit } from '../uffd/load';
import { createOwnUffd } from '../uffd/acquire';
import { adoptUffd } from '../uffd/verify';
import { UffdWatcher } from '../uffd/uffd-watcher';
import { ProcWatcher } from '../uffd/proc-watcher';
import { ProcessMemory } from '../uffd/process-memory';
import { parseMaps } from '../uffd/proc-maps';
import * as fs from 'fs';
import { createClientProvider } from '../uffd/provider';
import { header, summarize, table, fmt, type Sample } from './lib/measure';
import { eventLatency } from '../uffd/event-latency';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { exited, handoffEnv, pin, startServer } from './transport';
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

const ROOT = path.resolve(__dirname, '..', '..');
const C_BIN = path.join(ROOT, 'tests', 'c', 'bin');

/**
 * 1. munmap → BO deleted through onPending → service(); and event read → BO deleted of the same munmaps. One device,
 * file and address for the session; run() adds samples (blocks interleaved with the C floor's, same run).
 */
class MunmapSession {
  private wake: (() => void) | null = null;
  private readUs = NaN;
  private readonly provider = createClientProvider({ watch: 'auto', procIntervalMs: 0, onPending: (pid) => { eventLatency.begin(); this.dev.service(pid); this.readUs = eventLatency.done(); this.wake?.(); } });
  private readonly dev = createDevice({ host: new RecordingHost(1000), clients: this.provider });
  private readonly f: DeviceFile = this.dev.open(ME);
  private readonly R = reservation(); // every mapping at one address of our reservation; each munmap's hole is refilled
  private readonly a: number;
  private readonly lat: number[] = [];
  private readonly fromRead: number[] = [];

  constructor(readonly pages: number) {
    const params = Buffer.alloc(16); params.writeBigUInt64LE(1n, 0); params.writeBigUInt64LE(8n, 8);
    const ci = Buffer.alloc(16); ci.writeUInt32LE(1, 0); ci.writeBigUInt64LE(BigInt(u.bufferAddress(params)), 8);
    if (this.f.ioctl(ME, CONTEXT_INIT, ci).result !== 0) throw new Error('context init');
    this.a = this.R.take(pages * PG);
  }

  /** n samples after `warm` unrecorded ones. */
  async run(n: number, warm = 50): Promise<void> {
    const { R, a, f, pages } = this;
    for (let i = 0; i < n + warm; i++) {
      R.mapAt(a, pages * PG);
      touch(a, pages);
      const r = f.ioctl(ME, CREATE_BLOB, blob(a, pages * PG));
      if (r.result !== 0) throw new Error(`create ${String(r.result)}`);
      const handle = new DataView(r.out.buffer, r.out.byteOffset).getUint32(8, true);
      const gone = new Promise<void>((resolve) => { this.wake = resolve; });
      this.readUs = NaN;
      const t0 = now();
      R.munmap(a, pages * PG); // returns once the reader thread read UNMAP
      await gone;
      const t1 = now();
      this.wake = null;
      if (!R.refill(a, pages * PG)) throw new Error('the munmapped range was taken by another mapping');
      if (f.drm.handles.get(handle)) throw new Error('handle still alive after service()');
      if (Number.isNaN(this.readUs)) throw new Error('a wake-up serviced no uffd event');
      if (i >= warm) { this.lat.push((t1 - t0) * 1000); this.fromRead.push(this.readUs); }
    }
  }

  close(): { call: Sample; read: Sample } {
    this.f.close();
    this.provider.shutdown();
    const p = this.pages;
    return { call: summarize(`munmap call → BO deleted (${p} pages)`, 'µs', this.lat), read: summarize(`event read → BO deleted (${p} pages)`, 'µs', this.fromRead) };
  }
}

export async function munmapToDeleted(n: number, pages: number): Promise<{ call: Sample; read: Sample }> {
  const s = new MunmapSession(pages);
  await s.run(n);
  return s.close();
}

interface FloorRow { row: string; median_us: number; p99_us: number; n: number }
/** The C floor of the munmap path across two processes (tests/c/uffd_floor), rows by name. */
function cFloor(n: number, pages: number): Map<string, FloorRow> {
  const out = execFileSync(path.join(C_BIN, 'uffd_floor'), ['-n', String(n), '-p', String(pages)], { encoding: 'utf8', timeout: 600_000 });
  const rows = new Map<string, FloorRow>();
  for (const l of out.trim().split('\n')) { const r = JSON.parse(l) as FloorRow; if (r.row) rows.set(r.row, r); }
  return rows;
}

/** Floor rows of several runs (blocks of one run of ours): median and p99 are the medians over the blocks. */
function mergeFloor(blocks: Array<Map<string, FloorRow>>): Map<string, FloorRow> {
  const mid = (xs: number[]): number => summarize('', '', xs).median;
  const out = new Map<string, FloorRow>();
  for (const row of blocks[0]!.keys()) {
    const rs = blocks.map((b) => b.get(row)!);
    out.set(row, { row, median_us: mid(rs.map((r) => r.median_us)), p99_us: mid(rs.map((r) => r.p99_us)), n: rs.reduce((k, r) => k + r.n, 0) });
  }
  return out;
}

/**
 * Event read → BO deleted in `serve` (FUSE, default watcher, the client's uffd handed over): a C client maps a page,
 * creates a userptr over it and munmaps it, n times, idle 200 µs after each (tests/c/bin/ioctl_bench -o unmap); the
 * server's wake-up services the event. The server's stop summary gives median / p99 over its latest 4096 events.
 * `pinned`: the server (every thread) on CPU 0 and the client on CPU 1; otherwise both where the scheduler puts them.
 * The difference is the scheduler's share: unpinned, the reader's wake-up can land the serving thread on the client's
 * CPU or move it, and it then runs on cold caches.
 */
async function serveEventToDeleted(n: number, pinned: boolean): Promise<{ n: number; median: number; p99: number; line: string }> {
  const cli = path.join(ROOT, 'dist', 'cli', 'main.js');
  const o = await startServer(process.execPath, [cli, 'serve', '--transport', 'fuse'], /^virtgpu-emu: serving (\S+) \((.*)\)$/m);
  let line = '';
  try {
    if (pinned) pin(o.proc.pid!, '0'); // its threads now; the reader a client's handoff starts inherits it
    const env = await handoffEnv(o.stderr);
    if (!env) throw new Error('serve offered no uffd handoff');
    const client = [path.join(C_BIN, 'ioctl_bench'), '-n', String(n), '-w', '0', '-o', 'unmap', o.m[1]!];
    const [cmd, ...args] = pinned ? ['taskset', '-c', '1', ...client] : client;
    execFileSync(cmd!, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  } finally {
    o.proc.kill('SIGINT');
    if (!(await exited(o.proc, 10_000))) o.proc.kill('SIGKILL');
    line = o.stdout().split('\n').find((l) => l.includes('stopped')) ?? '';
  }
  const m = /uffd event read→serviced: n=(\d+) median=([\d.]+)µs p99=([\d.]+)µs/.exec(line);
  if (!m) throw new Error(`serve summary without event latencies: ${line}`);
  return { n: Number(m[1]), median: Number(m[2]), p99: Number(m[3]), line };
}

/** The run whose median is the median of the runs' medians (its p99 goes with it). */
function medianRun<T extends { median: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.median - b.median)[(runs.length - 1) >> 1]!;
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

/** 4. Register + unregister among n live userptrs (one VMA each), and an event's drain in one VMA of n userptrs. */
function watcherScale(n: number, samples: number): { raw: Sample; reg: Sample; hole: Sample } {
  const own = (): number => createOwnUffd(u);
  // One reservation per case, never given up (the watcher's own process: nothing of Node's may land in between).
  const R = new Reservation((4 * n + 8) * PG);
  const base = R.mapAt(R.take(4 * n * PG), 4 * n * PG); // userptrs on pages 4i; samples on 4i + 2, touching none
  const at = (i: number): number => base + i * PG;
  // The kernel's share: the same two ioctls on a bare uffd holding the same n registrations (the baseline).
  const fd = adoptUffd(u, own()).fd; // UFFDIO_API done, as the watcher's
  for (let i = 0; i < n; i++) u.uffdRegister(fd, at(4 * i), PG, C.UFFDIO_REGISTER_MODE_WP);
  const raw: number[] = [];
  for (let k = 0; k < samples + 200; k++) {
    const a = at(4 * ((k * 7919) % n) + 2);
    const t0 = now();
    u.uffdRegister(fd, a, PG, C.UFFDIO_REGISTER_MODE_WP);
    if (u.uffdUnregisterErrno(fd, a, PG) !== 0) throw new Error('unregister');
    if (k >= 200) raw.push((now() - t0) * 1000);
  }
  u.close(fd); // its registrations go with it
  const w = new UffdWatcher({ pid: ME, uffd: own(), wholeVmas: false });
  for (let i = 0; i < n; i++) if (!w.tryRegister(i + 1, at(4 * i), at(4 * i + 1) - 1).ok) throw new Error('register');
  const reg: number[] = [];
  for (let k = 0; k < samples + 200; k++) {
    const a = at(4 * ((k * 7919) % n) + 2);
    const id = n + 1 + k; // a fresh id each time, as core's (a Map deleting and re-adding one key slows down)
    const t0 = now();
    if (!w.tryRegister(id, a, a + PG - 1).ok) throw new Error('register');
    w.unregister(id);
    if (k >= 200) reg.push((now() - t0) * 1000);
  }
  w.release();
  const v = new UffdWatcher({ pid: ME, uffd: own(), wholeVmas: true });
  for (let i = 0; i < n; i++) if (!v.tryRegister(i + 1, at(4 * i), at(4 * i + 1) - 1).ok) throw new Error('register');
  const hole: number[] = [];
  const k0 = Math.min(samples, n - 1);
  for (let k = 0; k < k0; k++) {
    const a = at(4 * Math.floor((((k * 7919) % k0) * (n - 1)) / k0) + 2); // a page between two userptrs
    R.munmap(a, PG);
    const t0 = now();
    v.drain();
    hole.push((now() - t0) * 1000);
    if (!R.refill(a, PG)) throw new Error('the munmapped page was taken by another mapping');
  }
  if (v.counters.dropped !== k0) throw new Error(`dropped ${v.counters.dropped} of ${k0}`);
  v.release();
  R.unmap(base, 4 * n * PG);
  return {
    raw: summarize(`UFFDIO_REGISTER + UFFDIO_UNREGISTER of one page among ${n} registered VMAs (bare uffd)`, 'µs', raw),
    reg: summarize(`register + unregister one userptr among ${n} live ones (each in its own VMA)`, 'µs', reg),
    hole: summarize(`UNMAP of a page between two of ${n} userptrs in one watched VMA: its drain`, 'µs', hole.slice(Math.min(50, k0 >> 2))),
  };
}

export async function main(): Promise<string> {
  const keepAlive = setInterval(() => undefined, 1000); // the reader's wake-up is unref'd: keep the loop alive while awaiting it
  const out: string[] = [];
  const print = (s: string): void => { out.push(s); };
  print(header(`npm run bench -- watch${quick ? ' (--quick)' : ''}`));
  const n = quick ? 300 : 3000;
  // Ours and the C floor in alternating blocks, so that a change of the machine's load meets both. The 16-page row
  // has its own floor: the kernel unmaps the 16 touched pages before it queues the event.
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'tests', 'c')], { stdio: 'inherit' });
  const blocks = quick ? 2 : 6, nb = Math.ceil(n / blocks);
  const s1 = new MunmapSession(1), s16 = new MunmapSession(16);
  const f1: Array<Map<string, FloorRow>> = [], f16: typeof f1 = [], f4: typeof f1 = [];
  for (let b = 0; b < blocks; b++) {
    f1.push(cFloor(nb, 1));
    await s1.run(nb);
    f16.push(cFloor(nb, 16));
    await s16.run(nb);
    f4.push(cFloor(nb, 4)); // the size clientCost unmaps
  }
  const lat1 = s1.close(), lat16 = s16.close();
  const floor = mergeFloor(f1), floor16 = mergeFloor(f16), floor4 = mergeFloor(f4);
  // Alternating, so that a change of the machine's load meets both; each row the median of its runs' medians.
  const servedRuns: Array<Awaited<ReturnType<typeof serveEventToDeleted>>> = [], pinnedRuns: typeof servedRuns = [];
  const unmaps = quick ? 1000 : 4096;
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    servedRuns.push(await serveEventToDeleted(unmaps, false));
    pinnedRuns.push(await serveEventToDeleted(unmaps, true));
  }
  const served = medianRun(servedRuns), pinnedServed = medianRun(pinnedRuns);
  const cc = clientCost(n);
  const vc = vmaCost(quick ? 300 : 2000);
  const mib = quick ? 256 : 1024;
  const pc = procCost(mib, quick ? 5 : 15);
  const scale: Array<{ raw: Sample; reg: Sample; hole: Sample }> = [];
  for (const k of quick ? [100, 2000] : [100, 1000, 8000]) scale.push(watcherScale(k, quick ? 300 : 1000));
  const perGiB = (s: Sample) => (s.median * 1024) / mib;
  print('');
  const fl = (k: string, m = floor): FloorRow => { const r = m.get(k); if (!r) throw new Error(`uffd_floor printed no row '${k}'`); return r; };
  const fRead = fl('munmap call -> event read (reader thread, other process)'), fWoken = fl('munmap call -> server main thread woken');
  const fWoken16 = fl('munmap call -> server main thread woken', floor16);
  const fReg = fl('client munmap, registered (C reader thread in another process)', floor4), fUnreg = fl('client munmap, unregistered', floor4);
  print(table('munmap → BO deleted, uffd path (in-process: client = this process; async wake-up → device.service(), no further ioctl). Ratio: to the C floor of the same path and size (tests/c/bin/uffd_floor, same run)', [
    { name: `C floor: munmap call → event read by a reader thread of another process (1 page), median`, value: fRead.median_us, unit: 'µs', note: `p99 ${fmt(fRead.p99_us)} µs, n=${fRead.n} (median and p99: medians over ${blocks} blocks alternating with ours)` },
    { name: `C floor: munmap call → that process's main thread woken (eventfd) (1 page), median`, value: fWoken.median_us, unit: 'µs', note: `p99 ${fmt(fWoken.p99_us)} µs (baseline of the 1-page row)` },
    { name: `in-process: ${lat1.call.name}, median`, value: lat1.call.median, unit: 'µs', baseline: fWoken.median_us, note: `p99 ${fmt(lat1.call.p99)} µs, n=${lat1.call.n}` },
    { name: `C floor: munmap call → that process's main thread woken (eventfd) (16 pages), median`, value: fWoken16.median_us, unit: 'µs', note: `p99 ${fmt(fWoken16.p99_us)} µs (baseline of the 16-page row)` },
    { name: `in-process: ${lat16.call.name}, median`, value: lat16.call.median, unit: 'µs', baseline: fWoken16.median_us, note: `p99 ${fmt(lat16.call.p99)} µs, n=${lat16.call.n}` },
    { name: `in-process: ${lat1.read.name}, median`, value: lat1.read.median, unit: 'µs', note: `p99 ${fmt(lat1.read.p99)} µs, n=${lat1.read.n}` },
    { name: `in-process: ${lat16.read.name}, median`, value: lat16.read.median, unit: 'µs', note: `p99 ${fmt(lat16.read.p99)} µs, n=${lat16.read.n}` },
    { name: 'serve (FUSE, C client, 1 page): event read → BO deleted, median', value: served.median, unit: 'µs', note: `p99 ${fmt(served.p99)} µs; ${servedRuns.length} servers of ${unmaps} unmaps each; medians ${servedRuns.map((r) => fmt(r.median)).join(' / ')} µs` },
    { name: 'serve, the server on CPU 0 and the client on CPU 1 (taskset): event read → BO deleted, median', value: pinnedServed.median, unit: 'µs', note: `p99 ${fmt(pinnedServed.p99)} µs; medians ${pinnedRuns.map((r) => fmt(r.median)).join(' / ')} µs: the row above less the scheduler's placement` },
  ]));
  print('');
  print(table('client-side cost of a registered munmap: ours against a C userfaultfd reader thread in another process (tests/c/bin/uffd_floor), same run', [
    { name: 'C: munmap 16 KiB, unregistered', value: fUnreg.median_us, unit: 'µs', note: `p99 ${fmt(fUnreg.p99_us)} µs` },
    { name: 'C: munmap 16 KiB, registered, C reader thread', value: fReg.median_us, unit: 'µs', note: `p99 ${fmt(fReg.p99_us)} µs (baseline)` },
    { name: 'ours: munmap 16 KiB, registered (uffd UNMAP round trip through our reader)', value: cc.munmapReg.median, unit: 'µs', baseline: fReg.median_us, note: `p99 ${fmt(cc.munmapReg.p99)} µs` },
    // Our client is this (multi-threaded) Node process, whose munmap itself costs more than a single-threaded C
    // client's (TLB shootdowns to the CPUs its threads last ran on): the registration's own share, each against its
    // own unregistered munmap, compares the round trips alone.
    { name: 'C: what registration adds (registered − unregistered medians)', value: fReg.median_us - fUnreg.median_us, unit: 'µs', note: 'baseline' },
    { name: 'ours: what registration adds (registered − unregistered medians, this process the client)', value: cc.munmapReg.median - cc.munmapUnreg.median, unit: 'µs', baseline: fReg.median_us - fUnreg.median_us, note: `our unregistered munmap: ${fmt(cc.munmapUnreg.median)} µs` },
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
  print('');
  print(table('the uffd watcher\'s bookkeeping at scale (areas and registrations in interval treaps); ratio: to the smallest case, same run', [
    ...scale.flatMap((c) => [
      { name: c.raw.name, value: c.raw.median, unit: 'µs', baseline: scale[0]!.raw.median, note: `p99 ${fmt(c.raw.p99)} µs: the kernel's share of the row below` },
      { name: c.reg.name, value: c.reg.median, unit: 'µs', baseline: scale[0]!.reg.median, note: `p99 ${fmt(c.reg.p99)} µs; the watcher's own work: ${fmt(c.reg.median - c.raw.median)} µs` },
    ]),
    ...scale.map((c) => ({ name: c.hole.name, value: c.hole.median, unit: 'µs', baseline: scale[0]!.hole.median, note: `p99 ${fmt(c.hole.p99)} µs` })),
  ]));
  clearInterval(keepAlive);
  return out.join('\n');
}

if (require.main === module) main().then((s) => console.log(s), (e) => { console.error(e); process.exit(1); });
