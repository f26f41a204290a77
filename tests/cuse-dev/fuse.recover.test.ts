// Start-up after a killed server: the dead FUSE mounts a SIGKILLed `serve` leaves at its mount dir and bind target
// are detached by the next `serve` of the same command, which then serves; a live server's mounts, and mounts that
// are not ours, are never touched. Scratch paths only (never /dev/dri): --path exercises the bind-target recovery.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { FUSE_FSTYPE, readMountInfo, recoverDeadMount, topMount } from '../../cuse-dev/transport/mounts';
import { killServe, startServe } from '../helpers/serve-process';

const CLIENT = path.resolve(__dirname, '../../../tests/cuse-dev/helpers/drm_client.py');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const why = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

const ours = (p: string): boolean => topMount(p)?.fstype === FUSE_FSTYPE;
/** One VERSION + GETPARAM round trip from another process. */
function clientWorks(node: string): string {
  const r = spawnSync('python3', [CLIENT, node], { encoding: 'utf8', timeout: 30000 });
  return r.status === 0 && JSON.parse(r.stdout).name === 'virtio_gpu' ? 'ok' : `client failed (${r.status}): ${r.stderr}`;
}

test('mountinfo: fields after the optional ones, octal escapes in paths', (t) => {
  const text = [
    '36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - fuse.virtgpu-emu virtgpu-emu rw,user_id=0',
    '37 35 0:40 / /run/x rw - tmpfs tmpfs rw',
  ].join('\n');
  t.deepEqual(readMountInfo(text), [
    { dev: '98:0', mountPoint: '/mnt/a b', fstype: 'fuse.virtgpu-emu', source: 'virtgpu-emu' },
    { dev: '0:40', mountPoint: '/run/x', fstype: 'tmpfs', source: 'tmpfs' },
  ]);
});

