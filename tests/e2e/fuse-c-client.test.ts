// End to end: unmodified libdrm C clients (tests/c) against the real FUSE-mounted render node.
// - `virtgpu-emu run -- tests/c/bin/userptr_scenarios` in notifier mode (default, /proc and uffd watchers) and pin
//   mode: one ava test per scenario line of the client's TAP-like output, so a failure names the scenario and says
//   what was expected; the narrated demo that `npm start` shows;
// - the free/re-register ordering loop (10k cycles) under `run`;
// - two clients at once on one server, then every count back to zero (docs/semantics.md §7.5);
// - a client SIGKILLed in the middle of its ioctl loop: the server keeps serving another client and releases all
//   the killed client's objects (snapshot + trace). RELEASE reaches the server after the client's close, with
//   pid 0, so counts are awaited, never asserted at once.
// Skipped with the transport probe's reason where FUSE cannot be mounted; the C clients are built by
// scripts/setup.sh (`make -C tests/c`).
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { probeFuse, startTransport } from '../../cuse-dev/transport/auto';
import type { RunningServer } from '../../cuse-dev/transport/common';
import { allZero, collect, parseTap, tail, until, type CountsLike, type Done, type TapLine } from '../helpers/clients';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const BIN = path.join(ROOT, 'tests/c/bin');
const SCENARIOS = path.join(BIN, 'userptr_scenarios');
const fuse = probeFuse();
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;
const maybe = fuse.ok ? test : test.skip;
const maybeSerial = fuse.ok ? test.serial : test.serial.skip;

type Mode = 'notifier' | 'pin';
const MODES: Mode[] = ['notifier', 'pin'];

function tmpDir(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-e2e-')); }

/** `virtgpu-emu run --transport fuse --mode MODE -- CMD…` with the client told the mode through VIRTGPU_EMU_MODE. */
function cliRun(mode: Mode, cmd: string[], timeoutMs = 90_000, extra: string[] = []): Promise<Done & { dir: string }> {
  const dir = tmpDir();
  const p = spawn(process.execPath, [MAIN, 'run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--mode', mode, ...extra, '--', ...cmd], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIRTGPU_EMU_MODE: mode },
  });
  return collect(p, timeoutMs).then((d) => ({ ...d, dir }));
}

// ---- userptr_scenarios under `virtgpu-emu run`, one ava test per scenario ----

const listed = spawnSync(SCENARIOS, ['--list'], { encoding: 'utf8' });
const scenarioNames = listed.status === 0 ? listed.stdout.trim().split('\n').filter(Boolean) : [];
if (scenarioNames.length === 0) {
  test('C clients are built (tests/c/bin/userptr_scenarios --list)', (t) => {
    t.fail(`cannot list scenarios: ${listed.error?.message ?? listed.stderr} — run \`make -C tests/c\` (scripts/setup.sh does)`);
  });
}

/**
 * Server variants the scenarios run under: the product default (auto watcher), each watcher forced, pin mode, and the
 * later revisions whose userptr path takes the client's struct as it is (the client reads the revision from
 * VIRTGPU_EMU_UAPI, which `run` sets, and expects that revision's dedup, notifier, pin errno and flags;
 * docs/uapi-revisions.md; under v6 the client widens its ranges to whole pages). mainline has no userptr to test.
 */
interface Variant { label: string; mode: Mode; uapi: string; args: string[] }
const VARIANTS: Variant[] = [
  { label: 'notifier', mode: 'notifier', uapi: 'v1', args: [] },
  { label: 'notifier+proc', mode: 'notifier', uapi: 'v1', args: ['--watch', 'proc'] },
  { label: 'notifier+uffd', mode: 'notifier', uapi: 'v1', args: ['--watch', 'uffd'] },
  { label: 'pin', mode: 'pin', uapi: 'v1', args: [] },
  ...(['v2', 'v3', 'v4', 'v5', 'v6'] as const).map((u): Variant => ({ label: `uapi ${u}`, mode: 'pin', uapi: u, args: ['--uapi', u] })),
  { label: 'uapi libhsakmt-72', mode: 'notifier', uapi: 'libhsakmt-72', args: ['--uapi', 'libhsakmt-72'] },
];

