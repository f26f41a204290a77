// bench/builds: the core dispatcher of several builds, same workload code, interleaved in one run.
//   node dist/bench/builds.js [--reps N] DIST_A DIST_B ...    (DIST: a checkout's compiled dist/ folder)
// Each cell (GETPARAM, dedup lookup, create + GEM_CLOSE at 1k and 100k live userptrs) runs in a fresh process per
// build and repetition, the builds alternating; the table gives each build's median and its ratio to the first.
// The workload uses only the API every build since the core split has (createDevice, RecordingHost, SimMachine from
// core/ or core/testing, DeviceFile.ioctl), so a checkout's own bench changes cannot move its numbers.
// Make an older build beside this one: git worktree add /tmp/old REV && cd /tmp/old && ln -s <this>/node_modules &&
// node_modules/.bin/tsc -p .
import { spawnSync } from 'child_process';
import { SERVER_V8_FLAGS } from '../cli/v8-flags';
import * as path from 'path';

const PG = 4096;
const IOWR = (nr: number, size: number): number => ((3 << 30) | (size << 16) | (0x64 << 8) | nr) >>> 0;
const CREATE_BLOB = IOWR(0x4a, 64), GETPARAM = IOWR(0x43, 16), CONTEXT_INIT = IOWR(0x4b, 16), GEM_CLOSE = ((1 << 30) | (8 << 16) | (0x64 << 8) | 0x09) >>> 0;

/** CREATE_BLOB(HOST3D_GUEST, USE_USERPTR, blob_id 1) in the series' first layout, written here so every build reads the same bytes. */
function blob(userptr: number, size: number): Uint8Array {
  const b = new Uint8Array(64); const dv = new DataView(b.buffer);
  dv.setUint32(0, 3, true); dv.setUint32(4, 8, true); dv.setBigUint64(16, BigInt(size), true); dv.setBigUint64(40, 1n, true); dv.setBigUint64(48, BigInt(userptr), true);
  return b;
}

const CELLS: readonly { op: 'getparam' | 'dedup' | 'create'; live: number; n: number }[] = [
  { op: 'getparam', live: 1000, n: 200_000 }, { op: 'dedup', live: 1000, n: 200_000 }, { op: 'create', live: 1000, n: 30_000 },
  { op: 'getparam', live: 100_000, n: 200_000 }, { op: 'dedup', live: 100_000, n: 200_000 }, { op: 'create', live: 100_000, n: 30_000 },
];

interface CoreApi {
  createDevice(o: object): { open(pid: number): { ioctl(pid: number, cmd: number, arg: Uint8Array, user?: unknown): { result: unknown; out: Uint8Array } } };
  RecordingHost: new (limit?: unknown) => object;
}
interface SimApi { SimMachine: new () => { process(): SimProc }; PROT_RW: number }
interface SimProc { pid: number; env(): unknown; mmap(len: number, prot?: number): number; touch(a: number, len: number): void; write(a: number, b: Uint8Array): void }

