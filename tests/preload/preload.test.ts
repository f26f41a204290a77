// The preload transport end to end: real C clients on the system's libdrm, preloaded with virtgpu-emu-preload.so,
// against `virtgpu-emu run --transport preload` — as root, and server and client both as `nobody` (no /dev/fuse, no
// CAP_SYS_PTRACE; the tree is staged in a 0755 folder, as a clean clone in a mktemp -d folder is closed to nobody):
// - the 22 userptr scenarios, the free/re-register loop;
// - the node's file semantics (tests/c/preload_node.c): dup family, O_CLOEXEC + exec, fork attribution, 4 threads,
//   fork while another thread is inside an ioctl, a non-dumpable client, EFAULT for bad pointers;
// - malformed traffic from a raw client (tests/c/preload_raw.c): every frame answered, each kind logged once;
// - two clients at once and a client SIGKILLed mid-ioctl on one server, every count back to zero.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import type { RunningServer } from '../../cuse-dev/transport/common';
import { allZero, collect, parseTap, tail, until, type CountsLike, type Done } from '../helpers/clients';
import { asUserArgv, cannotSwitchUsers, nobody } from '../helpers/as-user';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { PRELOAD_WORKER_ENTRY } from '../../cli/preload-worker-main';
import { findPreload } from '../../uffd';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'tests/c/bin');
const built = !!findPreload() && fs.existsSync(path.join(BIN, 'preload_node'));
const maybe = built ? test.serial : test.serial.skip;
const noSwitch = cannotSwitchUsers();

/** A copy of what the CLI needs to run (compiled JS, addon, preload library, runtime deps, C clients) in a 0755 folder. */
function stageTree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-preload-stage-'));
  // The package's runtime dependencies, as package.json names them (none may be missing from the staged tree).
  const deps = Object.keys((JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {});
  for (const rel of ['dist', 'build/Release', ...deps.map((d) => `node_modules/${d}`), 'tests/c/bin', 'package.json']) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.cpSync(path.join(ROOT, rel), path.join(dir, rel), { recursive: true });
  }
  const open = (p: string): void => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() || (st.mode & 0o111) ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  return dir;
}

let staged: string | undefined;
test.after.always(() => { if (staged) fs.rmSync(staged, { recursive: true, force: true }); });

type Who = 'root' | 'nobody';
/** `virtgpu-emu run --transport preload -- BIN/prog args` as `who` (nobody: server and client, from the staged tree). */
function cliRun(who: Who, prog: string, args: string[] = [], timeoutMs = 90_000): Promise<Done> {
  const root = who === 'root' ? ROOT : (staged ??= stageTree());
  const argv = [process.execPath, path.join(root, 'dist/cli/main.js'), 'run', '--transport', 'preload', '--', path.join(root, 'tests/c/bin', prog), ...args];
  const full = who === 'root' ? argv : asUserArgv(nobody()!, argv[0]!, argv.slice(1));
  const env = who === 'root' ? { ...process.env } : { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  return collect(spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: os.tmpdir() }), timeoutMs);
}

