// bench/transport: one ioctl round trip through our FUSE transport vs ioctl(/dev/null) vs a libfuse3 C server, all in
// the same run. Clients are C: bench/native/ioctl_rt (any cmd on any file) and tests/c/bin/ioctl_bench
// (GETPARAM, CREATE_BLOB userptr + GEM_CLOSE after CONTEXT_INIT HSAKMT). Our server is started through the real CLI.
// The servers stay up for the whole run and the repetitions are interleaved, so drift hits every row alike.
// FUSE-over-io_uring: bench/native/fuse_uring_ioctl.c served over the ring next to the same C server's read/write
// loop; the host-wide switch is on only while that server starts (lib/fuse-uring-switch.ts).
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { header, summarize, table } from './lib/measure';
import { uringSwitchUnavailable, withFuseUring } from './lib/fuse-uring-switch';
import { findPreload, PRELOAD_FILE } from '../uffd/acquire';

const ROOT = path.resolve(__dirname, '..', '..');
/** Gitignored: the natives are compiled here at bench time, never committed. */
const BUILD = path.join(ROOT, 'build', 'bench');
const NATIVE = path.join(ROOT, 'bench', 'native');
const IOCTL_BENCH = path.join(ROOT, 'tests', 'c', 'bin', 'ioctl_bench');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const FLOOR = path.join(__dirname, 'lib', 'fuse-floor.js');

/** Timed calls per run for the cheap ops, and runs per row (the median is reported; this is a 2-core machine). */
const N = 100_000;
/** CREATE_BLOB(userptr)+GEM_CLOSE pays the client's watcher: fewer iterations keep the run short. */
const N_CREATE = 10_000;
/** VIRTGPU_BENCH_REPS: more runs per row on a busy machine. */
const REPS = Math.max(1, Number(process.env.VIRTGPU_BENCH_REPS ?? 3));
const START_TIMEOUT_MS = 10_000;

// _IOC(dir, 'd', nr, size) numbers of the rows, spelled out once (include/uapi/asm-generic/ioctl.h).
const IOC = (dir: number, nr: number, size: number): number => ((dir << 30) | (size << 16) | (0x64 << 8) | nr) >>> 0;
const IOC_NONE = 0, IOC_RW = 3;
/** `_IO('d', 0x00)`: DRM_IOCTL_VERSION's nr with no data. libfuse answers 0; core runs VERSION with every length 0
 * (nothing copied either way), so both servers do a no-data restricted round trip answered 0. */
const NOOP_IO = IOC(IOC_NONE, 0x00, 0);
/** DRM_IOCTL_GET_CAP = `_IOWR('d', 0x0c, struct drm_get_cap)`, 16 bytes in and out. */
const GET_CAP_IOWR16 = IOC(IOC_RW, 0x0c, 16);
/** DRM_CAP_SYNCOBJ: a capability core answers (1), so the row is a successful 16-byte _IOWR. */
const DRM_CAP_SYNCOBJ = 0x13;
/** FIONREAD (asm-generic/ioctls.h): /dev/null answers ENOTTY without touching the argument: the bare syscall. */
const FIONREAD = 0x541b;

interface Native { fuseServer: string | null; fuseWhy?: string; rt: string; uringServer: string; preloadFloor: string; pairFloor: string; pairUring: boolean }

function cc(args: string[]): void { execFileSync('cc', args, { stdio: ['ignore', 'ignore', 'pipe'] }); }

