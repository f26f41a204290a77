// Real CUSE end to end: one VM boot runs tests/vm/fixtures/cuse-e2e.sh, which starts the compiled
// `virtgpu-emu serve --transport cuse` in the guest and points the C clients of tests/c at /dev/dri/renderD128:
// the docs/semantics.md §7 scenarios (embedded pointers through the RETRY protocol), EXECBUFFER, two clients at once, a client
// SIGKILLed mid-ioctl, SIGTERM, and a second server stopped while a client holds the node (unplugged device). The guest reports over the console (`@@E2E begin|end|fact` lines, see the
// script); the server's --trace lands in the writable job dir and is read here after the run. Every check below is
// its own ava test so CI's log names the failing scenario and shows its output. Never skipped: without qemu or the
// kernel package the VM run rejects and every test fails with that message.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { defaultCacheDir, lineLogger, repoRoot, runInVm, type RunInVmResult } from '../../tools/vm/vm';

const ROOT = repoRoot();
const MINOR = 128;
const DEV = `/dev/dri/renderD${MINOR}`;
const MODE_BITS = '0660';
const GUEST_SCRIPT = 'tests/vm/fixtures/cuse-e2e.sh';
const SCENARIOS = path.join(ROOT, 'tests/c/bin/userptr_scenarios');
/** Whole VM run incl. boot: ~30 s under TCG on an idle 2-CPU machine; TCG is CPU-bound, so the bound leaves room for a
 * machine loaded by the rest of the suite (the stress tests run beside it). */
const VM_TIMEOUT_MS = 360_000;

// ioctl numbers whose embedded pointers must travel as extra RETRY iovecs (include/uapi/drm/{drm,virtgpu_drm}.h).
const DRM_IOCTL_VERSION = 0xc0406400;
const DRM_IOCTL_VIRTGPU_GETPARAM = 0xc0106443;
const DRM_IOCTL_VIRTGPU_GET_CAPS = 0xc0186449;
const DRM_IOCTL_VIRTGPU_CONTEXT_INIT = 0xc010644b;
const DRM_IOCTL_VIRTGPU_EXECBUFFER = 0xc0406442;

// ---- the host-built EXECBUFFER client (userptr_scenarios has no EXECBUFFER) ----

const mtime = (p: string): number => fs.statSync(p).mtimeMs;

