// Real FUSE mount: the FUSE transport (worker + /dev/fuse + mount(8)) serving dri/renderD128, driven by a Python
// client's ioctls (Node has no ioctl). Skipped with doctor's reason where FUSE cannot be mounted.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { startFuse } from '../../cuse-dev/transport/fuse';
import type { RunningServer } from '../../cuse-dev/transport/common';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';

const CLIENT = path.resolve(__dirname, '../../../tests/cuse-dev/helpers/drm_client.py');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;

interface ClientOut { pid: number; version_rc: number; version: number[]; name: string; name_len: number; desc: string; features3d: number[]; capsets: number[] }

function client(node: string, hold = false) {
  const p = spawn('python3', [CLIENT, node, ...(hold ? ['hold'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  const waiters: (() => void)[] = [];
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); waiters.splice(0).forEach((w) => w()); }
  });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => { waiters.splice(0).forEach((w) => w()); r(c); }));
  const line = async (n: number): Promise<string> => {
    while (lines.length <= n) {
      if (p.exitCode !== null) throw new Error(`client exited ${p.exitCode}: ${err}`);
      await new Promise<void>((r) => waiters.push(r));
    }
    return lines[n]!;
  };
  return { p, line, exited, stderr: () => err };
}

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const files = async (s: RunningServer): Promise<number> => ((await s.snapshot()).counts as { files: number }).files;
const mounted = (dir: string): boolean => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
const fuseFds = (): number => fs.readdirSync('/proc/self/fd').filter((f) => { try { return fs.readlinkSync(`/proc/self/fd/${f}`) === '/dev/fuse'; } catch { return false; } }).length;

maybe(`FUSE mount: VERSION + GETPARAM round trip from another process, RELEASE closes the file, clean stop${fuse.ok ? '' : ` (skipped: ${fuse.reason})`}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-fuse-'));
  const mnt = path.join(dir, 'mnt');
  const fdsBefore = fuseFds();
  const logs: string[] = [];
  const s = await startFuse({ workerEntry: SERVE_WORKER_ENTRY, mountDir: mnt, watch: 'none', log: (m) => logs.push(m) });
  try {
    t.is(s.transport, 'fuse');
    t.is(s.path, path.join(mnt, 'dri/renderD128'));
    const st = fs.statSync(s.path);
    t.is(st.mode, 0o100666);
    t.deepEqual(fs.readdirSync(path.join(mnt, 'dri')), ['renderD128']);

    const c = client(s.path, true);
    const out = JSON.parse(await c.line(0)) as ClientOut;
    t.is(out.version_rc, 0);
    t.deepEqual(out.version, [0, 1, 0]);
    t.is(out.name, 'virtio_gpu');
    t.is(out.name_len, 10);
    t.is(out.desc, 'virtio GPU');
    t.deepEqual(out.features3d, [0, 1]);
    t.is(out.capsets[0], 0);
    t.true(out.capsets[1]! > 0);
    // open while the client holds it, keyed by the client's thread-group id (the GETPARAMs came from another thread)
    const snap = await s.snapshot();
    t.is((snap.counts as { files: number }).files, 1);
    t.is(snap.openFiles, 1);
    t.true(JSON.stringify(snap.snapshot).includes(`${out.pid}`));
    c.p.stdin.write('\n');
    t.deepEqual(JSON.parse(await c.line(1)), { after: 'ok' });
    t.is(await c.exited, 0);
    // RELEASE is asynchronous in the kernel: wait for the snapshot rather than asserting at once
    await until('file closed', () => files(s), (n) => n === 0);
  } finally {
    const sum = await s.stop();
    t.is(sum.reason, 'stop');
    t.is(sum.clients, 1);
    t.is(sum.ioctls, 4);
    t.is(sum.opens, 1);
    t.is(sum.releases, 1);
    t.is(sum.openAtStop, 0);
  }
  t.false(mounted(mnt), 'unmounted');
  t.false(fs.existsSync(mnt), 'mount dir removed');
  t.is(fuseFds(), fdsBefore, '/dev/fuse fd closed');
  t.false(s.stuck(), 'worker ended');
  t.deepEqual(logs, []);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Children of this process running the unplugged-device answerer (cuse-dev/transport/unplugged.ts). */
const answerers = (): number[] => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try {
    const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === process.pid && fs.readFileSync(`/proc/${d}/cmdline`, 'latin1').includes('unplugged.js');
  } catch { return false; }
}).map(Number);

maybe(`FUSE stop while a client still holds the node: loop ends, the client's later calls get ENODEV (an unplugged device), its close succeeds, nothing left mounted or running${fuse.ok ? '' : ` (skipped: ${fuse.reason})`}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-fuse-'));
  const mnt = path.join(dir, 'mnt');
  const fdsBefore = fuseFds();
  const s = await startFuse({ workerEntry: SERVE_WORKER_ENTRY, mountDir: mnt, watch: 'none' });
  const c = client(s.path, true);
  try {
    JSON.parse(await c.line(0));
    const sum = await s.stop();
    t.is(sum.openAtStop, 1);
    t.is(sum.clients, 1);
    t.false(mounted(mnt), 'detached at stop: no new open can reach the node');
    t.is(answerers().length, 1, 'one process answers the files still open');
    c.p.stdin.write('\n');
    t.deepEqual(JSON.parse(await c.line(1)), { after: 19 }); // ENODEV, as drm_ioctl answers after drm_dev_unplug
    t.deepEqual(JSON.parse(await c.line(2)), { close: 'ok' });
    t.is(await c.exited, 0);
    // The last close destroys the detached mount: the answerer's read ends and it exits.
    await until('answerer exited', async () => answerers().length, (n) => n === 0);
  } finally {
    await s.stop();
    c.p.kill();
  }
  t.false(mounted(mnt));
  t.false(s.stuck());
  t.is(fuseFds(), fdsBefore, 'our /dev/fuse fd closed');
  fs.rmSync(dir, { recursive: true, force: true });
});

maybe('FUSE --path: the served file is bind-mounted where asked (a file created for it), and both go at stop', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-bind-'));
  const target = path.join(dir, 'dev', 'dri', 'renderD200');
  const s = await startFuse({ workerEntry: SERVE_WORKER_ENTRY, mountDir: path.join(dir, 'mnt'), path: target, minor: 200, watch: 'none' });
  try {
    t.is(s.path, target);
    t.true(mounted(target));
    const c = client(target);
    const out = JSON.parse(await c.line(0)) as ClientOut;
    t.is(out.name, 'virtio_gpu', 'ioctls through the bind mount reach the server');
    t.is(await c.exited, 0);
  } finally {
    await s.stop();
  }
  t.false(mounted(target));
  t.false(fs.existsSync(target), 'the placeholder file created for the bind is removed');
});
