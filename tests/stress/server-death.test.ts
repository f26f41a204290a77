// Server death under clients blocked on it: libdrm C clients (tests/c/async_unmap -w, started with the uffd handoff
// environment `serve` prints) each register a userptr watched by their userfaultfd; the server is frozen with
// SIGSTOP and every client munmaps its range, which blocks in the kernel until the server reads the event (the
// client is in D state, as inside an MMU notifier). Then the server dies — SIGTERM (its stop path) or SIGKILL
// (nothing runs) — and:
// - every blocked munmap returns (the userfaultfds die with the server, or its stop releases them);
// - the same `serve` command starts again at once on the same mount dir and --path, and serves a new client;
// - a file held across the death answers ENODEV after a SIGTERM stop (unplugged device), ENOTCONN after a SIGKILL;
//   the old clients close and exit 0; nothing of ours stays mounted or running.
// Bounded: every wait has a deadline, each test stops by itself in well under a minute.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { FUSE_FSTYPE, readMountInfo } from '../../cuse-dev/transport/mounts';
import { findPreload } from '../../uffd/acquire';
import { killServe, startServe, type ServeProcess } from '../helpers/serve-process';

const ROOT = path.resolve(__dirname, '../../..');
const ASYNC_UNMAP = path.join(ROOT, 'tests/c/bin/async_unmap');
/** Holds the node open and issues one more GETPARAM on a newline, printing its errno (tests/cuse-dev/helpers). */
const HOLDER = path.join(ROOT, 'tests/cuse-dev/helpers/drm_client.py');
const CLIENTS = 4;
const fuse = probeFuse();
const skip = !fuse.ok ? fuse.reason : !fs.existsSync(ASYNC_UNMAP) ? 'tests/c/bin/async_unmap not built (make -C tests/c)' : !findPreload() ? 'preload library not built (npm install)' : '';
const maybe = skip ? test.serial.skip : test.serial;

function procState(pid: number): string {
  try { const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[0]!; } catch { return ''; }
}
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(what: string, pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(20);
  }
}

interface Client { p: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }
function startClient(node: string, env: Record<string, string>, wait: boolean): Client {
  const p = spawn(ASYNC_UNMAP, [...(wait ? ['-w'] : []), node], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env, VIRTGPU_EMU_DEVICE: node } });
  let out = '', err = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  p.stdin!.on('error', () => undefined);
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  return { p, out: () => out, err: () => err, exited };
}

/** One of ours still mounted at a path of this test? (A dead one would block the restart.) */
const oursAt = (paths: string[]): string[] => readMountInfo().filter((m) => m.fstype === FUSE_FSTYPE && paths.includes(m.mountPoint)).map((m) => m.mountPoint);