/** cc fixtures/cuse_execbuffer.c + tests/c/client.c → cache/bin/cuse_execbuffer, rebuilt when a source is newer. */
function buildExecbufferClient(): string {
  const src = path.join(ROOT, 'tests/vm/fixtures/cuse_execbuffer.c');
  const deps = [src, 'tests/c/client.c', 'tests/c/include/emu_client.h', 'tests/c/include/virtgpu_userptr.h'].map((p) => path.resolve(ROOT, p));
  const out = path.join(defaultCacheDir(), 'bin', 'cuse_execbuffer');
  if (fs.existsSync(out) && mtime(out) >= Math.max(...deps.map(mtime))) return out;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const pc = (flag: string): string[] => {
    const r = spawnSync('pkg-config', [flag, 'libdrm'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pkg-config ${flag} libdrm failed (apt-get install libdrm-dev pkg-config; scripts/setup.sh does): ${r.error?.message ?? r.stderr}`);
    return r.stdout.trim().split(/\s+/).filter(Boolean);
  };
  const tmp = `${out}.tmp-${process.pid}`;
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-std=gnu11', '-Itests/c/include', ...pc('--cflags'), '-o', tmp, src, 'tests/c/client.c', ...pc('--libs')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  fs.renameSync(tmp, out); // atomic: parallel ava workers may build it too
  return out;
}

// ---- console protocol ----

interface Step { name: string; lines: string[]; rc: number | null; t0: number; t1: number | null }
interface TapLine { n: number; ok: boolean; name: string; detail: string }
/** One JSON line of the server's trace (core TraceEvent or a transport event). */
interface Ev {
  ts: number; t: string; op?: string; pid?: number; file?: number; unique?: string; cmd?: number | { cmd: string; resId?: number; ctxId?: number; data?: string; resIds?: number[]; debugName?: string };
  name?: string; result?: number | string; in?: unknown[]; out?: unknown[]; note?: string;
}

function parseConsole(out: string): { steps: Map<string, Step>; facts: Map<string, string> } {
  const steps = new Map<string, Step>();
  const facts = new Map<string, string>();
  let cur: Step | undefined;
  for (const line of out.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^@@E2E begin (\S+) t=([\d.]+)$/.exec(line))) {
      cur = { name: m[1]!, lines: [], rc: null, t0: Number(m[2]), t1: null };
      steps.set(cur.name, cur);
    } else if ((m = /^@@E2E end (\S+) rc=(\d+) t=([\d.]+)$/.exec(line))) {
      const s = steps.get(m[1]!);
      if (s) { s.rc = Number(m[2]); s.t1 = Number(m[3]); }
      cur = undefined;
    } else if ((m = /^@@E2E fact (\S+) ?(.*)$/.exec(line))) {
      facts.set(m[1]!, m[2]!);
    } else cur?.lines.push(line);
  }
  return { steps, facts };
}

/** "ok N - name" / "not ok N - name: details", optionally behind a "[x] " prefix. */
function parseTap(lines: string[], prefix = ''): Map<string, TapLine> {
  const m = new Map<string, TapLine>();
  for (const l of lines) {
    if (!l.startsWith(prefix)) continue;
    const r = /^(ok|not ok) (\d+) - ([^:\s]+)(?:: (.*))?$/.exec(l.slice(prefix.length));
    if (r) m.set(r[3]!, { n: Number(r[2]), ok: r[1] === 'ok', name: r[3]!, detail: r[4] ?? '' });
  }
  return m;
}

function readTrace(file: string): Ev[] {
  if (!fs.existsSync(file)) return [];
  const out: Ev[] = [];
  for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!l) continue;
    try { out.push(JSON.parse(l) as Ev); } catch { /* the mid-run copy may end in a partial line */ }
  }
  return out;
}

// ---- the one VM run, shared by every test ----

interface E2E {
  r: RunInVmResult;
  steps: Map<string, Step>;
  facts: Map<string, string>;
  /** Whole trace (flushed at stop) and the copy the guest took after the victim's release, server still running. */
  trace: Ev[];
  traceAfterKill: Ev[];
}


let run: Promise<E2E> | undefined;
function e2e(): Promise<E2E> {
  run ??= (async () => {
    const execbuffer = buildExecbufferClient();
    const r = await runInVm({
      command: ['sh', GUEST_SCRIPT],
      cwd: ROOT,
      env: { E2E_MINOR: String(MINOR), E2E_MODE_BITS: MODE_BITS, E2E_EXECBUFFER_BIN: execbuffer },
      timeoutMs: VM_TIMEOUT_MS,
      keepJobDir: true,
      onOutput: lineLogger('[vm] '),
    });
    try {
      const { steps, facts } = parseConsole(r.output);
      return {
        r, steps, facts,
        trace: readTrace(path.join(r.jobDir, 'trace.jsonl')),
        traceAfterKill: readTrace(path.join(r.jobDir, 'trace-after-kill.jsonl')),
      };
    } finally {
      fs.rmSync(r.jobDir, { recursive: true, force: true });
    }
  })();
  return run;
}

/** The run, or undefined after failing `t` (the first test carries the whole message, the others its first line). */
async function get(t: ExecutionContext, full = false): Promise<E2E | undefined> {
  t.timeout(VM_TIMEOUT_MS + 30_000);
  try {
    return await e2e();
  } catch (e) {
    const msg = (e as Error).message;
    t.fail(full ? msg : `the CUSE VM run failed: ${msg.split('\n')[0]} (whole message in the first cuse-e2e test)`);
    return undefined;
  }
}

const show = (s: Step | undefined, n = 40): string =>
  s ? `--- step ${s.name} (rc=${s.rc}) output ---\n${s.lines.slice(-n).join('\n')}` : '(step missing: the guest script stopped before it)';
const hostCmds = (ev: Ev[], name: string) => ev.filter((e) => e.t === 'host' && typeof e.cmd === 'object' && e.cmd.cmd === name).map((e) => e.cmd as Exclude<Ev['cmd'], number | undefined>);

/** What the server's watcher reported for a client (a scenario about munmap/madvise/fork failing is usually here). */
function watcherEvents(e: E2E, pid: number, n = 30): string {
  const ev = e.trace.filter((x) => x.t === 'notifier' && x.pid === pid);
  return `--- last ${Math.min(n, ev.length)} of ${ev.length} notifier events of pid ${pid} in the server's trace ---\n` +
    ev.slice(-n).map((x) => JSON.stringify(x)).join('\n');
}

// ---- tests ----

test('cuse-e2e: the VM boots once and the guest script runs every step', async (t) => {
  const e = await get(t, true);
  if (!e) return;
  t.log(`accel=${e.r.accel} boot=${e.r.bootMs} ms total=${e.r.totalMs} ms; steps: ` +
    [...e.steps.values()].map((s) => `${s.name} ${s.t1 !== null ? (s.t1 - s.t0).toFixed(1) : '?'} s`).join(', '));
  t.is(e.r.exitCode, 0, e.r.output.slice(-4000));
  t.deepEqual([...e.steps.keys()], ['serve', 'node', 'scenarios', 'execbuffer', 'two-clients', 'kill-mid-ioctl', 'stop', 'unplugged'], e.r.output.slice(-4000));
});

test(`cuse-e2e: serve --transport cuse --minor ${MINOR} prints the ready line`, async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('serve');
  t.is(s?.rc, 0, show(s));
  t.regex(s?.lines.join('\n') ?? '', new RegExp(`^virtgpu-emu: serving ${DEV} \\(transport=cuse, watcher=\\S+, uapi=v1, mode=notifier\\)$`, 'm'), show(s));
});

test('cuse-e2e: clients hand their userfaultfd to the server (preload handoff) and are watched through it', async (t) => {
  const e = await get(t);
  if (!e) return;
  t.regex(e.facts.get('client-env') ?? '', /\bLD_PRELOAD=\S*virtgpu-emu-preload\.so\b/, `serve printed no handoff env for clients\n${show(e.steps.get('stop'))}`);
  const notes = new Set(e.trace.filter((x) => x.t === 'notifier' && typeof x.note === 'string').map((x) => x.note!.split(/[ ,:]/)[0]));
  t.true(notes.has('uffd'), `no notifier event came from a userfaultfd (sources seen: ${[...notes].join(', ') || 'none'})`);
});

test(`cuse-e2e: ${DEV} is a character device 226:${MINOR} with mode ${MODE_BITS}`, async (t) => {
  const e = await get(t);
  if (!e) return;
  // Major 226 (DRM) because drm.ko is not loaded in the guest; CUSE registers the region itself.
  t.is(e.facts.get('node-stat'), `character special file ${MODE_BITS.replace(/^0/, '')} e2:${MINOR.toString(16)}`, show(e.steps.get('node')));
  t.is(e.facts.get('sys-dev'), `226:${MINOR}`);
});

// One test per docs/semantics.md §7 scenario, named as userptr_scenarios --list names them.
const listed = spawnSync(SCENARIOS, ['--list'], { encoding: 'utf8' });
const scenarioNames = listed.status === 0 ? listed.stdout.trim().split('\n').filter(Boolean) : [];
if (scenarioNames.length === 0) {
  test('cuse-e2e: C clients are built (tests/c/bin/userptr_scenarios --list)', (t) => {
    t.fail(`cannot list scenarios: ${listed.error?.message ?? listed.stderr} — run \`make -C tests/c\` (scripts/setup.sh does)`);
  });
}
for (const name of scenarioNames) {
  test(`cuse-e2e: scenario ${name}`, async (t) => {
    const e = await get(t);
    if (!e) return;
    const s = e.steps.get('scenarios');
    const line = parseTap(s?.lines ?? []).get(name);
    if (!line) return t.fail(`no result line for ${name}\n${show(s)}`);
    if (!line.ok) return t.fail(`not ok ${line.n} - ${name}: ${line.detail}\n${show(s)}\n${watcherEvents(e, Number(e.facts.get('scenarios-pid')))}`);
    t.pass();
  });
}

test('cuse-e2e: userptr_scenarios exits 0 and prints one line per scenario', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('scenarios');
  t.is(s?.rc, 0, show(s));
  t.is(parseTap(s?.lines ?? []).size, scenarioNames.length, show(s));
});

for (const name of ['context_init_hsakmt', 'execbuffer_command_and_bo_handles', 'execbuffer_bad_command_pointer_efault']) {
  test(`cuse-e2e: execbuffer ${name}`, async (t) => {
    const e = await get(t);
    if (!e) return;
    const s = e.steps.get('execbuffer');
    const line = parseTap(s?.lines ?? []).get(name);
    if (!line) return t.fail(`no result line for ${name}\n${show(s)}`);
    t.true(line.ok, `not ok ${line.n} - ${name}: ${line.detail}\n${show(s)}`);
  });
}

test('cuse-e2e: the EXECBUFFER command bytes and BO handle reached the host as SUBMIT_3D', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('execbuffer');
  const m = /^submitted res=(\d+) size=(\d+) text=(\S+)$/m.exec(s?.lines.join('\n') ?? '');
  if (!m) return t.fail(`no "submitted" line\n${show(s)}`);
  const submits = hostCmds(e.trace, 'SUBMIT_3D');
  const hex = Buffer.from(m[3]!).toString('hex');
  const ours = submits.find((c) => c.data === hex);
  t.truthy(ours, `no SUBMIT_3D with data "${m[3]}" among ${submits.length} in the trace`);
  t.deepEqual(ours?.resIds, [Number(m[1])]);
});

