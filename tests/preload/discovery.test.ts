// Discovery through the preload library (uffd/preload/discovery.c): an unmodified libdrm client
// (tests/c/bin/discover) finds the FUSE-served node with drmGetDevices2 as a virtio-gpu on PCI (1af4:1050) with
// render node 226:128, asks drmGetDevice2 / drmGetDeviceNameFromFd2 / drmGetNodeTypeFromFd about its fd, sees a
// character device 226:128 through every stat variant, and does a GETPARAM through the fd. The same client run
// without the preload finds nothing (so the test can fail). Skipped with the transport probe's reason where FUSE
// cannot be mounted.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { collect, parseTap, tail, type Done } from '../helpers/clients';

const ROOT = path.resolve(__dirname, '../../..');
const DISCOVER = path.join(ROOT, 'tests/c/bin/discover');
/** The checks discover makes, one result line each, in order. */
const CHECKS = ['drmGetDevices2', 'open', 'drmGetDevice2', 'drmGetDeviceNameFromFd2', 'drmGetNodeTypeFromFd', 'stat-render-node',
  'stat-served-path', 'lstat', 'fstat', 'fstatat', 'fstatat-empty-path', '__xstat', '__lxstat', '__fxstat', '__fxstatat', 'statx', 'others-untouched', 'getparam'];
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const fuse = probeFuse();
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;
const maybe = fuse.ok ? test : test.skip;

async function runUnder(cmd: string[]): Promise<Done> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-disc-'));
  try {
    return await collect(spawn(process.execPath, [MAIN, 'run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

maybe(`virtgpu-emu run -- discover: libdrm finds the node as a virtio-gpu on PCI and every stat says 226:128${skipWhy}`, async (t) => {
  const r = await runUnder([DISCOVER]);
  const tap = parseTap(r.stdout);
  t.log(tail(r.stdout, 3));
  for (const name of CHECKS) {
    const l = tap.get(name);
    t.true(l?.ok, l ? `${name}: ${l.detail}` : `no result line for ${name}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
  }
  t.is(r.code, 0, tail(r.stderr));
  t.regex(tap.get('drmGetDevices2')?.detail ?? '', /^1 device\(s\); last: PCI 0000:00:02\.0 1af4:1050 rev ff, \/dev\/dri\/renderD128$/);
  t.regex(r.stderr, /virtgpu-emu: stopped \(stop\): clients=1 ioctls=1 /, 'the GETPARAM reached the server');
});

maybe(`without the preload library the same client finds no device${skipWhy}`, async (t) => {
  const r = await runUnder(['env', '-u', 'LD_PRELOAD', DISCOVER]);
  const l = parseTap(r.stdout).get('drmGetDevices2');
  t.false(l?.ok ?? true, `drmGetDevices2 must fail without the preload: ${l?.detail ?? tail(r.stdout)}`);
  t.is(r.code, 1);
});
