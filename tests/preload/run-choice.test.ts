// `run` picks the preload transport for dynamically linked commands (cli/elf.ts reads PT_INTERP) and keeps CUSE/FUSE
// for static ones; `doctor` lists the preload transport.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { commandLinkage, elfLinkage } from '../../cli/elf';
import { probePreload } from '../../cuse-dev/transport/auto';

const MAIN = path.resolve(__dirname, '../../cli/main.js');

test('ELF headers: a PT_INTERP program header means dynamic; none static; anything else unknown', (t) => {
  t.is(elfLinkage(fs.readFileSync(process.execPath).subarray(0, 4096)), 'dynamic');
  t.is(elfLinkage(Buffer.from('#!/bin/sh\n')), 'unknown');
  // A minimal ELF64 header with one PT_LOAD program header and nothing else.
  const b = Buffer.alloc(64 + 56);
  b.writeUInt32LE(0x464c457f, 0); b[4] = 2; b[5] = 1;
  b.writeBigUInt64LE(64n, 0x20); b.writeUInt16LE(56, 0x36); b.writeUInt16LE(1, 0x38);
  b.writeUInt32LE(1, 64);
  t.is(elfLinkage(b), 'static');
  b.writeUInt32LE(3, 64);
  t.is(elfLinkage(b), 'dynamic');
});

test('commands: found in PATH, a #! script takes its interpreter\'s linkage, static busybox where installed', (t) => {
  t.is(commandLinkage('sh'), 'dynamic');
  t.is(commandLinkage('no-such-command-here'), 'unknown');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-elf-'));
  const script = path.join(dir, 's');
  fs.writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  t.is(commandLinkage(script), 'dynamic');
  fs.rmSync(dir, { recursive: true, force: true });
  if (fs.existsSync('/bin/busybox') && elfLinkage(fs.readFileSync('/bin/busybox').subarray(0, 4096)) === 'static') t.is(commandLinkage('/bin/busybox'), 'static');
});

(probePreload().ok ? test : test.skip)('run -- a dynamically linked command: the preload transport serves it the node (no --transport given)', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'run', '--', 'sh', '-c', 'echo "dev=$VIRTGPU_EMU_DEVICE sock=${VIRTGPU_EMU_SOCK:+set}"'], { encoding: 'utf8', timeout: 20000 });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'dev=/dev/dri/renderD128 sock=set\n');
  t.regex(r.stderr, /sh is linked dynamically: transport preload/);
  t.regex(r.stderr, /\(transport=preload, /);
});

test('doctor lists the preload transport with what it needs', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'doctor'], { encoding: 'utf8', timeout: 20000 });
  t.regex(r.stdout, /^preload\s+(yes|no)\s+/m);
});