test('cuse-e2e: embedded pointers travel as extra RETRY iovecs (GETPARAM, VERSION, GET_CAPS, CONTEXT_INIT, EXECBUFFER)', async (t) => {
  const e = await get(t);
  if (!e) return;
  const retries = e.trace.filter((ev) => ev.t === 'transport' && ev.op === 'RETRY');
  t.true(retries.length > 0, 'no RETRY at all in the trace: did the kernel grant CUSE_UNRESTRICTED_IOCTL?');
  const init = e.trace.find((ev) => ev.t === 'transport' && ev.op === 'INIT') as { flags?: number } | undefined;
  t.is(init?.flags, 1, 'CUSE_INIT answered with CUSE_UNRESTRICTED_IOCTL');
  // [cmd, name, iovecs beyond the struct in / out]
  const want: [number, string, 'in' | 'out'][] = [
    [DRM_IOCTL_VIRTGPU_GETPARAM, 'GETPARAM value', 'out'],
    [DRM_IOCTL_VERSION, 'VERSION name/date/desc', 'out'],
    [DRM_IOCTL_VIRTGPU_GET_CAPS, 'GET_CAPS addr', 'out'],
    [DRM_IOCTL_VIRTGPU_CONTEXT_INIT, 'CONTEXT_INIT ctx_set_params', 'in'],
    [DRM_IOCTL_VIRTGPU_EXECBUFFER, 'EXECBUFFER command + bo_handles', 'in'],
  ];
  for (const [cmd, what, dir] of want) {
    const mine = retries.filter((r) => r.cmd === cmd);
    t.true(mine.some((r) => (r[dir]?.length ?? 0) >= 2), `${what}: no RETRY with a pointer iovec (${mine.length} RETRYs for 0x${cmd.toString(16)})`);
    t.true(e.trace.some((ev) => ev.t === 'ioctl' && ev.cmd === cmd && ev.result === 0), `${what}: no successful ioctl after its retries`);
  }
});

