// CUSE set-up decisions that do not need /dev/cuse: device numbers, DEVNAME, thread → process mapping.
import test from 'ava';
import { charMajors, chooseDevNumbers, devnameOf, firstFreeMinor } from '../../cuse-dev/transport/cuse';
import { exhaustionErrno } from '../../cuse-dev/session/session';
import { cuseInfo } from '../../cuse-dev/session/init';
import { FuseOpcode } from '../../cuse-dev/abi/opcodes';
import { tgidResolver } from '../../cuse-dev/session/tgid';
import { Errno } from '../../core/errno';

const PROC_DEVICES = 'Character devices:\n  1 mem\n 10 misc\n226 drm\n\nBlock devices:\n  8 sd\n226 bogus-block\n';

test('charMajors reads only the character section of /proc/devices', (t) => {
  const m = charMajors(PROC_DEVICES);
  t.is(m.get(226), 'drm');
  t.is(m.get(8), undefined);
});

test('major 226 when free, dynamic when drm owns it', (t) => {
  t.deepEqual(chooseDevNumbers(128, charMajors('Character devices:\n  1 mem\n'), () => false), { major: 226, minor: 128 });
  const d = chooseDevNumbers(128, charMajors(PROC_DEVICES), () => false);
  t.like(d, { major: 0, minor: 0 });
  t.regex(d.note!, /taken by "drm"/);
  t.like(chooseDevNumbers(128, new Map(), (p) => p === '/sys/dev/char/226:128'), { major: 0 });
});

test('first free renderD minor skips existing nodes', (t) => {
  t.is(firstFreeMinor((p) => p === '/dev/dri/renderD128'), 129);
  t.is(firstFreeMinor(() => false), 128);
});

test('DEVNAME: path under /dev, packed KEY=VAL NUL-terminated, bad names rejected', (t) => {
  t.is(devnameOf('/dev/dri/renderD130'), 'dri/renderD130');
  t.throws(() => devnameOf('/tmp/x'));
  t.deepEqual(Buffer.from(cuseInfo('dri/renderD128') as Uint8Array).toString('latin1'), 'DEVNAME=dri/renderD128\0');
  for (const bad of ['', '/abs', 'a//b', 'a/../b', 'x\0y', 'n'.repeat(5000)]) t.true(cuseInfo(bad) instanceof Errno, bad);
});

test('thread id → thread-group id via /proc/TID/status at every request; a vanished thread is refused with EINTR, a caller outside the pid namespace with EACCES', (t) => {
  let reads = 0;
  const r = tgidResolver((p) => {
    reads++;
    if (p === '/proc/11/status') return 'Name:\tx\nTgid:\t10\nPid:\t11\n';
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  });
  t.is(r.resolve(11, 0, 0), 10);
  t.is(r.resolve(11, 0, 0), 10);
  t.is(reads, 2, 'nothing cached: each request is resolved while its caller waits for the reply');
  t.like(r.resolve(99, 0, 0), { kind: 'vanished', errno: { code: 'EINTR' } });
  t.like(r.resolve(0, 0, 0), { kind: 'invisible', errno: { code: 'EACCES' } });
  t.is(reads, 3, 'tid 0 (a caller outside the server\'s pid namespace) is refused without a look-up');
  t.like(r.stats(), { resolved: 2, refused: 2, pidfds: 0 });
});

test('out of fds or memory while resolving a tid: thrown (never a guessed tgid); answered ENFILE at OPEN, ENOMEM elsewhere', (t) => {
  let fail: string | null = 'EMFILE';
  const r = tgidResolver((p) => {
    if (fail) throw Object.assign(new Error(fail), { code: fail });
    return p === '/proc/11/status' ? 'Tgid:\t10\n' : '';
  });
  t.throws(() => r.resolve(11, 0, 0), { code: 'EMFILE' });
  fail = null;
  t.is(r.resolve(11, 0, 0), 10, 'resolved once fds are back');
  const code = (c: string): Error => Object.assign(new Error(c), { code: c });
  t.is(exhaustionErrno(code('EMFILE'), FuseOpcode.FUSE_OPEN)?.code, 'ENFILE');
  t.is(exhaustionErrno(code('ENFILE'), FuseOpcode.FUSE_OPEN)?.code, 'ENFILE');
  t.is(exhaustionErrno(code('ENOMEM'), FuseOpcode.FUSE_OPEN)?.code, 'ENOMEM');
  t.is(exhaustionErrno(code('EMFILE'), FuseOpcode.FUSE_IOCTL)?.code, 'ENOMEM');
  t.is(exhaustionErrno(code('EBADF'), FuseOpcode.FUSE_OPEN), undefined);
  t.is(exhaustionErrno(new Error('bug'), FuseOpcode.FUSE_OPEN), undefined);
});