const runs = new Map<string, Promise<Done & { dir: string; tap: Map<string, TapLine> }>>();
function scenariosRun(v: Variant) {
  let r = runs.get(v.label);
  if (!r) {
    r = cliRun(v.mode, [SCENARIOS], 90_000, v.args).then((d) => ({ ...d, tap: parseTap(d.stdout) }));
    runs.set(v.label, r);
  }
  return r;
}

for (const v of VARIANTS) {
  maybe(`${v.label}: virtgpu-emu run -- userptr_scenarios exits 0 and the server stops cleanly${skipWhy}`, async (t) => {
    const r = await scenariosRun(v);
    t.log(r.stderr.split('\n').filter((l) => /serving|userfaultfd|checker/.test(l)).join('\n') || '(no ready line)');
    const failed = [...r.tap.values()].filter((l) => !l.ok).map((l) => l.name);
    t.is(r.code, 0, `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; failed scenarios: ${failed.join(', ') || 'none'}\n${tail(r.stderr)}`);
    t.is(r.tap.size, scenarioNames.length, `one result line per scenario\n${tail(r.stdout)}`);
    t.regex(r.stderr, new RegExp(`serving \\S+ \\(transport=fuse, watcher=\\S+, uapi=${v.uapi}, mode=${v.mode}\\)`));
    // The client closed its file before exiting: nothing may still be open when the server stops.
    t.regex(r.stderr, /virtgpu-emu: stopped \(stop\): clients=1 /);
    t.notRegex(r.stderr, /files-open-at-stop/, 'the client closed its fd and exited, yet `run` stopped the server with its file still open: run must let the pending RELEASE (async, pid 0) arrive before stopping');
    fs.rmSync(r.dir, { recursive: true, force: true });
  });
  if (v.args.includes('uffd')) {
    maybe(`${v.label}: the client's memory is watched through its own userfaultfd (preload handoff under run)${skipWhy}`, async (t) => {
      const r = await scenariosRun(v);
      const fallback = r.stderr.split('\n').find((l) => /no userfaultfd/.test(l));
      t.is(fallback, undefined, '`run --watch uffd` must hand the client\'s userfaultfd to the server (VIRTGPU_EMU_UFFD_SOCK + LD_PRELOAD of virtgpu-emu-preload.so in CMD\'s environment); it fell back to the /proc checker');
    });
  }
  for (const name of scenarioNames) {
    maybe(`${v.label}: ${name}${skipWhy}`, async (t) => {
      const r = await scenariosRun(v);
      const line = r.tap.get(name);
      if (!line) return t.fail(`no result line for ${name} (client exit ${r.code}${r.signal ? `, ${r.signal}` : ''})\nstdout:\n${tail(r.stdout)}\nstderr:\n${tail(r.stderr)}`);
      if (line.ok) t.pass();
      else t.fail(`not ok ${line.n} - ${name}: ${line.detail}`);
    });
  }
}

// ---- what `npm start` shows ----

for (const mode of MODES) {
  maybe(`${mode}: the narrated demo (npm start) behaves as the spec says${skipWhy}`, async (t) => {
    const r = await cliRun(mode, [path.join(BIN, 'demo')], 60_000);
    t.is(r.code, 0, `${tail(r.stdout, 20)}\n${tail(r.stderr, 5)}`);
    t.regex(r.stdout, /Done: every step behaved as the spec says/);
    fs.rmSync(r.dir, { recursive: true, force: true });
  });
}

// ---- the ordering acceptance ----

