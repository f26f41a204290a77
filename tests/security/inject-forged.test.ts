// The forged-userfaultfd attack on ptrace injection, through a real `virtgpu-emu serve` (FUSE, node 0666): the
// attacker (tests/c/forged_uffd, as nobody) makes its userfaultfd() a seccomp user notification answered with the
// read end of a pipe, so the injected "userfaultfd" the server takes is that pipe; then it writes forged FORK
// records (naming fds 0..63 of the server) into it. The server must refuse the pipe (logged once, without a path),
// hold no copy of it (the attacker's writes end in EPIPE), and keep serving the attacker and a legitimate client.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { cannotSwitchUsers, nobody, runAs, stage } from '../helpers/as-user';
import { collect } from '../helpers/clients';
import { killServe, MAIN, startServe } from '../helpers/serve-process';

const ROOT = path.resolve(__dirname, '../../..');
const FORGED = path.join(ROOT, 'tests/c/bin/forged_uffd');
const DEMO = path.join(ROOT, 'tests/c/bin/demo');
const fuse = probeFuse();
const why = cannotSwitchUsers() ?? (!fuse.ok ? fuse.reason : !fs.existsSync(FORGED) || !fs.existsSync(DEMO) ? 'tests/c not built (make -C tests/c)' : null);
const t = why ? test.serial.skip : test.serial;
if (why) test(`forged uffd through injection: skipped (${why})`, (tt) => tt.pass());

/** Injection into other users' processes is opt-in where the CLI has an injection policy. */
const injectNobody = fs.readFileSync(path.join(path.dirname(MAIN), 'options.js'), 'latin1').includes('--inject-uid') ? ['--inject-uid', 'nobody'] : [];

t('(b) a userfaultfd() turned into a pipe at injection is refused; the forged FORK records reach nothing; the server keeps serving', async (tt) => {
  tt.timeout(90_000);
  const st = stage([FORGED, DEMO]);
  const mnt = path.join(st.dir, 'mnt');
  const s = startServe(['--transport', 'fuse', '--mount-dir', mnt, '--minor', '141', '--mode-bits', '0666', ...injectNobody]);
  try {
    const node = await s.ready;
    tt.is(fs.statSync(node).mode & 0o777, 0o666, 'the node is world-openable');
    const demo = async (): Promise<void> => {
      const d = await collect(spawn(st.at('demo'), [node], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', VIRTGPU_EMU_DEVICE: node } }), 30_000);
      tt.is(d.code, 0, `a legitimate client (root, injected) is served\n${d.stdout}\n${d.stderr}`);
    };
    await demo();
    for (let round = 0; round < 2; round++) {
      const a = await runAs(nobody()!, st.at('forged_uffd'), [node], { timeoutMs: 30_000 });
      tt.is(a.code, 0, a.stderr);
      tt.regex(a.stdout, /^reach 0$/m, `the attacker (nobody) reached the server: one ioctl succeeded\n${a.stdout}`);
      const n = Number(/^notified (\d+)$/m.exec(a.stdout)?.[1] ?? 0);
      tt.true(n >= 1, `the server injected userfaultfd() and the attacker answered it with a pipe\n${a.stdout}\n${s.stderr()}`);
      tt.log(/^wrote .*$/m.exec(a.stdout)?.[0]);
      tt.regex(a.stdout, /^wrote \d+ EPIPE$/m, 'no one holds the pipe\'s read end (within 2 s): the server kept no copy of it');
      tt.regex(a.stdout, /^after 0$/m, 'the attacker is still served (on the /proc checker)');
    }
    await demo();
    const err = s.stderr();
    const refusals = err.split('\n').filter((l) => /injected uffd refused/.test(l));
    tt.is(refusals.length, 1, `refused, logged once per kind:\n${err}`);
    tt.regex(refusals[0] ?? '', /a pipe, not a userfaultfd/);
    tt.false(refusals.some((l) => l.includes('/')), 'no path in the refusal');
  } finally {
    const r = await killServe(s, 'SIGTERM');
    tt.is(r.code, 0, s.stderr());
    st.remove();
  }
});
