// Injection as policy, end to end: a root `serve` (world-openable, --mode-bits 0666) injects a userfaultfd only
// into dumpable processes of allowed uids that did not opt out; every other client is watched through /proc,
// keeps working, and the refusal is announced once per reason. Each client first proves it reached the server
// (one ioctl succeeds), so no test passes because a client could not open the node.
import test from 'ava';
import * as fs from 'fs';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { cannotSwitchUsers, nobody } from '../helpers/as-user';
import { Client, POLICY_CLIENT, serveFuse, traceState, uffdsOf, waitFor, type Served } from './policy-harness';

const fuse = probeFuse();
const why = !fuse.ok ? `no FUSE here (${fuse.reason})` : process.arch !== 'x64' ? 'ptrace injection is x86-64 only'
  : !fs.existsSync(POLICY_CLIENT) ? 'tests/c not built (make -C tests/c)' : cannotSwitchUsers();
const t0 = why ? test.serial.skip : test.serial;
if (why) test(`inject-policy: skipped (${why})`, (t) => t.pass());

const UID_REFUSED = /not injecting a userfaultfd: its uid is not allowed/g;
const NONDUMPABLE = /not injecting a userfaultfd: it is not dumpable/g;
const OPTED_OUT = /not injecting a userfaultfd: it opted out \(VIRTGPU_EMU_NO_INJECT=1\)/g;
const injected = (sv: Served, pid: number): boolean => sv.s.stderr().includes(`pid ${pid}: userfaultfd injected by ptrace`);
const count = (s: string, re: RegExp): number => s.match(re)?.length ?? 0;
/** Reached the server (GETPARAM answered 0), then one userptr round with the server watching (uffd or /proc). */
async function reachedAndWorks(c: Client): Promise<string> {
  const r = await c.line(/^ready (\d+) (\S+)$/m);
  if (Number(r[1]) !== c.pid) return `pid ${r[1]} is not ${c.pid}`;
  if (r[2] !== '0') return `GETPARAM: ${r[2]}`;
  const round = await c.round(1);
  return round === 'round create=0 after-munmap=ENOENT' ? '' : round;
}
/** Not stopped, not traced, no userfaultfd left in it. */
const untouched = (pid: number): string => {
  const s = traceState(pid);
  if (s.tracer !== 0 || s.state === 't' || s.state === 'T') return `state ${s.state}, TracerPid ${s.tracer}`;
  const n = uffdsOf(pid);
  return n ? `${n} userfaultfd(s) in the client` : '';
};

t0('a client of another user (nobody) is not injected: watched through /proc, announced once for two clients, keeps working', async (t) => {
  const sv = await serveFuse(['--mode-bits', '0666']);
  const clients: Client[] = [];
  try {
    t.regex(sv.s.stderr(), /injection: a userfaultfd is ptrace-injected only into dumpable processes of uid 0 \(root\)/);
    for (let i = 0; i < 2; i++) clients.push(Client.start(sv, { user: nobody()! }));
    for (const c of clients) t.is(await reachedAndWorks(c), '', c.output());
    t.true(await waitFor(() => count(sv.s.stderr(), UID_REFUSED) > 0), sv.s.stderr());
    for (const c of clients) {
      t.false(injected(sv, c.pid));
      t.is(untouched(c.pid), '');
      t.is(await c.round(2), 'round create=0 after-munmap=ENOENT', 'still served, through /proc');
    }
    t.is(count(sv.s.stderr(), UID_REFUSED), 1, 'announced once per reason, not per client');
    t.regex(sv.s.stderr(), /runs as uid 65534, not an allowed uid \(0; --inject-uid adds more\)/);
    for (const c of clients) t.is(await c.end(), 0);
  } finally {
    for (const c of clients) c.p.kill('SIGKILL');
    const inj = await sv.stop();
    t.like(inj, { started: 0, declined: 2 }, 'never seized');
  }
});

