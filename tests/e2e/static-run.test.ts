// Statically linked clients under `virtgpu-emu run`. They ignore LD_PRELOAD, so they hand no userfaultfd over; the
// server ptrace-injects one only into processes that are not its own children (uffd/provider.ts: Node's child
// watcher would reap the ptrace stops), so `run` starts its command through the launcher (uffd/native/launch.c):
// - the 22 userptr scenarios built -static (tests/c/bin/userptr_scenarios_static) pass under
//   `run --watch uffd` (the exact watcher), their userfaultfd injected; one ava test per scenario;
// - a server in this process serving the same client started through the launcher: injected, every count back to
//   zero; started directly (this server's own child): not injected, said once;
// - the launcher relays the exit code, a death by signal, an exec failure (127) and the signals it gets, and leaves
//   no orphan: its command gets SIGTERM when the launcher's parent (`run`'s server) dies, and SIGKILL when the
//   launcher is SIGKILLed.
// Skipped with the transport probe's reason where FUSE cannot be mounted (the launcher tests need no FUSE).
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { probeFuse, startTransport } from '../../cuse-dev/transport/auto';
import { recoverDeadMount } from '../../cuse-dev/transport/mounts';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';
import { findLauncher } from '../../uffd/acquire';
import { allZero, collect, parseTap, tail, until, type CountsLike, type Done } from '../helpers/clients';
import { asUserArgv, cannotSwitchUsers, nobody, stage } from '../helpers/as-user';

const ROOT = path.resolve(__dirname, '../../..');
const STATIC = path.join(ROOT, 'tests/c/bin/userptr_scenarios_static');
const LAUNCHER = findLauncher();
const fuse = probeFuse();
const skip = !fuse.ok ? fuse.reason : !LAUNCHER ? 'the launcher is not built (npm install)' : !fs.existsSync(STATIC) ? 'tests/c/bin/userptr_scenarios_static not built (make -C tests/c)' : '';
const skipWhy = skip ? ` (skipped: ${skip})` : '';
const maybe = skip ? test.skip : test;
const maybeSerial = skip ? test.serial.skip : test.serial;
const maybeLauncher = LAUNCHER ? test : test.skip;

// ---- the scenarios under `virtgpu-emu run --watch uffd` ----

const listed = fs.existsSync(STATIC) ? spawnSync(STATIC, ['--list'], { encoding: 'utf8' }) : null;
const scenarioNames = listed?.status === 0 ? listed.stdout.trim().split('\n').filter(Boolean) : [];

let runResult: Promise<Done> | null = null;
function staticRun(): Promise<Done> {
  if (!runResult) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-static-'));
    const p = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--watch', 'uffd', '--', STATIC], { stdio: ['ignore', 'pipe', 'pipe'] });
    runResult = collect(p, 90_000).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return runResult;
}

maybe(`run --watch uffd -- userptr_scenarios_static: 22 scenarios, the client injected, the server stops clean${skipWhy}`, async (t) => {
  const r = await staticRun();
  const tap = parseTap(r.stdout);
  t.log(r.stderr.split('\n').filter((l) => /injected|inject:|no userfaultfd|not injecting/.test(l)).join('\n'));
  t.is(scenarioNames.length, 22, `userptr_scenarios_static --list: ${listed?.stderr ?? 'not built'}`);
  t.is(r.code, 0, `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}; failed: ${[...tap.values()].filter((l) => !l.ok).map((l) => l.name).join(', ') || 'none'}\n${tail(r.stderr)}`);
  t.is(tap.size, scenarioNames.length, tail(r.stdout));
  t.regex(r.stderr, /transport=fuse, watcher=uffd,/);
  t.regex(r.stderr, /userfaultfd injected by ptrace into thread \d+/, 'the static client must get its userfaultfd by injection');
  t.notRegex(r.stderr, /not injecting into a child of this server/);
  t.regex(r.stderr, /stopped \(stop\): clients=1 .* inject: started=1 completed=1 abandoned=0 tracee-died=0 failed=0 refused=0 declined=0/);
  t.notRegex(r.stderr, /files-open-at-stop/);
});