/** Compile the C helpers into build/bench (and tests/c if ioctl_bench is missing). libfuse3 is optional. */
function buildNatives(): Native {
  fs.mkdirSync(BUILD, { recursive: true });
  const rt = path.join(BUILD, 'ioctl_rt');
  cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-o', rt, path.join(NATIVE, 'ioctl_rt.c')]);
  const uringServer = path.join(BUILD, 'fuse_uring_ioctl');
  cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-pthread', '-o', uringServer, path.join(NATIVE, 'fuse_uring_ioctl.c')]);
  const preloadFloor = path.join(BUILD, 'preload_floor');
  cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-o', preloadFloor, path.join(NATIVE, 'preload_floor.c')]);
  // The lane messages' floor, plain and (with liburing) over io_uring on both sides.
  const pairFloor = path.join(BUILD, 'preload_pair_floor');
  let pairUring = true;
  try {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'liburing'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-DHAVE_LIBURING', '-o', pairFloor, path.join(NATIVE, 'preload_pair_floor.c'), ...flags]);
  } catch {
    pairUring = false;
    cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-o', pairFloor, path.join(NATIVE, 'preload_pair_floor.c')]);
  }
  if (!fs.existsSync(IOCTL_BENCH)) execFileSync('make', ['-s', '-C', path.join(ROOT, 'tests', 'c')], { stdio: 'inherit' });
  let fuseServer: string | null = path.join(BUILD, 'fuse_ll_ioctl');
  let fuseWhy: string | undefined;
  try {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    cc(['-O2', '-Wall', '-Werror', '-std=gnu11', '-o', fuseServer, path.join(NATIVE, 'fuse_ll_ioctl.c'), ...flags]);
  } catch (e) {
    fuseWhy = `libfuse3 server not built (${String((e as { stderr?: Buffer }).stderr ?? e).split('\n')[0]}; apt-get install libfuse3-dev pkg-config)`;
    fuseServer = null;
  }
  return { fuseServer, fuseWhy, rt, uringServer, preloadFloor, pairFloor, pairUring };
}

/** Run a client to completion; its last stdout line is one JSON object with us_per_op. */
function client(cmd: string, args: string[]): { us: number; line: Record<string, unknown> } {
  const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  const last = out.trim().split('\n').pop() ?? '';
  const line = JSON.parse(last) as Record<string, unknown>;
  if (typeof line.us_per_op !== 'number') throw new Error(`${path.basename(cmd)}: no us_per_op in ${last}`);
  return { us: line.us_per_op, line };
}

/** Spawn a server and wait for a stdout line matching `ready`; returns the process and the match. */
export function startServer(cmd: string, args: string[], ready: RegExp): Promise<{ proc: ChildProcess; m: RegExpMatchArray; stderr: () => string; stdout: () => string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', done = false;
    const t = setTimeout(() => fail(new Error(`${path.basename(cmd)} not ready in ${START_TIMEOUT_MS} ms: ${err.trim()}`)), START_TIMEOUT_MS);
    const fail = (e: Error): void => { if (done) return; done = true; clearTimeout(t); proc.kill('SIGKILL'); reject(e); };
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m && !done) { done = true; clearTimeout(t); resolve({ proc, m, stderr: () => err, stdout: () => out }); }
    });
    proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    proc.on('error', (e) => fail(e));
    proc.on('exit', (code) => fail(new Error(`${path.basename(cmd)} exited (${code}) before ready: ${err.trim()}`)));
  });
}

export function exited(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((r) => {
    const t = setTimeout(() => r(false), ms);
    p.once('exit', () => { clearTimeout(t); r(true); });
  });
}

/** Per run: `srv` the server's CPU µs/op (schedstat); `cpu` that + the client's (ioctl_rt reports it), when known. */
interface Row { name: string; runs: number[]; cpu: number[]; srv: number[]; note: string; cmd: string }

/**
 * On-CPU time (ns) of every thread of a process so far (/proc/PID/task/TID/schedstat, first field). With client and
 * server on one CPU a round trip is serial, so client + server CPU per op is what the wall time is on an idle
 * machine; unlike the wall time it leaves out the other work sharing that CPU.
 */
function processCpuNs(pid: number): number {
  let sum = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try { sum += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  return sum;
}
/** Warm-up calls of both clients (their default) plus ioctl_rt's first call: server work outside the timed loop. */
const CLIENT_WARMUP = 1001;
const median = (xs: number[]): number => summarize('', '', xs).median;

/**
 * Client and server share one CPU (taskset) for the main rows. On this kind of 2-core VM a FUSE round trip between
 * two CPUs costs a cross-CPU wake-up each way (measured 67–87 µs/op for libfuse3 `-s`, against 2.6 µs on one CPU),
 * and unpinned runs land anywhere between depending on where the scheduler put the two threads: the pinned rows
 * measure the servers' own work; the unpinned rows show the spread.
 */
const CPU = Number(process.env.VIRTGPU_BENCH_CPU ?? os.cpus().length - 1);
/** The unpinned row of the io_uring server whose queue threads all run on CPU (as one serving thread would). */
/** The lane messages' floor rows (bench/native/preload_pair_floor.c). */
const PAIR_SYSCALLS = 'preload lane messages, C pair: syscalls';
const PAIR_URING = 'preload lane messages, C pair: io_uring on both sides';
/** The C server of the preload wire protocol (bench/native/preload_floor.c), the preload library as its client. */
const PRELOAD_FLOOR = 'preload protocol floor (C server answering at once, the preload library as client)';
const ONE_CPU_ROW = `unpinned: C FUSE-over-io_uring, every queue thread on CPU ${CPU}: no-op \`_IO\``;
const ALL_CPUS = `0-${os.cpus().length - 1}`;
const N_UNPINNED = 20_000;

export function pin(pid: number, cpus: string): void { execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }); }