t0('--inject-uid nobody: a nobody client is injected; a non-dumpable nobody client is refused from /proc without a seize', async (t) => {
  const sv = await serveFuse(['--mode-bits', '0666', '--inject-uid', 'nobody']);
  let a: Client | undefined, b: Client | undefined;
  try {
    t.regex(sv.s.stderr(), /only into dumpable processes of uid 0 \(root\), 65534 \(nobody\)/);
    a = Client.start(sv, { user: nobody()! });
    t.is(await reachedAndWorks(a), '', a.output());
    t.true(await waitFor(() => injected(sv, a!.pid)), sv.s.stderr());
    t.is(untouched(a.pid), '', 'detached, and the client keeps no copy of its userfaultfd');
    b = Client.start(sv, { user: nobody()!, nondumpable: true });
    t.is(await reachedAndWorks(b), '', b.output());
    t.true(await waitFor(() => count(sv.s.stderr(), NONDUMPABLE) > 0), sv.s.stderr());
    t.regex(sv.s.stderr(), new RegExp(`pid ${b.pid} is not dumpable \\(its /proc files are owned by uid 0, the process runs as 65534\\)`), 'refused before any ptrace request');
    t.false(injected(sv, b.pid));
    t.is(untouched(b.pid), '');
    t.is(await b.round(2), 'round create=0 after-munmap=ENOENT');
    t.is(await a.end(), 0);
    t.is(await b.end(), 0);
  } finally {
    a?.p.kill('SIGKILL'); b?.p.kill('SIGKILL');
    const inj = await sv.stop();
    t.like(inj, { started: 1, completed: 1, refused: 0, declined: 1 });
  }
});

t0('a root client that made itself non-dumpable is refused once stopped (PR_GET_DUMPABLE): detached unchanged, keeps working', async (t) => {
  const sv = await serveFuse(['--mode-bits', '0666']);
  let c: Client | undefined;
  try {
    c = Client.start(sv, { nondumpable: true });
    t.is(await reachedAndWorks(c), '', c.output());
    t.true(await waitFor(() => count(sv.s.stderr(), NONDUMPABLE) > 0), sv.s.stderr());
    t.regex(sv.s.stderr(), new RegExp(`pid ${c.pid} is not dumpable \\(PR_GET_DUMPABLE = 0\\)`));
    t.false(injected(sv, c.pid));
    t.is(untouched(c.pid), '', 'not left stopped or traced, no userfaultfd');
    t.is(await c.round(2), 'round create=0 after-munmap=ENOENT', 'registers restored: it runs on, watched through /proc');
    t.is(await c.end(), 0);
  } finally {
    c?.p.kill('SIGKILL');
    const inj = await sv.stop();
    t.like(inj, { started: 1, completed: 0, refused: 1, failed: 0, declined: 0 });
  }
});

t0('opt-out: a root client started with VIRTGPU_EMU_NO_INJECT=1 is not injected (a plain one beside it is)', async (t) => {
  const sv = await serveFuse(['--mode-bits', '0666']);
  let out: Client | undefined, plain: Client | undefined;
  try {
    out = Client.start(sv, { env: { PATH: '/usr/bin:/bin', VIRTGPU_EMU_NO_INJECT: '1' } });
    t.is(await reachedAndWorks(out), '', out.output());
    t.true(await waitFor(() => count(sv.s.stderr(), OPTED_OUT) > 0), sv.s.stderr());
    t.false(injected(sv, out.pid));
    t.is(untouched(out.pid), '');
    plain = Client.start(sv, { env: { PATH: '/usr/bin:/bin', VIRTGPU_EMU_NO_INJECT: '0' } });
    t.is(await reachedAndWorks(plain), '', plain.output());
    t.true(await waitFor(() => injected(sv, plain!.pid)), sv.s.stderr());
    t.is(await out.round(2), 'round create=0 after-munmap=ENOENT');
    t.is(await out.end(), 0);
    t.is(await plain.end(), 0);
  } finally {
    out?.p.kill('SIGKILL'); plain?.p.kill('SIGKILL');
    const inj = await sv.stop();
    t.like(inj, { started: 1, completed: 1, declined: 1 });
  }
});