test('cuse-e2e: two clients at once on one server both pass every scenario', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('two-clients');
  for (const c of ['a', 'b']) {
    const tap = parseTap(s?.lines ?? [], `[${c}] `);
    const bad = [...tap.values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
    t.is(tap.size, scenarioNames.length, `client ${c}: one line per scenario\n${show(s)}`);
    t.deepEqual(bad, [], `client ${c} failed scenarios`);
  }
  t.is(s?.rc, 0, show(s));
  // Both really overlapped: each file was opened before the other was closed.
  const pids = (e.facts.get('two-clients-pids') ?? '').split(' ').map(Number);
  const span = (pid: number) => {
    const f = e.trace.filter((ev) => ev.t === 'file' && ev.pid === pid);
    return [f.find((ev) => ev.op === 'open')?.ts ?? NaN, f.find((ev) => ev.op === 'close')?.ts ?? NaN];
  };
  const [a, b] = pids.map(span);
  t.true(!!a && !!b && a[0]! < b[1]! && b[0]! < a[1]!, `the two files' open→close spans overlap (${JSON.stringify([a, b])})`);
});

/** Victim/survivor facts from the kill step. */
function killFacts(e: E2E) {
  const ready = (k: string) => /^ready pid=(\d+) handles=(\d+) res=([\d,]+)$/.exec(e.facts.get(k) ?? '');
  const v = ready('victim-ready');
  const s = ready('survivor-ready');
  return {
    victim: v ? Number(v[1]) : NaN, victimRes: v ? v[3]!.split(',').map(Number) : [],
    survivor: s ? Number(s[1]) : NaN,
  };
}

