// The helper the security tests run their attackers with: a staged program really runs as `nobody`, with no
// supplementary groups and nothing of the test's environment, and what it opens in a 0700 folder stays closed to it.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cannotSwitchUsers, nobody, runAs, stage } from '../helpers/as-user';

const why = cannotSwitchUsers();
const t = why ? test.skip : test;
if (why) test(`as-user: skipped (${why})`, (tt) => tt.pass());

t('a staged program runs as nobody, without groups or the test environment', async (tt) => {
  const s = stage(['/usr/bin/id', '/usr/bin/env']);
  try {
    tt.is(fs.statSync(s.dir).mode & 0o777, 0o755);
    const id = await runAs(nobody()!, s.at('id'), []);
    tt.is(id.code, 0, id.stderr);
    tt.regex(id.stdout, /^uid=65534\(nobody\) gid=65534\(nogroup\) groups=65534\(nogroup\)$/m);
    const env = await runAs(nobody()!, s.at('env'), []);
    tt.deepEqual(env.stdout.trim().split('\n'), [`PATH=${'/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}`]);
  } finally {
    s.remove();
  }
  tt.false(fs.existsSync(s.dir));
});

t('a mktemp -d folder (0700) is closed to nobody: what it opens (a library, a file) must be staged', async (tt) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-private-'));
  const s = stage(['/usr/bin/cat']);
  try {
    fs.writeFileSync(path.join(dir, 'data'), 'private\n', { mode: 0o644 });
    const r = await runAs(nobody()!, s.at('cat'), [path.join(dir, 'data')]);
    tt.not(r.code, 0);
    tt.regex(r.stderr, /Permission denied/);
    fs.copyFileSync(path.join(dir, 'data'), path.join(s.dir, 'data'));
    fs.chmodSync(path.join(s.dir, 'data'), 0o644);
    const staged = await runAs(nobody()!, s.at('cat'), [s.at('data')]);
    tt.is(staged.code, 0, staged.stderr);
    tt.is(staged.stdout, 'private\n');
  } finally {
    s.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
