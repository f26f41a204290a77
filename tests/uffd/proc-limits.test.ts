// The memory-lock limits v6's create reads of a client: RLIMIT_MEMLOCK's soft limit and CAP_IPC_LOCK.
import test from 'ava';
import { parseCapIpcLock, parseMemlock, readMemlockLimits } from '../../uffd/proc-limits';

test('parse /proc/PID/limits: the soft RLIMIT_MEMLOCK in bytes, unlimited as Infinity', (t) => {
  const head = 'Limit                     Soft Limit           Hard Limit           Units     \n';
  t.is(parseMemlock(head + 'Max locked memory         8388608              8388608              bytes     \n'), 8388608);
  t.is(parseMemlock(head + 'Max locked memory         0                    unlimited            bytes     \n'), 0);
  t.is(parseMemlock(head + 'Max locked memory         unlimited            unlimited            bytes     \n'), Infinity);
  t.is(parseMemlock(head), null);
});

test('parse /proc/PID/status: CAP_IPC_LOCK is bit 14 of CapEff', (t) => {
  t.true(parseCapIpcLock('Name:\tx\nCapEff:\t000001ffffffffff\n'));
  t.false(parseCapIpcLock('CapEff:\t000001ffffffbfff\n'));
  t.true(parseCapIpcLock('CapEff:\t0000000000004000\n'));
  t.is(parseCapIpcLock('Name:\tx\n'), null);
});

test('read our own process; a gone pid is null', (t) => {
  const l = readMemlockLimits(process.pid);
  t.truthy(l);
  t.true(l!.limitBytes >= 0);
  t.is(readMemlockLimits(0x3fffffff), null);
});