test('cuse-e2e: a client SIGKILLed mid-ioctl has its file and every object released while the server runs', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('kill-mid-ioctl');
  const { victim, victimRes } = killFacts(e);
  t.is(e.facts.get('victim-status'), '137', `the victim died of SIGKILL (128+9)\n${show(s)}`);
  // Mid-ioctl: the guest killed it while /proc/PID/wchan said it waited for a FUSE reply. (No FUSE_INTERRUPT shows
  // it: the serving loop answers each request before reading the next, and the kernel drops a queued interrupt
  // when the reply ends the request.)
  t.regex(e.facts.get('victim-wchan-at-kill') ?? '', /^request_wait_answer /, 'the victim was inside ioctl(2), waiting for the server, when killed');
  t.true(victimRes.length === 8, `victim created its 8 BOs before the kill: ${e.facts.get('victim-ready')}`);
  t.is(e.facts.get('victim-closed'), 'yes', 'the victim\'s file close appeared in the trace within 10 s of the kill');
  // Checked on the copy taken while the server (and the survivor) still ran.
  const after = e.traceAfterKill;
  t.true(after.some((ev) => ev.t === 'file' && ev.op === 'close' && ev.pid === victim), `no close of pid ${victim}'s file in the mid-run trace (${after.length} events)`);
  const unrefd = new Set(hostCmds(after, 'RESOURCE_UNREF').map((c) => c.resId));
  t.deepEqual(victimRes.filter((r) => !unrefd.has(r)), [], 'victim resources with no RESOURCE_UNREF before the stop');
  const ctx = hostCmds(after, 'CTX_CREATE').find((c) => c.debugName === `pid${victim}`)?.ctxId;
  t.true(ctx !== undefined && hostCmds(after, 'CTX_DESTROY').some((c) => c.ctxId === ctx), `victim's context ${ctx} destroyed before the stop`);
});

test('cuse-e2e: after the SIGKILL the server keeps serving (survivor\'s ioctls continue, a fresh client runs to the end)', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('kill-mid-ioctl');
  const { victim, survivor } = killFacts(e);
  t.is(e.facts.get('server-alive-after-kill'), 'yes');
  t.is(e.facts.get('survivor-alive-after-kill'), 'yes', show(s));
  const closed = e.trace.find((ev) => ev.t === 'file' && ev.op === 'close' && ev.pid === victim);
  const later = e.trace.filter((ev) => ev.t === 'ioctl' && ev.pid === survivor && closed && ev.ts > closed.ts);
  t.true(later.length > 0, `survivor pid ${survivor} had ioctls answered after the victim's release`);
  // A fresh client (kill_mid_ioctl -n 20: pointer GETPARAM, dedup, create + GEM_CLOSE, VERSION) runs to a normal exit.
  t.regex(s?.lines.join('\n') ?? '', /^\[after-kill\] ready pid=\d+ handles=2 /m, show(s));
  t.is(s?.rc, 0, `the fresh client after the kill exits 0\n${show(s)}`);
});

test('cuse-e2e: SIGTERM stops the server with a summary line and removes the node', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('stop');
  t.is(e.facts.get('server-status'), '0', show(s));
  // clients: scenarios, execbuffer, two at once, victim + survivor, the fresh one after the kill.
  t.regex(e.facts.get('summary') ?? '', /^virtgpu-emu: stopped \(stop\): clients=7 ioctls=\d+ userptrs created=\d+ split=\d+ evicted=\d+ unmapped=\d+( uffd event read→serviced: n=\d+ median=[\d.]+µs p99=[\d.]+µs)?$/, show(s));
  t.notRegex(e.facts.get('summary') ?? '', /files-open-at-stop/);
  t.is(e.facts.get('node-after-stop'), 'gone', `${DEV} must disappear when /dev/cuse is closed`);
});