for (const withPath of [false, true]) {
  maybe(`SIGKILLed serve${withPath ? ' --path P' : ''} --mount-dir D: the same command starts again at once and serves${why}`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-recover-'));
    const mnt = path.join(dir, 'mnt');
    const target = path.join(dir, 'dev', 'renderD130');
    const args = ['--transport', 'fuse', '--watch', 'none', '--mount-dir', mnt, ...(withPath ? ['--path', target, '--minor', '130'] : [])];
    const node = withPath ? target : path.join(mnt, 'dri/renderD128');
    try {
      const first = startServe(args);
      t.is(await first.ready, node);
      t.is(clientWorks(node), 'ok');
      await killServe(first, 'SIGKILL');
      // What the killed server left: its mounts, dead.
      t.true(ours(mnt));
      if (withPath) t.true(ours(target));
      t.throws(() => fs.statfsSync(mnt), { code: 'ENOTCONN' }); // (stat may still answer from the attribute cache)

      const second = startServe(args);
      t.is(await second.ready, node, second.stderr());
      t.regex(second.stderr(), /detached the dead mount of a killed server: mount dir /);
      if (withPath) t.regex(second.stderr(), /detached the dead mount of a killed server: bind target /);
      t.is(clientWorks(node), 'ok');
      // Each path carries exactly one mount of ours again: the dead ones were detached, not stacked under.
      const table = readMountInfo();
      t.is(table.filter((m) => m.mountPoint === mnt).length, 1);
      if (withPath) t.is(table.filter((m) => m.mountPoint === target).length, 1);
      const r = await killServe(second, 'SIGTERM');
      t.is(r.code, 0, second.stderr());
      t.false(readMountInfo().some((m) => m.mountPoint === mnt || m.mountPoint === target));
    } finally {
      for (const p of [target, mnt]) if (ours(p)) spawnSync('umount', ['-l', '-c', p]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

maybe(`a live (or stopped) server's mount dir and --path are refused with a clear message, and its mounts stay${why}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-recover-'));
  const mnt = path.join(dir, 'mnt');
  const target = path.join(dir, 'dev', 'renderD131');
  const live = startServe(['--transport', 'fuse', '--watch', 'none', '--mount-dir', mnt, '--path', target, '--minor', '131']);
  try {
    t.is(await live.ready, target);
    const sameDir = spawnSync(process.execPath, [path.resolve(__dirname, '../../cli/main.js'), 'serve', '--transport', 'fuse', '--watch', 'none', '--mount-dir', mnt], { encoding: 'utf8', timeout: 15000 });
    t.is(sameDir.status, 1);
    t.regex(sameDir.stderr, /mount dir .* is served by another running virtgpu-emu: stop it first/);
    const samePath = spawnSync(process.execPath, [path.resolve(__dirname, '../../cli/main.js'), 'serve', '--transport', 'fuse', '--watch', 'none', '--mount-dir', path.join(dir, 'mnt2'), '--path', target], { encoding: 'utf8', timeout: 15000 });
    t.is(samePath.status, 1);
    t.regex(samePath.stderr, /bind target .* is served by another running virtgpu-emu: stop it first/);
    t.false(fs.existsSync(path.join(dir, 'mnt2')), 'refused before mounting anything');
    t.is(clientWorks(target), 'ok', 'the live server still serves');
    // A server that does not answer (stopped) is not dead either: refused in bounded time, its mount kept.
    live.p.kill('SIGSTOP');
    const t0 = Date.now();
    const stopped = spawnSync(process.execPath, [path.resolve(__dirname, '../../cli/main.js'), 'serve', '--transport', 'fuse', '--watch', 'none', '--mount-dir', mnt], { encoding: 'utf8', timeout: 15000 });
    live.p.kill('SIGCONT');
    t.is(stopped.status, 1, stopped.stderr);
    t.regex(stopped.stderr, /mount dir .* is a virtgpu-emu mount whose server does not answer \(stopped\?\)/);
    t.true(Date.now() - t0 < 14000, 'the refusing process exits although its probe of the stopped server never returned');
    t.is(clientWorks(target), 'ok', 'the resumed server still serves');
  } finally {
    t.is((await killServe(live, 'SIGTERM')).code, 0);
    for (const p of [target, mnt]) if (ours(p)) spawnSync('umount', ['-l', '-c', p]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

maybe(`recovery leaves a mount that is not ours alone, and detaches only the dead one of ours stacked on it${why}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-recover-'));
  const other = path.join(dir, 'tmpfs');
  fs.mkdirSync(other);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'virtgpu-emu', other]); // same source name, other type
  try {
    t.is(m.status, 0, String(m.stderr));
    t.deepEqual(await recoverDeadMount(other, 'mount dir'), []);
    t.is(topMount(other)?.fstype, 'tmpfs');
    t.deepEqual(await recoverDeadMount(path.join(dir, 'nothing-here'), 'bind target'), []);
    // A dead mount of ours on top of the tmpfs: only ours goes, the tmpfs under it stays.
    const mnt = other;
    const s = startServe(['--transport', 'fuse', '--watch', 'none', '--mount-dir', mnt]);
    t.is(await s.ready, path.join(mnt, 'dri/renderD128'));
    await killServe(s, 'SIGKILL');
    t.true(ours(mnt));
    const d = await recoverDeadMount(mnt, 'mount dir');
    t.is(d.length, 1);
    t.is(topMount(mnt)?.fstype, 'tmpfs');
  } finally {
    spawnSync('umount', ['-l', '-c', other]);
    spawnSync('umount', ['-l', '-c', other]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

maybe(`the default mount dir of a SIGKILLed server (/run/virtgpu-emu/<pid>) is swept by the next start, whatever its mount dir${why}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-recover-'));
  const killed = startServe(['--transport', 'fuse', '--watch', 'none']);
  const node = await killed.ready;
  const left = path.dirname(path.dirname(node)); // <default parent>/<pid>
  t.true(ours(left));
  await killServe(killed, 'SIGKILL');
  try {
    const next = startServe(['--transport', 'fuse', '--watch', 'none', '--mount-dir', path.join(dir, 'mnt')]);
    t.truthy(await next.ready);
    // Every start sweeps: this one, or another test file's server started beside it in the suite, may be the one that
    // finds the dead mount first (and may still be removing its directory), so the outcome is what is asserted.
    const gone = (): boolean => !ours(left) && !fs.existsSync(left);
    for (let i = 0; i < 100 && !gone(); i++) await new Promise((r) => setTimeout(r, 50));
    t.false(ours(left), 'the dead mount is detached once a later server has started');
    t.false(fs.existsSync(left), 'its empty directory is removed');
    const mine = new RegExp(`detached the dead mount of a killed server: mount dir ${left} `).test(next.stderr());
    t.log(mine ? 'swept by this start' : 'swept by another server started meanwhile');
    const r = await killServe(next, 'SIGTERM', 20_000);
    t.is(r.code, 0, `${JSON.stringify(r)}\n${next.stderr()}`);
  } finally {
    for (const p of [left, path.join(dir, 'mnt')]) if (ours(p)) spawnSync('umount', ['-l', '-c', p]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
