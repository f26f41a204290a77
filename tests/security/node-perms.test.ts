// Who may open the node, enforced by the kernel: with `--group G --mode-bits 0660` a user outside G gets EACCES
// and a member of G (primary or supplementary) gets in; the folders on the way are root's 0755 (reachable, nothing
// more); and what this host gets by default (root:render 0660 with a render group, root:root 0666 without; the
// resolving itself is unit-tested in tests/cuse-dev/node-perms.test.ts). G is created for the test and removed.
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { resolveNodePerms } from '../../cuse-dev/transport/node-perms';
import { cannotSwitchUsers, lookupUser, nobody } from '../helpers/as-user';
import { Client, POLICY_CLIENT, serveFuse } from './policy-harness';

const fuse = probeFuse();
const groupadd = ((): string => { try { execFileSync('groupadd', ['--help'], { stdio: 'ignore' }); return ''; } catch { return 'groupadd (passwd package) is not installed'; } })();
const why = !fuse.ok ? `no FUSE here (${fuse.reason})` : !fs.existsSync(POLICY_CLIENT) ? 'tests/c not built (make -C tests/c)' : cannotSwitchUsers() ?? (groupadd || null);
const t0 = why ? test.serial.skip : test.serial;
if (why) test(`node-perms: skipped (${why})`, (t) => t.pass());

const GROUP = `vgemu-t${process.pid}`;
let gid = -1;
/** groupadd/groupdel fail while another process holds /etc/group's lock: retried for up to 5 s. */
async function retried(cmd: string, args: string[]): Promise<void> {
  for (let i = 0; ; i++) {
    try { execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }); return; } catch (e) {
      if (i >= 25) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
test.before(async () => {
  if (why) return;
  await retried('groupadd', [GROUP]);
  gid = Number(execFileSync('getent', ['group', GROUP], { encoding: 'latin1' }).split(':')[2]);
});
test.after.always(async () => { if (gid >= 0) await retried('groupdel', [GROUP]); });

const nogroup = (): number => lookupUser('nobody')!.gid;
/** policy_client as nobody with these groups: its first line ("ready …" or "open EACCES") and exit code. */
async function openAs(sv: Awaited<ReturnType<typeof serveFuse>>, as: { gid?: number; groups?: number[] }): Promise<{ first: string; code: number | null }> {
  const c = Client.start(sv, { user: nobody()!, as });
  const m = await c.line(/^(ready \d+ \S+|open \S+)$/m);
  const code = await c.end();
  return { first: m[1]!.replace(/^ready \d+/, 'ready'), code };
}

t0('--group G --mode-bits 0660: nobody gets EACCES, a member of G (primary or supplementary) opens it and is served', async (t) => {
  const sv = await serveFuse(['--group', GROUP, '--mode-bits', '0660']);
  try {
    const st = fs.statSync(sv.path);
    t.like({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }, { uid: 0, gid, mode: 0o660 });
    t.regex(sv.s.stderr(), new RegExp(`node ${sv.path}: owner root, group ${GROUP}, mode 0660 \\(--group, --mode-bits given\\)`));
    for (const d of [path.dirname(sv.path), path.dirname(path.dirname(sv.path))]) {
      const ds = fs.statSync(d);
      t.like({ d, uid: ds.uid, gid: ds.gid, mode: ds.mode & 0o7777 }, { d, uid: 0, gid: 0, mode: 0o755 }, 'reachable by everyone, writable by nobody');
    }
    t.deepEqual(await openAs(sv, { gid: nogroup() }), { first: 'open EACCES', code: 2 }, 'outside the group');
    t.deepEqual(await openAs(sv, { gid }), { first: 'ready 0', code: 0 }, 'primary group G: opened, and GETPARAM answered');
    t.deepEqual(await openAs(sv, { gid: nogroup(), groups: [gid] }), { first: 'ready 0', code: 0 }, 'G as a supplementary group');
  } finally {
    await sv.stop();
  }
});

t0('--owner nobody --mode-bits 0600: only the owner (and root) opens it', async (t) => {
  const sv = await serveFuse(['--owner', 'nobody', '--group', GROUP, '--mode-bits', '0600']);
  try {
    t.like(fs.statSync(sv.path), { uid: nobody()!.uid, gid });
    t.deepEqual(await openAs(sv, { gid: nogroup() }), { first: 'ready 0', code: 0 }, 'the owner');
    const other = lookupUser('daemon');
    if (other) {
      const c = Client.start(sv, { user: other, as: { gid: gid } });
      t.is((await c.line(/^(ready \d+ \S+|open \S+)$/m))[1], 'open EACCES', 'another user, even in the group');
      await c.end();
    }
  } finally {
    await sv.stop();
  }
});

t0('the default on this host: root:render 0660 with a render group, else root:root 0666 (nobody then opens it)', async (t) => {
  const want = resolveNodePerms({});
  const render = (() => { try { return Number(execFileSync('getent', ['group', 'render'], { encoding: 'latin1' }).split(':')[2]); } catch { return -1; } })();
  t.log(render >= 0 ? `render group ${render} here` : 'no render group here');
  t.like(want, render >= 0 ? { uid: 0, gid: render, mode: 0o660 } : { uid: 0, gid: 0, mode: 0o666 });
  const sv = await serveFuse([]);
  try {
    const st = fs.statSync(sv.path);
    t.like({ uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }, { uid: want.uid, gid: want.gid, mode: want.mode });
    t.regex(sv.s.stderr(), render >= 0 ? /owner root, group render, mode 0660 \(a render group exists\)/ : /owner root, group root, mode 0666 \(no render group here\)/);
    t.deepEqual(await openAs(sv, { gid: nogroup() }), render >= 0 ? { first: 'open EACCES', code: 2 } : { first: 'ready 0', code: 0 });
  } finally {
    await sv.stop();
  }
});