for (const name of scenarioNames) {
  maybe(`static under run --watch uffd: ${name}${skipWhy}`, async (t) => {
    const r = await staticRun();
    const line = parseTap(r.stdout).get(name);
    if (!line) return t.fail(`no result line for ${name}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
    if (line.ok) t.pass(); else t.fail(`not ok ${line.n} - ${name}: ${line.detail}`);
  });
}

// ---- through a dynamically linked wrapper that execs the client (same pid): its handed-over uffd is stale ----

/** `run --watch uffd [extra] -- CMD…` in a 0755 mount dir (an unprivileged client must reach the node). */
async function runStatic(extra: string[], cmd: string[]): Promise<Done> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-static-'));
  fs.chmodSync(dir, 0o755);
  try {
    return await collect(spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--watch', 'uffd', ...extra, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] }), 90_000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function injectedAfterExec(t: ExecutionContext, r: Done): void {
  const failed = [...parseTap(r.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`);
  t.is(r.code, 0, `failed: ${failed.join('\n') || 'none'}\n${tail(r.stderr)}`);
  t.is(parseTap(r.stdout).size, scenarioNames.length);
  t.regex(r.stderr, /the uffd it handed over was for the program it replaced by exec/, 'the wrapper\'s uffd (handed over by its preload before the exec) must be recognised as stale');
  t.regex(r.stderr, /userfaultfd injected by ptrace into thread \d+/);
  t.notRegex(r.stderr, /registration failed; the range falls back to the \/proc checker/);
}

maybe(`run --watch uffd -- env VAR=1 userptr_scenarios_static: the stale uffd of env is dropped, the client injected${skipWhy}`, async (t) => {
  injectedAfterExec(t, await runStatic([], ['env', 'VIRTGPU_EMU_TEST_WRAPPER=1', STATIC]));
});

const userSkip = skip || cannotSwitchUsers();
(userSkip ? test.skip : test)(`as nobody (setpriv, --inject-uid nobody): the static scenarios pass, injected${userSkip ? ` (skipped: ${userSkip})` : ''}`, async (t) => {
  const staged = stage([STATIC]);
  try {
    const who = nobody()!;
    const r = await runStatic(['--inject-uid', 'nobody'], asUserArgv(who, staged.at(path.basename(STATIC)), []));
    injectedAfterExec(t, r);
  } finally {
    staged.remove();
  }
});

// ---- a server in this process: counts, and why the launcher is needed ----

maybeSerial(`through the launcher the static client is injected and every count comes back to zero; as this server's own child it is not injected${skipWhy}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-static-'));
  const logs: string[] = [];
  const s = await startTransport('fuse', { workerEntry: SERVE_WORKER_ENTRY, mountDir: path.join(dir, 'mnt'), watch: 'uffd', log: (m) => logs.push(m) });
  const stats = async (): Promise<Record<string, number>> => (await s.snapshot()).stats;
  const zero = async (what: string): Promise<void> => {
    const c = await until(what, async () => (await s.snapshot()).counts as CountsLike, allZero).catch((e: Error) => e);
    if (c instanceof Error) t.fail(c.message);
  };
  try {
    const env = { ...process.env, VIRTGPU_EMU_DEVICE: s.path, VIRTGPU_EMU_WATCH: 'uffd' };
    const a = await collect(spawn(LAUNCHER!, [STATIC], { stdio: ['ignore', 'pipe', 'pipe'], env }), 90_000);
    t.is(a.code, 0, `through the launcher: ${[...parseTap(a.stdout).values()].filter((l) => !l.ok).map((l) => `${l.name}: ${l.detail}`).join('\n')}\n${tail(a.stderr, 5)}`);
    await zero('the launched client\'s file released and every count at zero');
    const st = await stats();
    t.is(st.injectCompleted, 1, JSON.stringify(st));
    t.is(st.injectFailed, 0);
    // The same binary as our own child: the /proc checker's expectations (VIRTGPU_EMU_WATCH=proc), no injection.
    const b = await collect(spawn(STATIC, [], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, VIRTGPU_EMU_WATCH: 'proc' } }), 90_000);
    t.is(b.code, 0, `as our child: ${tail(b.stdout, 5)}`);
    await zero('the direct child\'s file released and every count at zero');
    t.is((await stats()).injectStarted, 1, 'no injection begun into this server\'s own child');
    t.true(logs.some((l) => /not injecting into a child of this server/.test(l)), logs.join('\n'));
  } finally {
    const sum = await s.stop();
    t.is(sum.openAtStop, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the launcher on its own ----

/**
 * A shell that prints "ready PID", then on `sig` prints "got-SIG" and exits with `code`. It waits in the `wait`
 * builtin, which a trapped signal interrupts (a blocking `read` would miss one that lands just before it starts).
 */
const trapping = (sig: string, code: number): string =>
  `trap 'kill $! 2>/dev/null; echo got-${sig}; exit ${code}' ${sig}; echo "ready $$"; while :; do sleep 5 & wait $!; done`;

/** Resolves with the first stdout match of `re` (rejects when the process exits first). */
function waitLine(p: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => { out += d.toString(); const m = re.exec(out); if (m) { p.stdout!.off('data', onData); resolve(m); } };
    p.stdout!.on('data', onData);
    p.on('exit', () => reject(new Error(`exited before ${re}: ${out}`)));
  });
}
/** Gone: no such pid, or a zombie (it closes its files before it is one: poll for it). */
const isGone = (pid: number): boolean => { try { return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'latin1')); } catch { return true; } };
const gone = (pid: number): Promise<boolean> => until(`pid ${pid} gone`, async () => isGone(pid), (g) => g, 5_000).catch(() => false);

maybe(`run SIGKILLed: its command gets SIGTERM from the launcher and nothing of it keeps running${skipWhy}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-static-'));
  const mnt = path.join(dir, 'mnt');
  try {
    const p = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'run', '--transport', 'fuse', '--mount-dir', mnt, '--', 'sh', '-c', trapping('TERM', 0)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const done = collect(p, 20_000);
    const cmd = Number((await waitLine(p, /ready (\d+)/))[1]);
    p.kill('SIGKILL');
    const r = await done; // stdout closes once the launcher and the command are gone
    t.regex(r.stdout, /got-TERM/, r.stderr);
    t.true(await gone(cmd), `pid ${cmd} still running`);
  } finally {
    await recoverDeadMount(mnt, 'mount dir').catch(() => undefined); // the killed server's mount
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

maybeLauncher('launcher: relays the exit code, a death by signal and an exec failure', async (t) => {
  const code = await collect(spawn(LAUNCHER!, ['sh', '-c', 'exit 7']), 10_000);
  t.is(code.code, 7);
  const sig = await collect(spawn(LAUNCHER!, ['sh', '-c', 'kill -TERM $$']), 10_000);
  t.is(sig.signal, 'SIGTERM');
  const missing = await collect(spawn(LAUNCHER!, ['/nonexistent/virtgpu-emu-cmd']), 10_000);
  t.is(missing.code, 127);
  t.regex(missing.stderr, /cannot run \/nonexistent\/virtgpu-emu-cmd: No such file or directory/);
});

maybeLauncher('launcher: a signal it gets reaches the command', async (t) => {
  const p = spawn(LAUNCHER!, ['sh', '-c', trapping('INT', 3)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(p, 10_000);
  await waitLine(p, /ready \d+/);
  p.kill('SIGINT');
  const r = await done;
  t.is(r.code, 3);
  t.regex(r.stdout, /got-INT/);
});

maybeLauncher('launcher: its parent\'s death sends the command SIGTERM; its own SIGKILL takes the command along', async (t) => {
  // The outer launcher stands for the server: killing it leaves the inner one without its parent.
  const p = spawn(LAUNCHER!, [LAUNCHER!, 'sh', '-c', trapping('TERM', 0)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const done = collect(p, 10_000);
  const cmd = Number((await waitLine(p, /ready (\d+)/))[1]);
  p.kill('SIGKILL');
  const r = await done; // the stdout pipe closes once the inner launcher and the command are gone
  t.regex(r.stdout, /got-TERM/, r.stderr);
  t.true(await gone(cmd), `pid ${cmd} still running`);

  const q = spawn(LAUNCHER!, ['sh', '-c', 'echo "ready $$"; read x'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const qDone = collect(q, 10_000);
  const cmd2 = Number((await waitLine(q, /ready (\d+)/))[1]);
  q.kill('SIGKILL');
  const r2 = await qDone; // the command (blocked reading our open stdin) dies with the launcher, or this times out
  t.notRegex(r2.stderr, /killed after/, 'the command outlived its SIGKILLed launcher');
  t.true(await gone(cmd2), `pid ${cmd2} still running`);
});