test('cuse-e2e: the callers of a kernel without thread pidfds (before 6.9, as the guest\'s): leaders cached on their pidfds, other threads checked through /proc, said once', async (t) => {
  const e = await get(t);
  if (!e) return;
  const k = /^(\d+)\.(\d+)/.exec(e.facts.get('kernel') ?? '');
  if (!k) { t.fail(`no guest kernel version: ${e.facts.get('kernel') ?? '(no fact)'}`); return; }
  const before69 = Number(k[1]) < 6 || (Number(k[1]) === 6 && Number(k[2]) < 9);
  const notes = (e.steps.get('stop')?.lines ?? []).filter((l) => /no thread pidfds/.test(l));
  if (!before69) { t.deepEqual(notes, [], `guest kernel ${k[0]} has thread pidfds`); return; }
  t.is(notes.length, 1, show(e.steps.get('stop')));
  t.regex(notes[0] ?? '', /main thread is cached on its pidfd, other threads are checked against \/proc\/TGID\/task\/TID at every request/);
});

test('cuse-e2e: by the stop every file, resource and context was released (docs/semantics.md §7.5, from the trace)', async (t) => {
  const e = await get(t);
  if (!e) return;
  const files = (op: string) => e.trace.filter((ev) => ev.t === 'file' && ev.op === op).map((ev) => ev.file).sort();
  t.true(files('open').length >= 7, `files opened: ${files('open').length}`);
  t.deepEqual(files('close'), files('open'), 'every file opened was closed');
  const created = new Set(hostCmds(e.trace, 'RESOURCE_CREATE_BLOB').map((c) => c.resId));
  for (const c of hostCmds(e.trace, 'RESOURCE_UNREF')) created.delete(c.resId);
  t.deepEqual([...created], [], 'resources created and never unref\'d');
  const ctxs = new Set(hostCmds(e.trace, 'CTX_CREATE').map((c) => c.ctxId));
  for (const c of hostCmds(e.trace, 'CTX_DESTROY')) ctxs.delete(c.ctxId);
  t.deepEqual([...ctxs], [], 'contexts created and never destroyed');
});

test('cuse-e2e: a file held across the stop answers ENODEV (unplugged DRM device), closes, and then the node and the answerer are gone', async (t) => {
  const e = await get(t);
  if (!e) return;
  const s = e.steps.get('unplugged');
  const f = (k: string): string => e.facts.get(k) ?? '(no fact)';
  const json = (k: string): unknown => { try { return JSON.parse(f(k)); } catch { return f(k); } };
  t.is(s?.rc, 0, show(s));
  t.like(json('holder-first') as object, { version_rc: 0, name: 'virtio_gpu' }, `the holder's ioctls were answered before the stop\n${show(s)}`);
  t.is(f('unplug-server-status'), '0', show(s));
  t.regex(f('unplug-summary'), /^virtgpu-emu: stopped \(stop\): clients=1 .* files-open-at-stop=1\b/, show(s));
  // The server exited; a detached answerer (cuse-dev/transport/unplugged.ts) holds /dev/cuse for the held file.
  t.regex(f('answerer-cmd'), /\/cuse-dev\/transport\/unplugged\.js \d+ 1 $/, `the answerer runs, told of 1 open file\n${show(s)}`);
  t.is(f('node-while-held'), 'present', 'the char device lives as long as /dev/cuse is open');
  const ENODEV = constants.errno.ENODEV;
  t.deepEqual(json('holder-after'), { after: ENODEV }, `the held file's next ioctl: ENODEV, as drm_ioctl answers after drm_dev_unplug\n${show(s)}`);
  // The node is still there (the char device is registered until /dev/cuse is closed), so a new open reaches the
  // answerer, which refuses FUSE_OPEN with ENODEV: no new file is made, as a real unplugged DRM node refuses opens.
  t.deepEqual(json('holder-reopen'), { reopen: ENODEV }, show(s));
  t.deepEqual(json('holder-close'), { close: 'ok' }, show(s));
  t.is(f('holder-status'), '0', show(s));
  // The RELEASE of the last file ends the answerer; its exit closes /dev/cuse, which removes the char device.
  t.is(f('answerer-after-close'), 'exited', show(s));
  t.is(f('node-after-close'), 'gone', `${DEV} must disappear once the last held file is closed`);
});