function tapFailures(r: Done): string[] {
  return [...parseTap(r.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
}

for (const who of ['root', 'nobody'] as const) {
  const m = who === 'nobody' && noSwitch ? test.serial.skip : maybe;
  const why = who === 'nobody' && noSwitch ? ` (skipped: ${noSwitch})` : '';
  m(`${who}: the 22 userptr scenarios over --transport preload, the server stops with every file released${why}`, async (t) => {
    const r = await cliRun(who, 'userptr_scenarios');
    t.is(r.code, 0, `failed: ${tapFailures(r).join('; ')}\n${tail(r.stderr)}`);
    t.is(parseTap(r.stdout).size, 22, tail(r.stdout));
    t.regex(r.stderr, /serving \S+ \(transport=preload, /);
    t.regex(r.stderr, /stopped \(stop\): clients=1 /);
    t.notRegex(r.stderr, /files-open-at-stop|serving worker error/);
  });
  m(`${who}: the node's file semantics: dup family, O_CLOEXEC and exec, fork attribution, threads, fork mid-ioctl, non-dumpable, EFAULT${why}`, async (t) => {
    const r = await cliRun(who, 'preload_node');
    t.log(r.stdout.split('\n').filter((l) => l.startsWith('ok')).length + ' scenarios passed');
    t.is(r.code, 0, `failed: ${tapFailures(r).join('; ')}\n${tail(r.stderr)}`);
    t.is(tapFailures(r).length, 0);
    t.notRegex(r.stderr, /files-open-at-stop|serving worker error/);
  });
  m(`${who}: blob mmap (twice, once MAP_FIXED) and fence fds (sync_wait, FENCE_FD_IN) over --transport preload${why}`, async (t) => {
    const r = await cliRun(who, 'preload_mmap_fence', ['--no-pause']);
    t.is(r.code, 0, `failed: ${tapFailures(r).join('; ')}\n${tail(r.stderr)}`);
    t.is(parseTap(r.stdout).size, 19, tail(r.stdout));
    t.notRegex(r.stderr, /files-open-at-stop|serving worker error/);
  });
  m(`${who}: free/re-register loop (2000 cycles) over --transport preload${why}`, async (t) => {
    const r = await cliRun(who, 'free_reregister_loop', ['-n', '2000']);
    t.is(r.code, 0, `${tail(r.stdout, 3)}\n${tail(r.stderr)}`);
  });
}

maybe('malformed traffic from a raw client: every frame answered with an errno, each kind logged once, the server serves on', async (t) => {
  const r = await cliRun('root', 'preload_raw');
  t.is(r.code, 0, `failed: ${tapFailures(r).join('; ')}\n${tail(r.stderr, 30)}`);
  const kinds = new Map<string, number>();
  for (const l of r.stderr.split('\n')) {
    const m = /^virtgpu-emu: preload: pid \d+(?: \(uid \d+\))?:? (.*?)(?:: answered|;|$)/.exec(l);
    if (!m) continue;
    const kind = m[1]!.replace(/\d+/g, 'N');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  t.true(kinds.size >= 6, `logged kinds: ${[...kinds.keys()].join(' | ')}`);
  for (const [k, n] of kinds) t.is(n, 1, `"${k}" logged ${n} times`);
  t.regex(r.stderr, /stopped \(stop\):/);
});

// ---- one server, several clients, observed through the snapshot ----

const counts = async (s: RunningServer): Promise<CountsLike> => (await s.snapshot()).counts as CountsLike;

async function withServer(t: ExecutionContext, body: (s: RunningServer) => Promise<void>): Promise<void> {
  const logs: string[] = [];
  const s = await startTransport('preload', { workerEntry: SERVE_WORKER_ENTRY, preloadEntry: PRELOAD_WORKER_ENTRY, watch: 'proc', log: (m) => logs.push(m) });
  try { await body(s); } finally {
    const sum = await s.stop();
    t.is(sum.openAtStop, 0, `no file left open at stop\n${logs.slice(-10).join('\n')}`);
  }
}

function client(s: RunningServer, prog: string, args: string[] = []): ChildProcess {
  return spawn(path.join(BIN, prog), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...s.clientEnv, VIRTGPU_EMU_WATCH: 'proc', VIRTGPU_EMU_MODE: s.mode } });
}

maybe('two userptr_scenarios clients at once on one preload server, then every count back to zero', async (t) => {
  await withServer(t, async (s) => {
    const [a, b] = await Promise.all([collect(client(s, 'userptr_scenarios'), 90_000), collect(client(s, 'userptr_scenarios'), 90_000)]);
    t.is(a.code, 0, tapFailures(a).join('; ') + tail(a.stderr));
    t.is(b.code, 0, tapFailures(b).join('; ') + tail(b.stderr));
    const c = await until('both files released and every count at zero', () => counts(s), allZero).catch((e: Error) => e);
    if (c instanceof Error) t.fail(c.message); else t.pass();
  });
});

maybe('a client SIGKILLed mid-ioctl: its file is released, another client keeps being served, counts back to zero', async (t) => {
  await withServer(t, async (s) => {
    const b = client(s, 'kill_mid_ioctl', ['-k', '2']);
    try {
      for (let round = 0; round < 3; round++) {
        const a = client(s, 'kill_mid_ioctl', ['-k', '4']);
        let out = '';
        a.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
        await until('client ready', async () => out, (o) => /^ready pid=\d+/m.test(o), 15_000);
        await new Promise((r) => setTimeout(r, 50 + 50 * round));
        a.kill('SIGKILL');
        await new Promise((r) => a.once('exit', r));
        t.is(a.signalCode, 'SIGKILL');
      }
      t.is(b.exitCode, null, 'the other client is still running');
      const c = await collect(client(s, 'userptr_scenarios'), 90_000);
      t.is(c.code, 0, `a new client after the kills: ${tapFailures(c).join('; ')}`);
    } finally {
      b.kill('SIGKILL');
      await new Promise((r) => { if (b.exitCode !== null || b.signalCode !== null) r(null); else b.once('exit', r); });
    }
    const z = await until('every count at zero after all clients are gone', () => counts(s), allZero).catch((e: Error) => e);
    if (z instanceof Error) t.fail(z.message); else t.pass();
  });
});

maybe('a forked child reports its fork itself (no EVENT_FORK needed): the server counts it, the file semantics hold, counts back to zero', async (t) => {
  await withServer(t, async (s) => {
    const r = await collect(client(s, 'preload_node'), 90_000);
    t.is(r.code, 0, tapFailures(r).join('; ') + tail(r.stderr));
    const st = (await s.snapshot()).stats;
    t.true((st.preloadForks ?? 0) >= 20, `fork reports: ${st.preloadForks}`);
    const z = await until('every count at zero', () => counts(s), allZero).catch((e: Error) => e);
    if (z instanceof Error) t.fail(z.message); else t.pass();
  });
});
