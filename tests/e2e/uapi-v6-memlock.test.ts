// v6's memory-lock rules seen by a real process over the FUSE node (`virtgpu-emu run --uapi v6`): the client drops
// CAP_IPC_LOCK (setpriv, from the inheritable and bounding sets, so root's exec does not get it back) and sets its
// RLIMIT_MEMLOCK (ulimit -l, KiB); tests/c/memlock_probe.c sends v6's 64-byte creates (HINT_USERPTR). Expected
// results written from docs/uapi-revisions.md: no limit and no capability → EPERM; pins over the limit → ENOMEM,
// given back at GEM_CLOSE; more than INT_MAX pages → E2BIG; with CAP_IPC_LOCK the limit does not apply.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { collect } from '../helpers/clients';
import { readMemlockLimits } from '../../uffd/proc-limits';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const PROBE = path.join(ROOT, 'tests/c/bin/memlock_probe');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const DROP = ['setpriv', '--inh-caps', '-ipc_lock', '--bounding-set', '-ipc_lock'];

async function probe(wrap: string[], limitKiB: number, steps: string[]): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-memlock-'));
  try {
    const cmd = [...wrap, 'sh', '-c', `ulimit -l ${limitKiB} && exec "$0" "$@"`, PROBE, ...steps];
    const p = spawn(process.execPath, [MAIN, 'run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--uapi', 'v6', '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    const d = await collect(p, 30_000);
    if (d.code !== 0) throw new Error(`exit ${d.code}: ${d.stderr}`);
    return d.stdout.trim().split('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

maybe('v6: without CAP_IPC_LOCK and with RLIMIT_MEMLOCK 0 every userptr create is EPERM (before E2BIG)', async (t) => {
  t.deepEqual(await probe(DROP, 0, ['c1', 'c8', 'E']), ['c1 EPERM', 'c8 EPERM', 'E EPERM']);
});

maybe('v6: without CAP_IPC_LOCK, pins over RLIMIT_MEMLOCK (64 KiB = 16 pages) → ENOMEM, freed at GEM_CLOSE; E2BIG', async (t) => {
  t.deepEqual(await probe(DROP, 64, ['c8', 'c8', 'c1', 'x0', 'c8', 'c1', 'E']), ['c8 0', 'c8 0', 'c1 ENOMEM', 'x0 0', 'c8 0', 'c1 ENOMEM', 'E E2BIG']);
});

const haveCap = readMemlockLimits(process.pid)?.capIpcLock === true;
(haveCap ? maybe : test.serial.skip)(`v6: with CAP_IPC_LOCK (root as it is) RLIMIT_MEMLOCK 0 does not limit${haveCap ? '' : ' (skipped: this process has no CAP_IPC_LOCK)'}`, async (t) => {
  t.deepEqual(await probe([], 0, ['c8', 'c8', 'c8']), ['c8 0', 'c8 0', 'c8 0']);
});