/** `selfPinned`: the server places its own threads (one per CPU queue) and is never re-pinned by the bench. */
interface Server { label: string; proc: ChildProcess; file: string; cmd: string; stop: () => Promise<void>; env?: Record<string, string>; selfPinned?: boolean; unpinnedOnly?: boolean }

/** `serve` names on stderr, after its ready line, the environment that makes a client hand its userfaultfd over. */
const HANDOFF_LINE = /clients hand their userfaultfd over when started with: (.*)$/m;
export async function handoffEnv(stderr: () => string, ms = 2000): Promise<Record<string, string> | undefined> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
    const m = stderr().match(HANDOFF_LINE);
    if (m) return Object.fromEntries(m[1]!.trim().split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }
  return undefined;
}

export async function main(): Promise<string> {
  const nat = buildNatives();
  const rows: Row[] = [];
  const jobs: (() => void)[] = [];
  const servers: Server[] = [];
  const rt = (file: string, cmd: number, n: number, value = 0): string[] => ['-n', String(n), '-v', String(value), file, `0x${cmd.toString(16)}`];
  const pinned = (args: string[]): [string, string[]] => ['taskset', ['-c', String(CPU), ...args]];
  /** A row measured REPS times, interleaved with the others; `srv` is re-pinned around unpinned runs. */
  const add = (name: string, cmdText: string, note: string, argv: string[], srv?: Server, unpinned = false): Row => {
    const withEnv = srv?.env ? `env <uffd handoff env printed by serve> ${cmdText}` : cmdText;
    const r: Row = { name, runs: [], cpu: [], srv: [], note, cmd: unpinned ? withEnv : `taskset -c ${CPU} ${withEnv}` };
    const n = Number(argv[argv.indexOf('-n') + 1]);
    const measure = (c: string, a: string[]): void => {
      const s0 = srv ? processCpuNs(srv.proc.pid!) : 0;
      const got = client(c, a);
      r.runs.push(got.us);
      if (!srv) return;
      const server = (processCpuNs(srv.proc.pid!) - s0) / 1e3 / (n + CLIENT_WARMUP);
      r.srv.push(server);
      const clientCpu = got.line.cpu_us_per_op;
      if (typeof clientCpu === 'number') r.cpu.push(clientCpu + server);
    };
    rows.push(r);
    jobs.push(() => {
      // env(1) sets the handoff variables for the client only: a preloaded taskset would hand over a uffd of its own mm.
      const full = srv?.env ? ['env', ...Object.entries(srv.env).map(([k, v]) => `${k}=${v}`), ...argv] : argv;
      if (!unpinned) { const [c, a] = pinned(full); measure(c, a); return; }
      const repin = srv && !srv.selfPinned;
      if (repin) pin(srv.proc.pid!, ALL_CPUS);
      try { measure(full[0]!, full.slice(1)); } finally { if (repin) pin(srv.proc.pid!, String(CPU)); }
    });
    return r;
  };

  // (a) the plain syscall
  const devnull = add('ioctl(/dev/null, FIONREAD) — plain syscall', `ioctl_rt -n ${N} /dev/null 0x541b`, '', [nat.rt, ...rt('/dev/null', FIONREAD, N)]);
  // The preload lanes' messages alone (a C pair, no server work): what any server of that protocol pays per request.
  add(PAIR_SYSCALLS, `preload_pair_floor -n ${N}`, 'client getsockopt + sendmsg + recvmsg; server epoll_wait + recvmsg (SCM_CREDENTIALS) + sendmsg', [nat.pairFloor, '-n', String(N)]);
  if (nat.pairUring) add(PAIR_URING, `preload_pair_floor -u -n ${N}`, 'client getsockopt + one io_uring_enter (linked sendmsg + recvmsg); server one io_uring_enter per request', [nat.pairFloor, '-u', '-n', String(N)]);

  const out: string[] = [header('npm run bench -- transport'), ''];
  // VIRTGPU_BENCH_ROWS=REGEX: measure only the rows whose name matches (the others are left out of the table).
  const only = process.env.VIRTGPU_BENCH_ROWS ? new RegExp(process.env.VIRTGPU_BENCH_ROWS) : undefined;
  let summary = '';
  let lfSingleNoop: Row | undefined, oNoop: Row | undefined, bNoop: Row | undefined;
  const noop = new Map<Server, Row>();
  let uringNote = '';
  try {
    // (b) libfuse3, single- and multi-threaded
    if (nat.fuseServer) {
      for (const single of [true, false]) {
        const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-bench-libfuse-'));
        const s = await startServer(nat.fuseServer, [...(single ? ['-s'] : []), mnt], /^ready$/m);
        const srv: Server = {
          label: single ? 'libfuse3 C `-s`' : 'libfuse3 C multi-threaded', proc: s.proc, file: path.join(mnt, 'dev'), cmd: `fuse_ll_ioctl${single ? ' -s' : ''} MNT`,
          stop: async () => {
            s.proc.kill('SIGTERM');
            if (!(await exited(s.proc, 3000))) { execFileSync('umount', ['-l', mnt]); s.proc.kill('SIGKILL'); }
            fs.rmSync(mnt, { recursive: true, force: true });
          },
        };
        servers.push(srv);
      }
    }
    // Floors: a Node worker FUSE loop answering in place, and cuse-dev's Session over a stub device (no core).
    for (const mode of ['raw', 'session'] as const) {
      const mnt = fs.mkdtempSync(path.join(os.tmpdir(), `virtgpu-bench-floor-${mode}-`));
      const s = await startServer(process.execPath, [FLOOR, mode, mnt], /^fuse-floor: serving (\S+)$/m);
      servers.push({
        label: mode === 'raw' ? 'empty Node worker loop' : 'cuse-dev Session, stub device (no core)', proc: s.proc, file: s.m[1]!, cmd: `node dist/bench/lib/fuse-floor.js ${mode} MNT`,
        stop: async () => { s.proc.kill('SIGTERM'); if (!(await exited(s.proc, 3000))) s.proc.kill('SIGKILL'); fs.rmSync(mnt, { recursive: true, force: true }); },
      });
    }
    // The same C server (no libfuse) two ways: its read/write loop, and FUSE-over-io_uring, the ring registered per
    // CPU queue while the host-wide switch is on for its start only. VIRTGPU_BENCH_NO_URING=1 leaves the switch alone.
    // oneCpu: every queue thread on CPU (what one serving thread for every queue, as ours would be, gets); only its
    // unpinned row is measured.
    const startC = async (uring: boolean, oneCpu = false): Promise<Server> => {
      const mnt = fs.mkdtempSync(path.join(os.tmpdir(), `virtgpu-bench-c${uring ? 'uring' : 'rw'}-`));
      const flags = [...(uring ? ['-u'] : []), ...(oneCpu ? ['-c', String(CPU)] : [])];
      const s = await startServer(nat.uringServer, [...flags, mnt], /^ready (.*)$/m).catch((e: Error) => { fs.rmSync(mnt, { recursive: true, force: true }); throw e; });
      const label = uring ? `C FUSE-over-io_uring${oneCpu ? `, every queue thread on CPU ${CPU}` : ''}` : 'C read/write loop (no libfuse)';
      const srv: Server = {
        label, proc: s.proc, file: path.join(mnt, 'dev'), cmd: `fuse_uring_ioctl${flags.length ? ` ${flags.join(' ')}` : ''} MNT`, selfPinned: uring, unpinnedOnly: oneCpu,
        stop: async () => {
          s.proc.kill('SIGTERM');
          if (!(await exited(s.proc, 3000))) { execFileSync('umount', ['-l', mnt]); s.proc.kill('SIGKILL'); }
          fs.rmSync(mnt, { recursive: true, force: true });
          const served = s.stdout().match(/^served (.*)$/m);
          summary += `${summary ? '; ' : ''}${label}: ${served ? served[1] : 'no count'}`;
        },
      };
      if (uring && !oneCpu) uringNote = s.m[1]!;
      if (oneCpu && !s.m[1]!.startsWith('uring=on')) { await srv.stop(); return srv; }
      servers.push(srv);
      return srv;
    };
    await startC(false);
    const uringRows = ['C FUSE-over-io_uring: no-op `_IO`', 'C FUSE-over-io_uring: 16-byte `_IOWR`', 'unpinned: C FUSE-over-io_uring: no-op `_IO`', ONE_CPU_ROW];
    const uringOff = process.env.VIRTGPU_BENCH_NO_URING === '1' ? 'VIRTGPU_BENCH_NO_URING=1'
      : only && !uringRows.some((r) => only.test(r)) ? 'no io_uring row selected (VIRTGPU_BENCH_ROWS)' : uringSwitchUnavailable();
    let uringSrv: Server | undefined;
    if (uringOff) uringNote = `not measured: ${uringOff}`;
    else {
      uringSrv = await withFuseUring(() => startC(true));
      if (!uringNote.startsWith('uring=on')) { await uringSrv.stop(); servers.splice(servers.indexOf(uringSrv), 1); uringSrv = undefined; }
      else if (!only || only.test(ONE_CPU_ROW)) {
        const one = await withFuseUring(() => startC(true, true));
        if (!servers.includes(one)) uringNote += '; the one-CPU server got no ring';
      }
    }
    // (c) ours, through the real CLI. Extra node flags for the server (e.g. --cpu-prof) via VIRTGPU_BENCH_SERVER_NODE_ARGS.
    // VIRTGPU_BENCH_BASELINE=DIR: also serve from another built checkout (DIR/dist/cli/main.js), for before/after rows
    // measured interleaved in the same run.
    const nodeArgs = (process.env.VIRTGPU_BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const serveArgs = ['serve', '--transport', 'fuse', '--watch', 'uffd'];
    // The preload transport's row: the same client binary, preloaded with the environment `serve` prints (the node
    // path is served inside the client; the round trip is a lane message each way).
    const preloadArgs = ['serve', '--transport', 'preload', '--watch', 'uffd'];
    const startOurs = async (label: string, cli: string, cmdText: string, args = serveArgs): Promise<{ srv: Server; how: string; watcher: string }> => {
      const o = await startServer(process.execPath, [...nodeArgs, cli, ...args], /^virtgpu-emu: serving (\S+) \((.*)\)$/m);
      const srv: Server = {
        label, proc: o.proc, file: o.m[1]!, cmd: cmdText,
        stop: async () => {
          o.proc.kill('SIGINT');
          if (!(await exited(o.proc, 5000))) o.proc.kill('SIGKILL');
          const stopped = o.stdout().split('\n').find((l) => l.includes('stopped')) ?? `(no summary; stderr: ${o.stderr().trim().split('\n').slice(-2).join(' | ')})`;
          summary += `${summary ? '; ' : ''}${label}: ${stopped}`;
        },
      };
      // Clients of ours run with the preload + socket `serve` names, so the watcher really is userfaultfd (no /proc fallback).
      srv.env = await handoffEnv(o.stderr);
      servers.push(srv);
      return { srv, how: srv.env ? 'clients started with the uffd handoff env `serve` prints' : 'NO uffd handoff offered by `serve`: /proc fallback', watcher: o.m[2]! };
    };
    const baseDir = process.env.VIRTGPU_BENCH_BASELINE;
    const baseline = baseDir ? (await startOurs('baseline', path.resolve(baseDir, 'dist', 'cli', 'main.js'), `node BASELINE/dist/cli/main.js ${serveArgs.join(' ')}`)).srv : undefined;
    const { srv: oursSrv, how, watcher } = await startOurs('ours', CLI, `node dist/cli/main.js ${serveArgs.join(' ')}`);
    const { srv: preloadSrv, how: preloadHow, watcher: preloadWatcher } = await startOurs('ours, preload transport', CLI, `node dist/cli/main.js ${preloadArgs.join(' ')}`, preloadArgs);
    // The preload protocol's floor: the same client with the same library, served by a C server that answers every
    // IOCTL at once (bench/native/preload_floor.c): the protocol's syscalls and wake-ups with no server work.
    const floorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-bench-preload-floor-'));
    const floorSock = path.join(floorDir, 'sock');
    const fl = await startServer(nat.preloadFloor, [floorSock], /^ready$/m);
    const floorSrv: Server = {
      label: PRELOAD_FLOOR, proc: fl.proc, file: preloadSrv.file, cmd: 'preload_floor SOCK',
      env: { VIRTGPU_EMU_SOCK: floorSock, LD_PRELOAD: preloadSrv.env?.LD_PRELOAD ?? findPreload() ?? PRELOAD_FILE },
      stop: async () => {
        fl.proc.kill('SIGTERM');
        if (!(await exited(fl.proc, 3000))) fl.proc.kill('SIGKILL');
        fs.rmSync(floorDir, { recursive: true, force: true });
      },
    };
    servers.push(floorSrv);
    for (const srv of servers) if (!srv.selfPinned) pin(srv.proc.pid!, String(CPU));

    const watchNote = `\`--watch uffd\`, no registrations (${watcher}; ${how})`;
    for (const srv of servers) {
      if (srv.unpinnedOnly) continue;
      const isOurs = srv === oursSrv || srv === baseline || srv === preloadSrv;
      const note = srv === preloadSrv ? `\`--watch uffd\`, no registrations (${preloadWatcher}; ${preloadHow})` : isOurs ? watchNote : '';
      const a = add(`${srv.label}: no-op \`_IO\`${isOurs ? ' (VERSION nr, no data)' : ''}`, `ioctl_rt -n ${N} FILE 0x${NOOP_IO.toString(16)}  # ${srv.cmd}`, note, [nat.rt, ...rt(srv.file, NOOP_IO, N)], srv);
      add(`${srv.label}: 16-byte \`_IOWR\`${isOurs ? ' (GET_CAP SYNCOBJ)' : ''}`, `ioctl_rt -n ${N} -v 0x13 FILE 0x${GET_CAP_IOWR16.toString(16)}  # ${srv.cmd}`, note, [nat.rt, ...rt(srv.file, GET_CAP_IOWR16, N, DRM_CAP_SYNCOBJ)], srv);
      noop.set(srv, a);
      if (srv.label === 'libfuse3 C `-s`') lfSingleNoop = a;
      if (srv === oursSrv) oNoop = a;
      if (srv === baseline) bNoop = a;
    }
    // VERSION (the real struct, zero lengths) with no userptr, and with one live userptr registered: the serving loop
    // then also waits for the client's memory events (the wake queue), which must not cost a syscall per request.
    for (const srv of [oursSrv, ...(baseline ? [baseline] : [])]) {
      for (const live of [0, 1]) {
        const l = live ? ['-l', '1'] : [];
        add(`${srv.label}: VERSION, ${live ? '1 live userptr (watched)' : 'no userptr'}`, `tests/c/bin/ioctl_bench -n ${N} ${l.join(' ')} -o version FILE`.replace('  ', ' '), live ? watchNote.replace('no registrations', 'one userptr registered for the whole run') : watchNote,
          [IOCTL_BENCH, '-n', String(N), ...l, '-o', 'version', srv.file], srv);
      }
    }
    add('ours: GETPARAM (value written via process_vm_writev)', `tests/c/bin/ioctl_bench -n ${N} -o getparam FILE`, watchNote, [IOCTL_BENCH, '-n', String(N), '-o', 'getparam', oursSrv.file], oursSrv);
    // The only row that registers userptrs (each create's range is released again by its GEM_CLOSE).
    add('ours: CREATE_BLOB(userptr, 4 pages) + GEM_CLOSE (2 ioctls)', `tests/c/bin/ioctl_bench -n ${N_CREATE} -o create FILE`,
      `after CONTEXT_INIT HSAKMT; one userptr registered during each op; ${how}`,
      [IOCTL_BENCH, '-n', String(N_CREATE), '-o', 'create', oursSrv.file], oursSrv);
    // Unpinned, for the spread (scheduler-dependent): the same two no-op rows as the ratio printed at the end.
    const lfSrv = servers.find((x) => x.label === 'libfuse3 C `-s`');
    if (lfSrv) add('unpinned: libfuse3 C `-s`: no-op `_IO`', `ioctl_rt -n ${N_UNPINNED} FILE 0x${NOOP_IO.toString(16)}`, 'scheduler-dependent', [nat.rt, ...rt(lfSrv.file, NOOP_IO, N_UNPINNED)], lfSrv, true);
    for (const srv of servers.filter((x) => x.label.startsWith('C '))) {
      const where = srv.unpinnedOnly ? `; every queue's thread stays on CPU ${CPU}` : srv.selfPinned ? '; the server\'s queue threads stay on their CPUs' : '';
      add(`unpinned: ${srv.label}: no-op \`_IO\``, `ioctl_rt -n ${N_UNPINNED} FILE 0x${NOOP_IO.toString(16)}  # ${srv.cmd}`, `scheduler-dependent${where}`, [nat.rt, ...rt(srv.file, NOOP_IO, N_UNPINNED)], srv, true);
    }
    add('unpinned: ours: no-op `_IO`', `ioctl_rt -n ${N_UNPINNED} FILE 0x${NOOP_IO.toString(16)}`, `scheduler-dependent; ${watchNote}`, [nat.rt, ...rt(oursSrv.file, NOOP_IO, N_UNPINNED)], oursSrv, true);

    const picked = rows.map((r, i) => [r, jobs[i]!] as const).filter(([r]) => !only || only.test(r.name));
    rows.splice(0, rows.length, ...picked.map(([r]) => r));
    // One untimed pass first: every server reaches its steady state (JIT tiers, heap sizes) before the timed runs.
    for (const [, j] of picked) j();
    for (const [r] of picked) { r.runs.length = 0; r.cpu.length = 0; r.srv.length = 0; }
    for (let rep = 0; rep < REPS; rep++) for (const [, j] of picked) j();
  } finally {
    for (const srv of servers) await srv.stop().catch(() => undefined);
  }

  const base = devnull.runs.length ? median(devnull.runs) : NaN;
  const lf = lfSingleNoop?.runs.length ? median(lfSingleNoop.runs) : undefined;
  out.push(table(`transport: one ioctl round trip, µs/op, median of ${REPS} interleaved runs after one untimed pass (${N / 1000}k ops; create ${N_CREATE / 1000}k; unpinned ${N_UNPINNED / 1000}k); client and server on CPU ${CPU} unless "unpinned"; ratio column: vs libfuse3 \`-s\` no-op`,
    rows.map((r) => {
      const v = median(r.runs);
      return { name: r.name, value: v, unit: 'µs/op', baseline: lf, note: [Number.isNaN(base) ? '' : `${(v / base).toFixed(1)}× /dev/null`, `runs ${r.runs.map((x) => x.toFixed(2)).join(' / ')}`, r.cpu.length ? `CPU client+server ${median(r.cpu).toFixed(2)} µs/op` : '', r.srv.length ? `server CPU ${median(r.srv).toFixed(2)} µs/op` : '', r.note].filter(Boolean).join('; ') };
    })));
  if (!nat.fuseServer) out.push('', `libfuse3 rows missing: ${nat.fuseWhy}`);
  if (!nat.pairUring) out.push('', `"${PAIR_URING}" row missing: liburing not found (apt-get install liburing-dev pkg-config)`);
  const ratio = lf && oNoop?.runs.length ? median(oNoop.runs) / lf : NaN;
  out.push('', `ours no-op / libfuse3 \`-s\` no-op = ${Number.isNaN(ratio) ? 'n/a' : ratio.toFixed(2) + '×'} (target ≤ 1.2×), pinned to one CPU, server run with \`--watch uffd\` and no registrations`);
  const cpuRatio = lfSingleNoop?.cpu.length && oNoop?.cpu.length ? median(oNoop.cpu) / median(lfSingleNoop.cpu) : NaN;
  if (!Number.isNaN(cpuRatio)) out.push('', `the same by CPU time (client + server per op, medians): ${cpuRatio.toFixed(2)}× (${median(oNoop!.cpu).toFixed(2)} / ${median(lfSingleNoop!.cpu).toFixed(2)} µs/op)`);
  const med = (r: Row | undefined): number => (r?.runs.length ? median(r.runs) : NaN);
  const rowNamed = (name: string): Row | undefined => rows.find((r) => r.name === name);
  const cRw = servers.find((x) => x.label === 'C read/write loop (no libfuse)'), cUr = servers.find((x) => x.label === 'C FUSE-over-io_uring');
  out.push('', `FUSE-over-io_uring: ${uringNote}`);
  const ratioLine = (what: string, a: Row | undefined, b: Row | undefined): void => {
    const wa = med(a), wb = med(b);
    if (Number.isNaN(wa) || Number.isNaN(wb)) return;
    const cpu = a!.cpu.length && b!.cpu.length ? `; by CPU (client + server) ${(median(a!.cpu) / median(b!.cpu)).toFixed(2)}× (${median(a!.cpu).toFixed(2)} / ${median(b!.cpu).toFixed(2)} µs/op)`
      : a!.srv.length && b!.srv.length ? `; by server CPU ${(median(a!.srv) / median(b!.srv)).toFixed(2)}× (${median(a!.srv).toFixed(2)} / ${median(b!.srv).toFixed(2)} µs/op)` : '';
    out.push('', `${what} = ${(wa / wb).toFixed(2)}× (${wa.toFixed(2)} / ${wb.toFixed(2)} µs/op)${cpu}`);
  };
  if (cRw && cUr) {
    ratioLine('C io_uring no-op / C read/write no-op, pinned', noop.get(cUr), noop.get(cRw));
    ratioLine('C io_uring no-op / C read/write no-op, unpinned', rowNamed(`unpinned: ${cUr.label}: no-op \`_IO\``), rowNamed(`unpinned: ${cRw.label}: no-op \`_IO\``));
    ratioLine('C io_uring no-op / libfuse3 `-s` no-op, pinned', noop.get(cUr), lfSingleNoop);
    ratioLine('C io_uring no-op / libfuse3 `-s` no-op, unpinned', rowNamed(`unpinned: ${cUr.label}: no-op \`_IO\``), rowNamed('unpinned: libfuse3 C `-s`: no-op `_IO`'));
    ratioLine(`C io_uring with every queue thread on CPU ${CPU} no-op / C read/write no-op, unpinned`, rowNamed(ONE_CPU_ROW), rowNamed(`unpinned: ${cRw.label}: no-op \`_IO\``));
  }
  // The preload transport's goal is the FUSE round trip; its floor row says what the protocol alone costs.
  ratioLine('ours, preload transport no-op / ours (FUSE) no-op', rowNamed('ours, preload transport: no-op `_IO` (VERSION nr, no data)'), oNoop);
  ratioLine('preload protocol floor no-op / ours (FUSE) no-op', rowNamed(`${PRELOAD_FLOOR}: no-op \`_IO\``), oNoop);
  ratioLine('preload lane messages (C pair, syscalls) / ours (FUSE) no-op', rowNamed(PAIR_SYSCALLS), oNoop);
  ratioLine('preload lane messages (C pair, io_uring on both sides) / ours (FUSE) no-op', rowNamed(PAIR_URING), oNoop);
  ratioLine('ours VERSION with 1 live userptr / without', rowNamed('ours: VERSION, 1 live userptr (watched)'), rowNamed('ours: VERSION, no userptr'));
  if (bNoop) ratioLine('baseline VERSION with 1 live userptr / without', rowNamed('baseline: VERSION, 1 live userptr (watched)'), rowNamed('baseline: VERSION, no userptr'));
  if (bNoop?.runs.length && oNoop?.runs.length) {
    const o = median(oNoop.runs), b = median(bNoop.runs);
    out.push('', `ours no-op − baseline no-op = ${(o - b).toFixed(3)} µs/op (${(o / b).toFixed(3)}×; baseline: the checkout in VIRTGPU_BENCH_BASELINE, same run, interleaved)`);
    if (oNoop.cpu.length && bNoop.cpu.length) out.push('', `by CPU (client + server): ours ${median(oNoop.cpu).toFixed(2)}, baseline ${median(bNoop.cpu).toFixed(2)} µs/op (${(median(oNoop.cpu) / median(bNoop.cpu)).toFixed(3)}×)`);
  }
  out.push('', `load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} CPUs; other work on the machine shows up as run-to-run spread)`);
  out.push('', `commands (FILE = the served file; natives built into build/bench/ from bench/native/):`, '');
  for (const r of rows) out.push(`- ${r.name}: \`${r.cmd}\``);
  out.push('', `servers at stop: ${summary}`);
  return out.join('\n');
}

if (require.main === module) {
  main().then((s) => console.log(s), (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
