// The node's owner/group/mode (cuse-dev/transport/node-perms.ts): the defaults (root:render 0660 where a render
// group exists, else root:root 0666), options by name or number, and the folders that would keep users out. The
// kernel's enforcement is tested end to end in tests/security/node-perms.test.ts.
import test from 'ava';
import { formatPerms, resolveId, resolveNodePerms, resolveUids, unreachableFolders, type IdDb } from '../../cuse-dev/transport/node-perms';
import { parseServe, UsageError } from '../../cli/options';

function db(groups: Record<string, number>, users: Record<string, number> = { root: 0, nobody: 65534 }): IdDb {
  const find = (m: Record<string, number>, key: string) => {
    for (const [name, id] of Object.entries(m)) if (name === key || String(id) === key) return { name, id };
    return null;
  };
  return { lookup: (d, key) => find(d === 'passwd' ? users : groups, key) };
}
const withRender = db({ root: 0, render: 992, video: 44 });
const without = db({ root: 0, video: 44 });

test('default with a render group: root:render 0660', (t) => {
  t.like(resolveNodePerms({}, withRender), { uid: 0, gid: 992, mode: 0o660, owner: 'root', group: 'render' });
  t.is(formatPerms(resolveNodePerms({}, withRender)), 'owner root, group render, mode 0660 (a render group exists)');
});

test('default without a render group: root:root 0666 (as before)', (t) => {
  t.like(resolveNodePerms({}, without), { uid: 0, gid: 0, mode: 0o666, group: 'root' });
  t.is(formatPerms(resolveNodePerms({}, without)), 'owner root, group root, mode 0666 (no render group here)');
});

test('options win over the defaults; a given group defaults the mode to 0660', (t) => {
  t.like(resolveNodePerms({ modeBits: 0o666 }, withRender), { gid: 992, mode: 0o666 });
  t.like(resolveNodePerms({ group: 44 }, without), { gid: 44, mode: 0o660, group: 'video' });
  t.like(resolveNodePerms({ group: 0 }, withRender), { gid: 0, mode: 0o666 }, '--group root: today\'s node');
  t.like(resolveNodePerms({ owner: 65534, modeBits: 0o600 }, without), { uid: 65534, owner: 'nobody', mode: 0o600 });
  t.like(resolveNodePerms({ group: 4242 }, without), { gid: 4242, group: '4242' }, 'a number without a name');
  t.regex(resolveNodePerms({ group: 44, modeBits: 0o640 }, withRender).why, /--group, --mode-bits given/);
});

test('names and numbers: known names → ids, unknown numbers as is, unknown names refused', (t) => {
  t.is(resolveId('group', 'render', withRender), 992);
  t.is(resolveId('passwd', '65534', withRender), 65534);
  t.is(resolveId('passwd', 1234, withRender), 1234);
  t.throws(() => resolveId('group', 'render', without), { message: /no such group: "render"/ });
  t.throws(() => resolveId('passwd', '-1', without));
  t.deepEqual(resolveUids('nobody, 1000,root', withRender), [65534, 1000, 0]);
});

test('parseServe: --owner, --group, --inject-uid by name or number (repeatable); unknown names are usage errors', (t) => {
  const { opts } = parseServe(['--owner', 'nobody', '--group=render', '--mode-bits', '0660', '--inject-uid', 'nobody,1000', '--inject-uid=0'], withRender);
  t.like(opts, { owner: 65534, group: 992, modeBits: 0o660, injectUids: [65534, 1000, 0] });
  t.throws(() => parseServe(['--group', 'render'], without), { instanceOf: UsageError, message: /--group: no such group/ });
  t.throws(() => parseServe(['--inject-uid', 'nosuchuser'], without), { instanceOf: UsageError });
  t.throws(() => parseServe(['--inject-uid', ','], without), { instanceOf: UsageError });
  t.throws(() => parseServe(['--owner', '--no-inject']), { instanceOf: UsageError }, 'the system database: never an option to getent');
});

test('unreachableFolders: a folder above the node others cannot search is named when the mode lets others in', (t) => {
  const modes: Record<string, { mode: number; uid: number; gid: number }> = {
    '/': { mode: 0o40755, uid: 0, gid: 0 }, '/tmp': { mode: 0o41777, uid: 0, gid: 0 }, '/tmp/x': { mode: 0o40700, uid: 0, gid: 0 },
    '/tmp/x/mnt': { mode: 0o40755, uid: 0, gid: 0 }, '/tmp/g': { mode: 0o40750, uid: 0, gid: 992 },
  };
  const stat = (f: string) => modes[f]!;
  const p = resolveNodePerms({}, without);
  t.deepEqual(unreachableFolders('/tmp/x/mnt/node', p, stat), ['/tmp/x (mode 0700)']);
  t.deepEqual(unreachableFolders('/tmp/x/mnt/node', { ...p, mode: 0o600 }, stat), [], 'owner only: nothing to reach for others');
  const render = resolveNodePerms({}, withRender);
  t.deepEqual(unreachableFolders('/tmp/g/node', render, stat), [], 'group-only node in a folder its group may search');
  t.deepEqual(unreachableFolders('/tmp/g/node', p, stat), ['/tmp/g (mode 0750)']);
});