for (const watch of ['auto', 'proc'] as const) {
  maybeSerial(`notifier (--watch ${watch}): free/re-register loop, 10000 cycles at one address, never the stale BO${skipWhy}`, async (t) => {
    const r = await cliRun('notifier', [path.join(BIN, 'free_reregister_loop'), '-n', '10000'], 110_000, ['--watch', watch]);
    const tap = parseTap(r.stdout).get('free_reregister_loop');
    t.log(tap?.detail ?? tail(r.stdout));
    t.is(r.code, 0, `${tail(r.stdout, 3)}\n${tail(r.stderr)}`);
    t.true(tap?.ok, tap ? tap.detail : 'no result line');
    fs.rmSync(r.dir, { recursive: true, force: true });
  });
}

// ---- several clients on one server, observed through the snapshot ----

interface SnapLike { files: { pid: number; handles: unknown[] }[]; clients: { pid: number }[] }
const counts = async (s: RunningServer): Promise<CountsLike> => (await s.snapshot()).counts as CountsLike;

async function withServer(t: ExecutionContext, mode: Mode, body: (s: RunningServer, trace: string) => Promise<void>): Promise<string[]> {
  const dir = tmpDir();
  const trace = path.join(dir, 'trace.jsonl');
  const logs: string[] = [];
  const s = await startTransport('fuse', { workerEntry: SERVE_WORKER_ENTRY, mountDir: path.join(dir, 'mnt'), mode, trace, log: (m) => logs.push(m) });
  t.log(`serving ${s.path} (watcher=${s.watcher}, mode=${s.mode})`);
  let lines: string[] = [];
  try {
    await body(s, trace);
  } finally {
    const sum = await s.stop();
    t.log(`server summary: clients=${sum.clients} ioctls=${sum.ioctls} opens=${sum.opens} releases=${sum.releases} interrupts=${sum.interrupts}`);
    t.is(sum.openAtStop, 0, 'no file left open when the server stopped');
    lines = fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean) : [];
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

// These clients are this process's children with no handoff configured: the server never injects into its own
// children, so their watcher is /proc, and the scenarios must expect its approximate outcomes (fork + copy-on-write).
function client(bin: string, args: string[], s: RunningServer, mode: Mode): ChildProcess {
  return spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIRTGPU_EMU_DEVICE: s.path, VIRTGPU_EMU_MODE: mode, VIRTGPU_EMU_WATCH: 'proc' } });
}

