// Boots the CUSE VM once and checks the three things every e2e test relies on: /dev/cuse, node in the chroot,
// and a hand-written CUSE_INIT from Node creating a char device. Fails (never skips) when qemu/kernel are missing.
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lineLogger, repoRoot, runInVm } from '../../tools/vm/vm';


const GUEST_SCRIPT = [
  'echo "SMOKE cuse-dev $(stat -c \'%F %t:%T\' /dev/cuse 2>&1)"',
  'echo "SMOKE node $(node --version 2>&1)"',
  'node tests/vm/fixtures/cuse-smoke.js; echo "SMOKE cuse-roundtrip rc=$?"',
  'echo from-guest > "$VM_JOB_DIR/from-guest.txt"; echo "SMOKE job-write rc=$?"',
  'echo "SMOKE cwd $(pwd)"',
].join('\n');

test('VM boots once: /dev/cuse 10:203, node runs in the chroot, CUSE_INIT from Node creates /dev/virtgpu-smoke', async (t) => {
  t.timeout(330_000); // TCG is CPU-bound: room for a machine loaded by the rest of the suite
  const root = repoRoot();
  const r = await runInVm({
    command: GUEST_SCRIPT,
    cwd: root,
    timeoutMs: 300_000,
    keepJobDir: true,
    onOutput: lineLogger('[vm] '),
  });
  try {
    t.log(`accel=${r.accel} boot=${r.bootMs} ms total=${r.totalMs} ms`);
    const line = (key: string) => new RegExp(`^SMOKE ${key} (.*)$`, 'm').exec(r.output)?.[1];
    t.is(r.exitCode, 0, r.output);
    t.is(line('cuse-dev'), 'character special file a:cb', '/dev/cuse must be char 10:203 (hex a:cb)');
    t.is(line('node'), process.version, 'node in the chroot is the host node');
    t.is(line('cuse-roundtrip'), 'rc=0', r.output);
    t.regex(r.output, /^SMOKE-CUSE device \/dev\/virtgpu-smoke chr \d+:\d+/m);
    t.regex(r.output, /^SMOKE-CUSE ok$/m);
    t.is(line('job-write'), 'rc=0');
    t.is(fs.readFileSync(path.join(r.jobDir, 'from-guest.txt'), 'utf8'), 'from-guest\n', 'job dir is writable over 9p');
    t.is(line('cwd'), root);
  } finally {
    fs.rmSync(r.jobDir, { recursive: true, force: true });
  }
});
