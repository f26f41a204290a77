// The CLI as a user runs it: serve prints exactly one ready line and a summary on SIGINT; run exits with CMD's status.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { parseServe, UsageError } from '../../cli/options';

const MAIN = path.join(__dirname, '../../cli/main.js');
const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const READY = /^virtgpu-emu: serving (\S+) \(transport=(cuse|fuse), watcher=(\S+), uapi=(\S+), mode=(notifier|pin)\)$/;

test('option parsing: values, = form, octal mode bits, usage errors', (t) => {
  const { opts, rest } = parseServe(['--transport', 'fuse', '--mode=pin', '--mode-bits', '0660', '--minor', '129', '--bind', '--', 'echo', 'hi']);
  t.like(opts, { transport: 'fuse', mode: 'pin', modeBits: 0o660, minor: 129, bind: true });
  t.deepEqual(rest, ['echo', 'hi']);
  t.throws(() => parseServe(['--transport', 'nbd']), { instanceOf: UsageError });
  t.throws(() => parseServe(['--mode-bits', '999']), { instanceOf: UsageError });
  t.throws(() => parseServe(['--bogus']), { instanceOf: UsageError });
  t.throws(() => parseServe(['--path']), { instanceOf: UsageError });
});

test('--uapi: a revision name; an unknown one lists the valid ones; --mode notifier needs a revision with a notifier', (t) => {
  t.like(parseServe(['--uapi', 'v6']).opts, { uapi: 'v6' });
  t.like(parseServe(['--uapi=libhsakmt-72', '--mode', 'pin']).opts, { uapi: 'libhsakmt-72', mode: 'pin' });
  t.like(parseServe(['--uapi', 'v3', '--mode', 'pin']).opts, { uapi: 'v3', mode: 'pin' });
  const e = t.throws(() => parseServe(['--uapi', 'v7']), { instanceOf: UsageError });
  t.regex(e!.message, /v1\|v2\|v3\|v4\|v5\|v6\|mainline\|libhsakmt-72/);
  t.throws(() => parseServe(['--uapi', 'v3', '--mode', 'notifier']), { instanceOf: UsageError, message: /no MMU notifier/ });
  const r = spawnSync(process.execPath, [MAIN, 'serve', '--uapi', 'v7'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /--uapi must be one of v1\|v2\|v3\|v4\|v5\|v6\|mainline\|libhsakmt-72, got "v7"/);
});

test('doctor prints the transport and watcher tables', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'doctor'], { encoding: 'utf8' });
  t.regex(r.stdout, /^transport\s+ok\s+reason$/m);
  t.regex(r.stdout, /^cuse\s+(yes|no)\s+\S/m);
  t.regex(r.stdout, /^fuse\s+(yes|no)\s+\S/m);
  t.regex(r.stdout, /^watcher\s+ok\s+reason$/m);
  t.regex(r.stdout, /serve --transport auto would use: /);
  t.regex(r.stdout, /^uapi\s+create_blob\s+what it is$/m);
  t.regex(r.stdout, /^v1\s+64 bytes\s+.*\[default\]$/m);
  t.regex(r.stdout, /^mainline\s+56 bytes\s/m);
  t.regex(r.stdout, /^libhsakmt-72\s+72 bytes\s+not a posted kernel/m);
});

test('unknown command → usage on stderr, exit 2', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'frobnicate'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /unknown command frobnicate/);
});

maybe('serve: exactly one ready line, SIGINT stops cleanly with a one-line summary', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-cli-'));
  const mnt = path.join(dir, 'm');
  const p = spawn(process.execPath, [MAIN, 'serve', '--transport', 'fuse', '--mount-dir', mnt, '--trace', path.join(dir, 't.jsonl')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  const end = Date.now() + 10000;
  while (!out.includes('\n') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const m = READY.exec(out.split('\n')[0]!);
  t.truthy(m, out);
  t.is(m![1], path.join(mnt, 'dri/renderD128'));
  t.is(m![4], 'v1', 'the default uapi');
  t.true(fs.statSync(m![1]!).isFile());
  p.kill('SIGINT');
  t.is(await exited, 0);
  const lines = out.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[1]!, /^virtgpu-emu: stopped \(stop\): clients=0 ioctls=0 userptrs created=0 split=0 evicted=0 unmapped=0$/);
  t.false(fs.existsSync(mnt));
  t.regex(fs.readFileSync(path.join(dir, 't.jsonl'), 'utf8'), /"op":"INIT"/);
  fs.rmSync(dir, { recursive: true, force: true });
});

maybe('run -- CMD: CMD sees VIRTGPU_EMU_DEVICE, the server stops, exit status is CMD\'s', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-cli-'));
  const mnt = path.join(dir, 'm');
  const r = spawnSync(process.execPath, [MAIN, 'run', '--transport', 'fuse', '--mount-dir', mnt, '--uapi', 'v3', '--', 'sh', '-c', 'test -f "$VIRTGPU_EMU_DEVICE" && echo "dev=$VIRTGPU_EMU_DEVICE uapi=$VIRTGPU_EMU_UAPI mode=$VIRTGPU_EMU_MODE"; exit 7'], { encoding: 'utf8', timeout: 20000 });
  t.is(r.status, 7);
  t.is(r.stdout, `dev=${path.join(mnt, 'dri/renderD128')} uapi=v3 mode=pin\n`);
  t.regex(r.stderr, /\(transport=fuse, watcher=\S+, uapi=v3, mode=pin\)/);
  t.regex(r.stderr, /virtgpu-emu: serving .* \(transport=fuse/);
  t.regex(r.stderr, /virtgpu-emu: stopped \(stop\)/);
  t.false(fs.existsSync(mnt));
  fs.rmSync(dir, { recursive: true, force: true });
});
