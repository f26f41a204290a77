// bench/scale: the per-ioctl cost at a real UMD's scale, through the real FUSE node in the default watcher mode
// (`serve --transport fuse`, watcher auto, clients started with the uffd handoff env `serve` prints). One C client
// (tests/c/bin/ioctl_bench) per case sets up its scale, then times GETPARAM and CREATE_BLOB(userptr)+GEM_CLOSE:
//   live N:     N live 1-page userptrs in one mapping;
//   mappings M: M live 1-page userptrs, each in a mapping of its own (M watched VMAs, M more PROT_NONE between);
//   cycles C:   C create+close cycles on the file before the timed ops (the handle table's and the watcher's uptime).
// Each value is printed as a ratio to the smallest case (live 100) of the same server in the same run.
// `--quick` (or VIRTGPU_BENCH_QUICK=1): smaller scales and fewer ops, one run. VIRTGPU_BENCH_BASELINE=DIR also serves
// another built checkout, its cases interleaved with ours, for before/after ratios from one run.
import { execFileSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { header, summarize, table } from './lib/measure';
import { exited, handoffEnv, pin, startServer } from './transport';

const ROOT = path.resolve(__dirname, '..', '..');
const IOCTL_BENCH = path.join(ROOT, 'tests', 'c', 'bin', 'ioctl_bench');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const CPU = Number(process.env.VIRTGPU_BENCH_CPU ?? os.cpus().length - 1);

interface Scale { live: number[]; maps: number[]; cycles: number; n: number; reps: number }
const FULL: Scale = { live: [100, 1000, 8000], maps: [100, 2000, 8000], cycles: 200_000, n: 5_000, reps: 3 };
const QUICK: Scale = { live: [100, 1000, 2000], maps: [100, 1000, 2000], cycles: 20_000, n: 2_000, reps: 1 };

interface Case { name: string; args: string[] }
interface Ours { label: string; file: string; env: Record<string, string>; stop: () => Promise<string> }
interface Cell { get: number[]; create: number[]; setup: number[] }

function cases(sc: Scale): Case[] {
  const out: Case[] = [];
  for (const n of sc.live) out.push({ name: `live ${n}`, args: ['-l', String(n)] });
  for (const m of sc.maps) out.push({ name: `mappings ${m}`, args: ['-l', String(m), '-s'] });
  out.push({ name: `after ${sc.cycles / 1000}k cycles (live ${sc.live[0]})`, args: ['-l', String(sc.live[0]), '-c', String(sc.cycles)] });
  return out;
}

async function serve(label: string, cli: string): Promise<Ours> {
  const o = await startServer(process.execPath, [cli, 'serve', '--transport', 'fuse'], /^virtgpu-emu: serving (\S+) \((.*)\)$/m);
  const env = await handoffEnv(o.stderr);
  if (!env) { o.proc.kill('SIGKILL'); throw new Error(`${label}: serve offered no uffd handoff (the default watcher would fall back to /proc)`); }
  pin(o.proc.pid!, String(CPU));
  return {
    label, file: o.m[1]!, env,
    stop: async () => {
      o.proc.kill('SIGINT');
      if (!(await exited(o.proc, 10_000))) o.proc.kill('SIGKILL');
      return o.stdout().split('\n').find((l) => l.includes('stopped')) ?? '(no summary)';
    },
  };
}

/** One client run (set-up, then GETPARAM, then create+close): µs per op of each, and the set-up's seconds. */
function runCase(srv: Ours, c: Case, sc: Scale): { get: number; create: number; setup: number } {
  const argv = ['taskset', '-c', String(CPU), 'env', ...Object.entries(srv.env).map(([k, v]) => `${k}=${v}`),
    IOCTL_BENCH, '-n', String(sc.n), '-w', '200', '-o', 'getparam,create', ...c.args, srv.file];
  const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 1_800_000 });
  const r: Record<string, number> = {};
  for (const line of out.trim().split('\n')) {
    const j = JSON.parse(line) as { op?: string; us_per_op?: number; setup_s?: number };
    if (j.op && j.us_per_op !== undefined) r[j.op] = j.us_per_op;
    if (j.setup_s !== undefined) r.setup = j.setup_s;
  }
  return { get: r.getparam!, create: r.create!, setup: r.setup ?? 0 };
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<string> {
  const quick = argv.includes('--quick') || process.env.VIRTGPU_BENCH_QUICK === '1';
  const sc = quick ? QUICK : FULL;
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'tests', 'c')], { stdio: 'inherit' });
  const servers: Ours[] = [];
  const summaries: string[] = [];
  const cs = cases(sc);
  const cells = new Map<string, Cell>();
  const cell = (s: Ours, c: Case): Cell => {
    const k = `${s.label}\0${c.name}`;
    let x = cells.get(k);
    if (!x) cells.set(k, x = { get: [], create: [], setup: [] });
    return x;
  };
  const t0 = Date.now();
  try {
    const baseDir = process.env.VIRTGPU_BENCH_BASELINE;
    if (baseDir) servers.push(await serve('baseline', path.resolve(baseDir, 'dist', 'cli', 'main.js')));
    servers.push(await serve('ours', CLI));
    // Two first clients per server, not recorded: the server's JIT warms up on them, not on the first case measured
    // (measured: the first client of a fresh server runs 3-10x slower than the third).
    for (let w = 0; w < 2; w++) for (const s of servers) runCase(s, cs[0]!, sc);
    // Interleaved: every case of every server once per repetition, so drift hits all alike.
    for (let rep = 0; rep < sc.reps; rep++) {
      for (const c of cs) {
        for (const s of servers) {
          const r = runCase(s, c, sc);
          const x = cell(s, c);
          x.get.push(r.get); x.create.push(r.create); x.setup.push(r.setup);
        }
      }
    }
  } finally {
    for (const s of servers) summaries.push(`${s.label}: ${await s.stop().catch((e: Error) => e.message)}`);
  }
  const med = (xs: number[]): number => summarize('', '', xs).median;
  const out: string[] = [header(`npm run bench -- scale${quick ? ' --quick' : ''}`), ''];
  for (const s of servers) {
    const base = cell(s, cs[0]!);
    const bGet = med(base.get), bCreate = med(base.create);
    const rows: Parameters<typeof table>[1] = [];
    for (const c of cs) {
      const x = cell(s, c);
      const setup = `set-up ${med(x.setup).toFixed(1)} s`;
      rows.push({ name: `GETPARAM, ${c.name}`, value: med(x.get), unit: 'µs/op', baseline: bGet, note: `runs ${x.get.map((v) => v.toFixed(1)).join(' / ')}; ${setup}` });
      rows.push({ name: `create+close, ${c.name}`, value: med(x.create), unit: 'µs/op', baseline: bCreate, note: `runs ${x.create.map((v) => v.toFixed(1)).join(' / ')}` });
    }
    out.push(table(`scale, ${s.label}: through the FUSE node, default watcher (auto, uffd handed over), client and server on CPU ${CPU}; ratio: to live ${sc.live[0]}, same server, same run (${sc.reps} run${sc.reps > 1 ? 's' : ''}, median; ${sc.n} ops each, after 200 warm-up ones; two unrecorded clients first)`, rows), '');
    // The largest case of each kind against the smallest of the same kind (mappings against mappings).
    const ratio = (a: Case, b: Case, k: 'get' | 'create'): string => `${(med(cell(s, a)[k]) / med(cell(s, b)[k])).toFixed(2)}×`;
    const pair = (a: Case, b: Case): string => `${a.name} / ${b.name}: GETPARAM ${ratio(a, b, 'get')}, create+close ${ratio(a, b, 'create')}`;
    const nl = sc.live.length, nm = sc.maps.length;
    out.push(`${s.label}, largest / smallest of each kind: ${pair(cs[nl - 1]!, cs[0]!)}; ${pair(cs[nl + nm - 1]!, cs[nl]!)}; ${pair(cs[nl + nm]!, cs[0]!)}`, '');
  }
  if (servers.length === 2) {
    out.push('before/after (ratios to each server\'s own live-100 case):', '', '| case | baseline GETPARAM | ours GETPARAM | baseline create+close | ours create+close |', '|---|---|---|---|---|');
    const [b, o] = servers as [Ours, Ours];
    const r = (s: Ours, c: Case, k: 'get' | 'create'): string => (med(cell(s, c)[k]) / med(cell(s, cs[0]!)[k])).toFixed(2) + '×';
    for (const c of cs) out.push(`| ${c.name} | ${r(b, c, 'get')} | ${r(o, c, 'get')} | ${r(b, c, 'create')} | ${r(o, c, 'create')} |`);
    out.push('');
  }
  out.push(`wall time ${((Date.now() - t0) / 1000).toFixed(0)} s; load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
  out.push('', `client: \`taskset -c ${CPU} env <uffd handoff env printed by serve> tests/c/bin/ioctl_bench -n N -w 200 -o getparam,create -l LIVE [-s] [-c CYCLES] FILE\``);
  out.push('', `at stop: ${summaries.join('; ')}`);
  return out.join('\n');
}

if (require.main === module) {
  main().then((s) => console.log(s), (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
