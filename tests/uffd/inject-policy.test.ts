// The injection policy's checks from /proc (uffd/inject-policy.ts) on fabricated /proc views: uids (real and
// effective), the non-dumpable pre-check (/proc/PID owned by root while the process is not), the opt-out variable,
// and what cannot be read. The real refusals are tested end to end in tests/security/inject-policy.test.ts.
import test from 'ava';
import { InjectPolicy, NO_INJECT_ENV, optedOut, refusalMessage, uidsOf, type ProcView } from '../../uffd/inject-policy';

const status = (real: number, eff: number): string => `Name:\tclient\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${real}\t${eff}\t${eff}\t${eff}\nGid:\t0\t0\t0\t0\n`;
function view(p: { real: number; eff?: number; owner?: number; env?: string[]; gone?: boolean }): ProcView & { read: string[] } {
  const read: string[] = [];
  const enoent = (): never => { throw Object.assign(new Error('gone'), { code: 'ENOENT' }); };
  return {
    read,
    status: (f) => { read.push(f); return p.gone ? enoent() : status(p.real, p.eff ?? p.real); },
    ownerUid: (f) => { read.push(f); return p.gone ? enoent() : p.owner ?? p.eff ?? p.real; },
    environ: (f) => { read.push(f); return p.gone ? enoent() : Buffer.from((p.env ?? ['PATH=/bin']).map((e) => `${e}\0`).join(''), 'latin1'); },
  };
}

test('uidsOf: the four uids of the Uid: line; null without one', (t) => {
  t.deepEqual(uidsOf(status(1000, 0)), [1000, 0, 0, 0]);
  t.is(uidsOf('Name:\tx\n'), null);
});

test('optedOut: exactly VIRTGPU_EMU_NO_INJECT=1 as one whole entry', (t) => {
  const env = (...e: string[]): Buffer => Buffer.from(e.map((x) => `${x}\0`).join(''), 'latin1');
  t.true(optedOut(env('A=1', `${NO_INJECT_ENV}=1`)));
  t.true(optedOut(Buffer.from(`${NO_INJECT_ENV}=1`, 'latin1')), 'last entry without its NUL');
  for (const e of [`${NO_INJECT_ENV}=0`, `${NO_INJECT_ENV}=`, `X${NO_INJECT_ENV}=1`, `${NO_INJECT_ENV}=10`, `A=${NO_INJECT_ENV}=1`]) t.false(optedOut(env(e)), e);
  t.false(optedOut(Buffer.alloc(0)));
});

test('default policy: the server\'s own euid only; real and effective uid must both be allowed', (t) => {
  const p = (v: ProcView): InjectPolicy => new InjectPolicy([], v, 0);
  t.is(p(view({ real: 0 })).check(42), null);
  t.like(p(view({ real: 65534 })).check(42), { kind: 'uid' });
  t.like(p(view({ real: 1000, eff: 0 })).check(42), { kind: 'uid' }, 'a setuid-root program run by a user');
  t.like(p(view({ real: 0, eff: 1000 })).check(42), { kind: 'uid' });
  t.regex(p(view({ real: 65534 })).check(42)!.detail, /uid 65534, not an allowed uid \(0; --inject-uid adds more\)/);
});

test('--inject-uid adds uids; the server\'s euid stays allowed', (t) => {
  const p = new InjectPolicy([65534], view({ real: 65534 }), 0);
  t.deepEqual([...p.uids], [0, 65534]);
  t.is(p.check(42), null);
  t.is(new InjectPolicy([65534], view({ real: 0 }), 0).check(42), null);
  t.like(new InjectPolicy([65534], view({ real: 1000 }), 0).check(42), { kind: 'uid' });
});

test('non-dumpable pre-check: /proc/PID/status owned by root while the process runs as another uid', (t) => {
  const v = view({ real: 65534, owner: 0 });
  t.like(new InjectPolicy([65534], v, 0).check(42), { kind: 'nondumpable' });
  t.deepEqual(v.read, ['/proc/42/status', '/proc/42/status'], 'refused before its environment is read');
  // A root process looks the same dumpable or not: that is left to the check on the stopped thread (PR_GET_DUMPABLE).
  t.is(new InjectPolicy([], view({ real: 0, owner: 0 }), 0).check(42), null);
});

test('uid refusal reads nothing but the status', (t) => {
  const v = view({ real: 65534 });
  new InjectPolicy([], v, 0).check(7);
  t.deepEqual(v.read, ['/proc/7/status']);
});

test('opt-out: VIRTGPU_EMU_NO_INJECT=1 in the process\'s environment', (t) => {
  t.like(new InjectPolicy([], view({ real: 0, env: ['HOME=/root', `${NO_INJECT_ENV}=1`] }), 0).check(9), { kind: 'opt-out' });
  t.is(new InjectPolicy([], view({ real: 0, env: [`${NO_INJECT_ENV}=0`] }), 0).check(9), null);
});

test('a process gone is refused as such, with the errno code in the detail', (t) => {
  const r = new InjectPolicy([], view({ real: 0, gone: true }), 0).check(9);
  t.like(r, { kind: 'gone' });
  t.regex(r!.detail, /ENOENT/);
});

test('recheck reads the stopped thread\'s own status', (t) => {
  const v = view({ real: 65534 });
  t.like(new InjectPolicy([], v, 0).recheck(9, 11), { kind: 'uid' });
  t.deepEqual(v.read, ['/proc/9/task/11/status']);
  t.is(new InjectPolicy([65534], view({ real: 65534 }), 0).recheck(9, 11), null);
  t.is(new InjectPolicy([], view({ real: 0, gone: true }), 0).recheck(9, 11), null, 'gone: left to the next ptrace request (died)');
});

test('refusal messages name the kind, not the client (announced once per kind)', (t) => {
  t.regex(refusalMessage({ kind: 'nondumpable', detail: 'pid 9 is not dumpable' }), /^not injecting a userfaultfd: it is not dumpable .*watched through \/proc/);
  t.regex(refusalMessage({ kind: 'opt-out', detail: 'x' }), /VIRTGPU_EMU_NO_INJECT=1/);
  t.regex(new InjectPolicy([65534], view({ real: 0 }), 0).describe((u) => (u === 0 ? 'root' : undefined)), /uid 0 \(root\), 65534 that do not set VIRTGPU_EMU_NO_INJECT=1/);
});