async function serverDeath(t: ExecutionContext, sig: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  t.timeout(90_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-death-'));
  const mnt = path.join(dir, 'mnt');
  const target = path.join(dir, 'dev', 'renderD140');
  const args = ['--transport', 'fuse', '--watch', 'uffd', '--mount-dir', mnt, '--path', target, '--minor', '140'];
  const clients: Client[] = [];
  const servers: ServeProcess[] = [];
  let holderKill = (): void => undefined;
  try {
    const first = startServe(args);
    servers.push(first);
    t.is(await first.ready, target);
    const env = await first.clientEnv();
    t.truthy(env.VIRTGPU_EMU_UFFD_SOCK, `serve printed the handoff environment\n${first.stderr()}`);
    for (let i = 0; i < CLIENTS; i++) clients.push(startClient(target, env, true));
    const holder = spawn('python3', [HOLDER, target, 'hold'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let held = '';
    holder.stdout!.on('data', (d: Buffer) => { held += d.toString(); });
    const holderExited = new Promise<number | null>((r) => holder.on('exit', (c) => r(c)));
    holderKill = () => { if (holder.exitCode === null) holder.kill('SIGKILL'); };
    await until('the holder opened the node', () => held.includes('\n') || holder.exitCode !== null, 20_000);
    await until('every client registered its userptr', () => clients.every((c) => /^bo \d+ \d+$/m.test(c.out()) || c.p.exitCode !== null), 20_000);
    for (const c of clients) t.regex(c.out(), /^bo \d+ \d+$/m, c.err());
    for (const c of clients) t.notRegex(first.stderr(), new RegExp(`pid ${c.p.pid}: no userfaultfd`), 'each client handed its userfaultfd over: its munmap is reported synchronously');

    // Freeze the server, then let every client munmap its watched range: each blocks until the event is read.
    first.p.kill('SIGSTOP');
    await until('server stopped', () => procState(first.p.pid!) === 'T', 5000);
    for (const c of clients) c.p.stdin!.write('\n');
    await until('every client blocked in munmap (D state)', () => clients.every((c) => procState(c.p.pid!) === 'D'), 5000);
    await sleep(200);
    for (const c of clients) t.notRegex(c.out(), /unmapped/, 'munmap waits for the server while it is stopped');

    // Death. SIGTERM is delivered when the process runs again: continue it so it stops through its own path.
    first.p.kill(sig);
    if (sig === 'SIGTERM') first.p.kill('SIGCONT');
    const ended = await Promise.race([first.exited, sleep(20_000).then(() => ({ code: null, signal: 'timeout' }))]);
    if (sig === 'SIGTERM') {
      t.is(ended.code, 0, first.stderr());
      t.regex(first.stdout(), new RegExp(`virtgpu-emu: stopped \\(stop\\): clients=${CLIENTS + 1} .* files-open-at-stop=${CLIENTS + 1}`));
    } else t.is(ended.signal, 'SIGKILL');
    await until('every blocked munmap returned', () => clients.every((c) => /unmapped/.test(c.out())), 10_000);
    t.pass(`${CLIENTS} munmaps released after ${sig}`);

    // The same command again, at once.
    const second = startServe(args);
    servers.push(second);
    t.is(await second.ready, target, second.stderr());
    if (sig === 'SIGKILL') t.regex(second.stderr(), /detached the dead mount of a killed server: mount dir .*\n.*detached the dead mount of a killed server: bind target /);
    else t.notRegex(second.stderr(), /detached the dead mount/, 'a SIGTERM stop leaves nothing to recover');
    t.deepEqual(oursAt([mnt, target]).sort(), [mnt, target].sort(), 'one live mount at each path, none stacked');
    const fresh = startClient(target, await second.clientEnv(), false);
    await until('the new client created and unmapped its userptr', () => /unmapped/.test(fresh.out()) || fresh.p.exitCode !== null, 15_000);
    t.regex(fresh.out(), /^bo \d+ \d+\nunmapped$/m, fresh.err());
    fresh.p.stdin!.end();
    t.is(await fresh.exited, 0, fresh.err());

    // A later call on a file held across the death: ENODEV after a stop (unplugged device), ENOTCONN after SIGKILL.
    holder.stdin!.write('\n');
    await until('the holder\'s call after the death', () => held.split('\n').length >= 4 || holder.exitCode !== null, 10_000);
    const [, after, closed] = held.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.deepEqual(after, { after: sig === 'SIGTERM' ? os.constants.errno.ENODEV : os.constants.errno.ENOTCONN });
    if (sig === 'SIGTERM') t.deepEqual(closed, { close: 'ok' });
    t.is(await holderExited, 0);

    // The old clients close their files on the dead (or unplugged) connection and exit normally.
    for (const c of clients) c.p.stdin!.end();
    for (const c of clients) t.is(await Promise.race([c.exited, sleep(10_000).then(() => 'hung')]), 0, c.err());
    if (sig === 'SIGTERM') {
      const answerer = Number(/answerer pid (\d+)/.exec(first.stderr())?.[1]);
      t.true(answerer > 0, first.stderr());
      await until('the unplugged-device answerer exited after the last close', () => !alive(answerer), 5000).catch((e: Error) => t.fail(e.message));
    }

    const r = await killServe(second, 'SIGTERM', 20_000);
    t.is(r.code, 0, second.stderr());
    t.regex(second.stdout(), /virtgpu-emu: stopped \(stop\): clients=1 /);
    t.deepEqual(oursAt([mnt, target]), [], 'nothing of ours left mounted');
  } finally {
    for (const c of clients) if (c.p.exitCode === null) c.p.kill('SIGKILL');
    holderKill();
    for (const s of servers) { s.p.kill('SIGCONT'); await killServe(s, 'SIGKILL', 5000); }
    for (const p of [target, mnt]) if (oursAt([p]).length) await new Promise((r) => spawn('umount', ['-l', '-c', p]).on('close', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

maybe(`server SIGTERMed while ${CLIENTS} clients are blocked in munmap on watched ranges: munmaps return, old files answer ENODEV, the same serve restarts at once${skip ? ` (skipped: ${skip})` : ''}`, (t) => serverDeath(t, 'SIGTERM'));
maybe(`server SIGKILLed while ${CLIENTS} clients are blocked in munmap on watched ranges: munmaps return, the same serve restarts at once on the dead mounts${skip ? ` (skipped: ${skip})` : ''}`, (t) => serverDeath(t, 'SIGKILL'));
