// The kernel's notifier worker deletes a fully unmapped userptr BO on its own, without another ioctl from the
// client. Over FUSE the serving thread is blocked in read(2); with a userfaultfd watcher its reader thread bumps an
// eventfd the loop also polls, so the BO is deleted while the client is idle. With the /proc checker alone nothing
// can tell the server, so the BO goes at the client's next ioctl (docs/semantics.md §5 "Ordering" makes that equivalent).
// A client started without the preload library gets its userfaultfd by ptrace injection at its first open.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { startServer } from '../../cli/serve';

const BIN = path.resolve(__dirname, '../../../tests/c/bin/async_unmap');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;

interface Snap { counts: { handles: number; files: number } }

async function scenario(watch: 'auto' | 'proc', preload = true, inject = true) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-wake-'));
  const s = await startServer({ transport: 'fuse', mountDir: path.join(dir, 'mnt'), watch, inject });
  // Not our child (sh is its parent): a server does not ptrace its own children (Node's child watcher reaps the stops).
  // (sh gives a background job /dev/null as stdin: pass ours on fd 3.)
  const child = spawn('/bin/sh', ['-c', `exec 3<&0; "${BIN}" <&3 3<&- & wait`], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...(preload ? s.clientEnv : {}), VIRTGPU_EMU_DEVICE: s.path } });
  let out = '';
  const seen = (word: string) => new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`client did not print "${word}": ${out}`)), 10_000);
    const check = () => { if (out.includes(word)) { clearTimeout(t); resolve(); } };
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); check(); });
    check();
  });
  try {
    await seen('unmapped');
    const alive = () => child.exitCode === null;
    let handles = -1;
    for (const deadline = Date.now() + 3000; Date.now() < deadline;) {
      handles = ((await s.snapshot()).counts as Snap['counts']).handles;
      if (handles === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return { handles, clientAlive: alive(), files: ((await s.snapshot()).counts as Snap['counts']).files };
  } finally {
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    await s.stop();
  }
}

maybe('uffd watcher: a full munmap deletes the BO while the client stays idle (the loop is woken by the event)', async (t) => {
  const r = await scenario('auto');
  t.true(r.clientAlive, 'the client issued no ioctl since its munmap');
  t.is(r.files, 1, 'its file is still open');
  t.is(r.handles, 0, 'the BO was deleted by the async wake-up');
});

maybe('/proc watcher alone: nothing wakes the server, the BO stays until the client\'s next ioctl', async (t) => {
  const r = await scenario('proc');
  t.true(r.clientAlive);
  t.is(r.handles, 1);
});

maybe('an unmodified client (no preload): its userfaultfd is injected with ptrace at open, so the munmap is seen at once', async (t) => {
  const r = await scenario('auto', false);
  t.true(r.clientAlive);
  t.is(r.handles, 0, 'deleted asynchronously: only a userfaultfd reports the munmap by itself');
});

maybe('--no-inject: the same unmodified client stays on the /proc checker (BO kept until its next ioctl)', async (t) => {
  const r = await scenario('auto', false, false);
  t.true(r.clientAlive);
  t.is(r.handles, 1);
});