for (const mode of MODES) {
  maybeSerial(`${mode}: two userptr_scenarios clients at once on one server, then every count back to zero${skipWhy}`, async (t) => {
    await withServer(t, mode, async (s) => {
      const [a, b] = await Promise.all([collect(client(SCENARIOS, [], s, mode), 90_000), collect(client(SCENARIOS, [], s, mode), 90_000)]);
      for (const [who, r] of [['client A', a], ['client B', b]] as const) {
        const bad = [...parseTap(r.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
        t.is(r.code, 0, `${who} exit ${r.code}; failed:\n${bad.join('\n')}\n${tail(r.stderr, 5)}`);
      }
      // Spec §7.5: handles, resources, pins, registrations back to zero once both files are released.
      const c = await until('both files released and every count at zero', () => counts(s), allZero).catch((e: Error) => e);
      if (c instanceof Error) t.fail(c.message);
      else t.pass();
    });
  });
}

/** Reads stdout lines of a child as they come. */
function lineReader(p: ChildProcess) {
  const lines: string[] = [];
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return {
    lines,
    async wait(re: RegExp, ms = 15_000): Promise<RegExpExecArray> {
      const end = Date.now() + ms;
      for (;;) {
        for (const l of lines) { const m = re.exec(l); if (m) return m; }
        if (p.exitCode !== null || p.signalCode !== null) throw new Error(`client exited (${p.exitCode ?? p.signalCode}) before ${re}: ${lines.join(' | ')} ${err}`);
        if (Date.now() > end) throw new Error(`timed out waiting for ${re}: ${lines.join(' | ')} ${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

const exited = (p: ChildProcess): Promise<void> => new Promise((r) => { if (p.exitCode !== null || p.signalCode !== null) r(); else p.on('exit', () => r()); });

for (const mode of MODES) {
  maybeSerial(`${mode}: a client SIGKILLed mid-ioctl: the server keeps serving others and releases all its objects${skipWhy}`, async (t) => {
    const KILL = path.join(BIN, 'kill_mid_ioctl');
    const killedRes: number[] = [];
    const killedPids: number[] = [];
    const trace = await withServer(t, mode, async (s) => {
      // B holds 4 BOs and keeps issuing ioctls through all the kills.
      const b = client(KILL, ['-k', '4'], s, mode);
      const br = lineReader(b);
      try {
        const bReady = await br.wait(/^ready pid=(\d+) /);
        const bPid = Number(bReady[1]);
        for (let round = 0; round < 3; round++) {
          const a = client(KILL, ['-k', '8'], s, mode);
          const ar = lineReader(a);
          const m = await ar.wait(/^ready pid=(\d+) handles=(\d+) res=([\d,]+)$/);
          const aPid = Number(m[1]);
          killedPids.push(aPid);
          killedRes.push(...m[3]!.split(',').map(Number));
          // Let it run its ioctl loop for a while (it is in or around an ioctl nearly all the time), then kill.
          await new Promise((r) => setTimeout(r, 50 + 100 * round));
          a.kill('SIGKILL');
          await exited(a);
          t.is(a.signalCode, 'SIGKILL', `round ${round}: the client was killed, not finished (${ar.lines.join(' | ')})`);
          // RELEASE comes asynchronously (pid 0): wait until no file or client of the killed pid remains.
          const gone = await until(`round ${round}: pid ${aPid}'s file released`, async () => (await s.snapshot()).snapshot as SnapLike,
            (sn) => !sn.files.some((f) => f.pid === aPid) && !sn.clients.some((c) => c.pid === aPid)).catch((e: Error) => e);
          if (gone instanceof Error) { t.fail(gone.message); return; }
        }
        // Still serving: B's file is there and a fresh client passes every scenario.
        const sn = (await s.snapshot()).snapshot as SnapLike;
        t.true(sn.files.some((f) => f.pid === bPid), 'client B still has its file');
        const c = await collect(client(SCENARIOS, [], s, mode), 90_000);
        const bad = [...parseTap(c.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
        t.is(c.code, 0, `a new client after the kills: exit ${c.code}; failed:\n${bad.join('\n')}`);
        t.is(b.exitCode, null, `client B is still running (${b.exitCode ?? b.signalCode})`);
      } finally {
        b.kill('SIGKILL');
        await exited(b);
      }
      const c = await until('every count at zero after all clients are gone', () => counts(s), allZero).catch((e: Error) => e);
      if (c instanceof Error) t.fail(c.message);
    });
    // The trace (flushed at stop) shows each killed client's file closed and every resource it held unref'd.
    const ev = trace.map((l) => JSON.parse(l) as { t: string; op?: string; pid?: number; cmd?: { cmd: string; resId: number } });
    t.is(killedPids.length, 3);
    const closed = new Set(ev.filter((e) => e.t === 'file' && e.op === 'close').map((e) => e.pid));
    t.deepEqual(killedPids.filter((p) => !closed.has(p)), [], 'killed clients with no file close event in the trace');
    t.is(ev.filter((e) => e.t === 'file' && e.op === 'close').length, ev.filter((e) => e.t === 'file' && e.op === 'open').length, 'every file opened was closed');
    const host = ev.filter((e) => e.t === 'host');
    if (host.length === 0) {
      t.fail(`the trace has no host commands at all (${ev.length} events): --trace must record every host command, so the killed clients' RESOURCE_UNREFs cannot be checked there`);
    } else {
      const unrefd = new Set(host.filter((e) => e.cmd?.cmd === 'RESOURCE_UNREF').map((e) => e.cmd!.resId));
      t.deepEqual(killedRes.filter((r) => !unrefd.has(r)), [], 'resources of killed clients with no RESOURCE_UNREF in the trace');
    }
  });
}
