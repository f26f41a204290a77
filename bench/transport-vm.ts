// bench/transport-vm: CUSE ioctl round trips of our server inside the qemu VM (the only place with real CUSE), against
// ioctl(/dev/null, FIONREAD) and libfuse3's example/cuse.c in the same boot. Ratios only: under TCG
// every instruction is emulated, so absolute µs say nothing about a real machine (and JIT'd JS suffers ~100×, C less).
// Rows are paired by CUSE round trips (unrestricted ioctls: 1 = no data, 2 = struct via RETRY, 3 = + an embedded
// pointer), both servers single-threaded and up at once, the rows interleaved REPS times; medians are reported.
// The C programs are built -static on the host into tools/vm/cache/bin/ (gitignored); libfuse's examples are compiled
// from /usr/share/doc/libfuse3-dev/examples, never copied into the repo.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCacheDir, repoRoot, runInVm } from '../tools/vm/vm';
import { header, summarize, table } from './lib/measure';

const ROOT = repoRoot();
/** Gitignored, and not under build/: node-gyp rebuild (npm install) wipes build/ while a bench may be running. */
const BUILD = path.join(defaultCacheDir(), 'bin');
const GUEST = 'bench/vm-guest/transport.sh';
const EXAMPLES = '/usr/share/doc/libfuse3-dev/examples';
const LIBFUSE_A = '/usr/lib/x86_64-linux-gnu/libfuse3.a';
/** Timed ioctls per row and run (/dev/null gets 20×); ~1 ms per CUSE round trip of ours under TCG. */
const N = Number(process.env.BENCH_VM_N ?? 1000);
const REPS = Number(process.env.BENCH_VM_REPS ?? 5);
const VM_TIMEOUT_MS = 420_000;

const mtime = (p: string): number => fs.statSync(p).mtimeMs;

