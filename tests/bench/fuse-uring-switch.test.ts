// bench/lib/fuse-uring-switch.ts on a stand-in file (never the host's real switch): the value it had before comes back
// when the callback returns, throws, or the process is signalled meanwhile.
import test from 'ava';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { withFuseUring } from '../../bench/lib/fuse-uring-switch';

function standIn(value: string): string {
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-uring-switch-')), 'enable_uring');
  fs.writeFileSync(f, `${value}\n`);
  return f;
}

test.serial('on during the callback, the previous value back after it returns', async (t) => {
  const f = standIn('N');
  const before = { term: process.listenerCount('SIGTERM'), exit: process.listenerCount('exit') };
  const seen = await withFuseUring(async () => {
    t.is(process.listenerCount('SIGTERM'), before.term + 1);
    return fs.readFileSync(f, 'utf8');
  }, f);
  t.is(seen, 'Y');
  t.is(fs.readFileSync(f, 'utf8'), 'N');
  t.deepEqual({ term: process.listenerCount('SIGTERM'), exit: process.listenerCount('exit') }, before, 'no handler left behind');
});

test.serial('restored when the callback throws; an already-on switch stays on', async (t) => {
  const off = standIn('N');
  await t.throwsAsync(withFuseUring(async () => { throw new Error('server did not start'); }, off), { message: 'server did not start' });
  t.is(fs.readFileSync(off, 'utf8'), 'N');
  const on = standIn('Y');
  await withFuseUring(async () => undefined, on);
  t.is(fs.readFileSync(on, 'utf8'), 'Y');
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`restored when the process gets ${sig} meanwhile, which then ends it as the signal would`, async (t) => {
    const f = standIn('N');
    const child = spawn(process.execPath, [path.join(__dirname, 'helpers', 'switch-child.js'), f], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => child.stdout!.once('data', () => res()));
    t.is(fs.readFileSync(f, 'utf8'), 'Y');
    child.kill(sig);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('exit', (c, s) => res([c, s])));
    t.is(signal, sig);
    t.is(code, null);
    t.is(fs.readFileSync(f, 'utf8'), 'N');
  });
}
