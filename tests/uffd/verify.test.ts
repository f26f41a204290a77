// The one verification of every uffd taken from a client (uffd/verify.ts), on real fds of this process: what is
// not a userfaultfd is closed and refused by kind, a userfaultfd initialized by someone else is refused, a FORK
// record's fd is closed only when it is a userfaultfd, and a watcher never starts on a refused fd.
import test from 'ava';
import * as fs from 'fs';
import { loadUffd } from '../../uffd/load';
import { UffdWatcher } from '../../uffd/uffd-watcher';
import { adoptUffd, closeIfUffd, fdKind, isUffdRefused, RefusalLog, UffdRefused } from '../../uffd/verify';
import { createOwnUffd } from '../../uffd/acquire';

const u = loadUffd();
const open = (fd: number): boolean => fdKind(fd) !== 'closed';
/** Fds a client chose are closed on the addon's closer thread: wait (bounded) for it. Serial tests: no fd reuse meanwhile. */
function closedSoon(fd: number): boolean {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 200 && open(fd); i++) Atomics.wait(nap, 0, 0, 5);
  return !open(fd);
}

function refusal(f: () => unknown): UffdRefused {
  try { f(); } catch (e) { if (isUffdRefused(e)) return e; throw e; }
  throw new Error('not refused');
}

test.serial('fdKind tells kinds apart by our own fd table, never by path', (t) => {
  const uffd = createOwnUffd(u);
  const ev = u.eventfd();
  const file = fs.openSync('/etc/hostname', 'r');
  const pidfd = u.pidfdOpen(process.pid);
  try {
    t.is(fdKind(uffd), 'userfaultfd');
    t.is(fdKind(ev), 'eventfd');
    t.is(fdKind(file), 'file');
    t.is(fdKind(pidfd), 'pidfd');
    t.is(fdKind(987654), 'closed');
  } finally { for (const f of [uffd, ev, file, pidfd]) u.close(f); }
});

test.serial('adoptUffd: an eventfd, a file, a pidfd are closed and refused (EBADF), by kind only (pipes, sockets, memfds: tests/security/handoff)', (t) => {
  const cases: Array<[string, number]> = [['eventfd', u.eventfd()], ['file', fs.openSync('/etc/hostname', 'r')], ['pidfd', u.pidfdOpen(process.pid)]];
  for (const [kind, fd] of cases) {
    const e = refusal(() => adoptUffd(u, fd));
    t.is(e.code, 'EBADF');
    t.is(e.kind as string, kind);
    t.false(e.message.includes('/'), e.message);
    t.true(closedSoon(fd), `${kind}: closed`);
  }
});

test.serial('adoptUffd: UFFDIO_API runs once; a uffd initialized already (by its creator) is refused and closed', (t) => {
  const fresh = createOwnUffd(u);
  const a = adoptUffd(u, fresh);
  t.is(a.fd, fresh);
  t.not(a.features & u.constants.UFFD_FEATURE_EVENT_UNMAP, 0n);
  const e = refusal(() => adoptUffd(u, fresh));
  t.is(e.kind, 'api');
  t.is(e.code, 'EINVAL');
  t.false(open(fresh));
});

test.serial('UffdWatcher refuses what is not a userfaultfd (closed, no reader started)', (t) => {
  const ev = u.eventfd();
  const e = refusal(() => new UffdWatcher({ binding: u, pid: process.pid, uffd: ev }));
  t.is(e.code, 'EBADF');
  t.true(closedSoon(ev));
});

test.serial('closeIfUffd: the fd a FORK record names is closed only when it is a userfaultfd', (t) => {
  const ev = u.eventfd();
  t.false(closeIfUffd(u, ev));
  t.true(open(ev), 'an fd that is not a userfaultfd is left alone');
  u.close(ev);
  const uffd = createOwnUffd(u);
  t.true(closeIfUffd(u, uffd));
  t.false(open(uffd));
});

test.serial('RefusalLog: one line per source and kind, every refusal counted', (t) => {
  const lines: string[] = [];
  const r = new RefusalLog((m) => lines.push(m));
  for (let i = 0; i < 5; i++) r.refuse('handoff', `pid ${i}`, new UffdRefused('pipe', 'EBADF', 'a pipe, not a userfaultfd'));
  r.refuse('injected', 'pid 9', new UffdRefused('pipe', 'EBADF', 'a pipe, not a userfaultfd'));
  r.refuse('handoff', 'pid 9', new UffdRefused('api', 'EINVAL', 'initialized'));
  t.is(lines.length, 3);
  t.is(r.total, 7);
  t.is(r.counts.get('handoff:pipe'), 5);
});