function gcc(out: string, srcs: string[], extra: string[]): void {
  if (fs.existsSync(out) && mtime(out) >= Math.max(...srcs.map(mtime))) return;
  try {
    execFileSync('gcc', ['-O2', '-static', '-o', `${out}.tmp`, ...srcs, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    // glibc's static-link warnings (getpwnam, dlopen) go to stderr too: only the failure text matters here.
    throw new Error(`bench/transport-vm: building ${path.basename(out)} failed: ${err.stderr?.toString().split('\n').filter((l) => /error/i.test(l)).join('\n') || err.message}`);
  }
  fs.renameSync(`${out}.tmp`, out);
}

/** cuse_rt (ours), and libfuse's cuse.c + cuse_client.c, all static (the guest runs the host's files, but static keeps
 * the comparison free of dynamic-loader differences and works whatever libfuse3.so is installed). */
function buildGuestBinaries(): string {
  for (const f of [`${EXAMPLES}/cuse.c`, `${EXAMPLES}/cuse_client.c`, LIBFUSE_A]) {
    if (!fs.existsSync(f)) throw new Error(`bench/transport-vm: ${f} missing: apt-get install libfuse3-dev (scripts/setup.sh does)`);
  }
  fs.mkdirSync(BUILD, { recursive: true });
  const fuseCflags = execFileSync('pkg-config', ['--cflags', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  gcc(path.join(BUILD, 'cuse_rt'), [path.join(ROOT, 'bench/vm-guest/cuse_rt.c')], ['-Wall', '-Werror']);
  gcc(path.join(BUILD, 'cuse_example'), [`${EXAMPLES}/cuse.c`], [`-I${EXAMPLES}`, ...fuseCflags, LIBFUSE_A, '-lpthread', '-ldl']);
  gcc(path.join(BUILD, 'cuse_client'), [`${EXAMPLES}/cuse_client.c`], [`-I${EXAMPLES}`]);
  return BUILD;
}

interface Row { rep: number; row: string; us: number; rc: number; errno: number }

function parse(out: string): { rows: Row[]; errors: string[] } {
  const rows: Row[] = [];
  const errors: string[] = [];
  for (const l of out.split('\n')) {
    const m = /^@@BENCH (\d+) (\S+) (\{.*\})$/.exec(l);
    if (m) {
      const j = JSON.parse(m[3]!) as { us_per_op: number; rc: number; errno: number };
      rows.push({ rep: Number(m[1]), row: m[2]!, us: j.us_per_op, rc: j.rc, errno: j.errno });
    } else if (l.startsWith('@@BENCH-ERR')) errors.push(l);
  }
  return { rows, errors };
}

/** Pairs: our row, the libfuse example's row with the same number of CUSE round trips, what each does. */
const PAIRS = [
  { ours: 'ours-noop', fioc: 'fioc-noop', rt: 1, what: "`_IO('d',0)` no data → 0", fwhat: "`_IO('E',9)` unknown → EINVAL" },
  { ours: 'ours-getcap', fioc: 'fioc-getsize', rt: 2, what: 'GET_CAP `_IOWR` 16 B (RETRY struct)', fwhat: 'FIOC_GET_SIZE `_IOR` 8 B (RETRY out)' },
  { ours: 'ours-getparam', fioc: 'fioc-read', rt: 3, what: 'GETPARAM, value → int (RETRY struct, RETRY + pointer)', fwhat: 'FIOC_READ, buf → 16 B (RETRY struct, RETRY + pointer)' },
] as const;

export async function main(): Promise<string> {
  const bin = buildGuestBinaries();
  const log = (s: string): void => { process.stderr.write(s); };
  const r = await runInVm({
    command: ['sh', GUEST],
    cwd: ROOT,
    env: { BENCH_BIN: bin, BENCH_N: String(N), BENCH_REPS: String(REPS) },
    timeoutMs: VM_TIMEOUT_MS,
    onCommandOutput: (s) => log(s.split('\n').filter((l) => l.startsWith('@@BENCH')).map((l) => `[vm] ${l}\n`).join('')),
  });
  const { rows, errors } = parse(r.output);
  if (r.exitCode !== 0 || errors.length) throw new Error(`bench/transport-vm: guest script failed (exit ${r.exitCode})\n${errors.join('\n')}\n${r.output.slice(-3000)}`);
  const med = (name: string): number => {
    const xs = rows.filter((x) => x.row === name).map((x) => x.us);
    if (!xs.length) throw new Error(`bench/transport-vm: no measurement for ${name}\n${r.output.slice(-3000)}`);
    return summarize(name, 'µs/op', xs).median;
  };
  const devnull = med('devnull');
  const lines = [];
  for (const p of PAIRS) {
    const fioc = med(p.fioc) / devnull;
    lines.push({ name: `ours, ${p.rt} round trip${p.rt > 1 ? 's' : ''}: ${p.what}`, value: med(p.ours) / devnull, unit: '× /dev/null', baseline: fioc, note: `ratio = ours / libfuse example, ${p.rt} RT` });
    lines.push({ name: `libfuse3 example/cuse.c, ${p.rt} RT: ${p.fwhat}`, value: fioc, unit: '× /dev/null', note: 'C, single-threaded (-s), static' });
  }
  lines.push({ name: 'ioctl(/dev/null, FIONREAD)', value: 1, unit: '× /dev/null', note: 'the plain syscall (ENOTTY)' });
  const cmd = `node dist/bench/transport-vm.js${process.env.BENCH_VM_N ? ` (BENCH_VM_N=${N})` : ''}${process.env.BENCH_VM_REPS ? ` (BENCH_VM_REPS=${REPS})` : ''}`;
  return [
    header(cmd),
    `inside qemu (accel=${r.accel}), one boot, kernel from tools/vm; ${N} ioctls per row (/dev/null ${N * 20}), ${REPS} interleaved runs, medians; ` +
      'our server: `virtgpu-emu serve --transport cuse` defaults (watcher auto, client not preloaded, nothing registered). ' +
      'Ratios only: TCG emulates every instruction (JIT\'d JS far worse than C), so they overstate our cost against a real CPU.',
    '',
    table('CUSE ioctl round trips in the VM (ratios)', lines),
  ].join('\n');
}

if (require.main === module) {
  main().then(
    (s) => { console.log(s); },
    (e: Error) => { console.error(e.message); process.exitCode = 1; },
  );
}