/** One cell in this process, against the build at `dist`: µs per operation. */
function one(dist: string, op: string, live: number, n: number): number {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const core = require(path.resolve(dist, 'core')) as CoreApi & Partial<SimApi>;
  let sim: Partial<SimApi> = core;
  try { sim = require(path.resolve(dist, 'core/testing')) as SimApi; } catch { /* older builds export the simulator from core/ */ }
  const m = new sim.SimMachine!(); const p = m.process();
  const dev = core.createDevice({ host: new core.RecordingHost(1000), clients: () => p.env() });
  const f = dev.open(p.pid);
  const params = p.mmap(PG);
  const pb = new Uint8Array(16); new DataView(pb.buffer).setBigUint64(0, 1n, true); new DataView(pb.buffer).setBigUint64(8, 8n, true);
  p.write(params, pb);
  const ci = new Uint8Array(16); new DataView(ci.buffer).setUint32(0, 1, true); new DataView(ci.buffer).setBigUint64(8, BigInt(params), true);
  if (f.ioctl(p.pid, CONTEXT_INIT, ci, p).result !== 0) throw new Error('context init');
  const region = p.mmap((live + 1000) * PG, sim.PROT_RW);
  p.touch(region, (live + 1000) * PG);
  for (let i = 0; i < live; i++) if (f.ioctl(p.pid, CREATE_BLOB, blob(region + i * PG, PG), p).result !== 0) throw new Error('create');
  const gp = new Uint8Array(16); new DataView(gp.buffer).setBigUint64(0, 1n, true); new DataView(gp.buffer).setBigUint64(8, BigInt(region), true);
  const lookups = op === 'dedup' ? Array.from({ length: Math.min(live, 10_000) }, (_, i) => blob(region + i * PG + 8, 64)) : [];
  const creates = op === 'create' ? Array.from({ length: 1000 }, (_, i) => blob(region + (live + i) * PG, PG)) : [];
  const gc = new Uint8Array(8);
  const step = (i: number): void => {
    if (op === 'getparam') { f.ioctl(p.pid, GETPARAM, gp, p); return; }
    if (op === 'dedup') { if (f.ioctl(p.pid, CREATE_BLOB, lookups[i % lookups.length]!, p).result !== 3) throw new Error('expected +3'); return; }
    const r = f.ioctl(p.pid, CREATE_BLOB, creates[i % 1000]!, p);
    // bo_handle (bytes 8-11) into GEM_CLOSE's handle, byte by byte: a DataView over r.out would make V8 materialize
    // the small reply's buffer (a malloc and a free per op, ~10% of a create+close), which is the harness's cost.
    const o = r.out; gc[0] = o[8]!; gc[1] = o[9]!; gc[2] = o[10]!; gc[3] = o[11]!;
    f.ioctl(p.pid, GEM_CLOSE, gc, p);
  };
  for (let i = 0; i < 2000; i++) step(i); // warm-up, the same in every build
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) step(i);
  return Number(process.hrtime.bigint() - t0) / n / 1000;
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };

export function main(argv: readonly string[] = process.argv.slice(2)): string {
  if (argv[0] === '--one') return String(one(argv[1]!, argv[2]!, Number(argv[3]), Number(argv[4])));
  let reps = 5;
  const dists: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') reps = Number(argv[++i]);
    else dists.push(argv[i]!);
  }
  if (dists.length < 2 || !(reps >= 1)) throw new Error('usage: node dist/bench/builds.js [--reps N] DIST_A DIST_B ...');
  const got = new Map<string, number[]>();
  for (let r = 0; r < reps; r++) {
    for (const c of CELLS) {
      for (const d of dists) {
        const res = spawnSync(process.execPath, [...SERVER_V8_FLAGS, __filename, '--one', d, c.op, String(c.live), String(c.n)], { encoding: 'utf8' });
        const v = Number(res.stdout.trim());
        if (res.status !== 0 || !Number.isFinite(v)) throw new Error(`${d} ${c.op} ${c.live}: ${res.stderr || res.stdout}`);
        const k = `${c.op}/${c.live}/${d}`;
        got.set(k, [...(got.get(k) ?? []), v]);
      }
    }
  }
  const rows = CELLS.map((c) => {
    const base = median(got.get(`${c.op}/${c.live}/${dists[0]}`)!);
    return [`${c.op} ${c.live} live`, ...dists.map((d, i) => { const v = median(got.get(`${c.op}/${c.live}/${d}`)!); return i === 0 ? `${v.toFixed(3)}` : `${v.toFixed(3)} (${(v / base).toFixed(2)}×)`; })];
  });
  const names = dists.map((d) => path.basename(path.dirname(path.resolve(d))));
  return [`### core dispatcher per build, µs/op, medians of ${reps} interleaved runs (ratio: to the first build)`, '',
    `| cell | ${names.join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

if (require.main === module) {
  const out = main();
  process.stdout.write(out.endsWith('\n') ? out : out + '\n');
}
