// ptrace injection (x86-64) of a userfaultfd into a client that handed none over: the client keeps running, keeps
// no copy, and its events then flow; ranges registered on /proc before the injection move to the uffd.
import test from 'ava';
import * as fs from 'fs';
import { injectUffd, Injection, INJECT_STOP_TIMEOUT_MS, type InjectionOutcome, type InjectionStep } from '../../uffd/inject';
import { UffdWatcher } from '../../uffd/uffd-watcher';
import { ChildClient, RealHarness, ensureClientBin, until, u, PG, watcherFds, sleep } from './helpers/real-harness';

const hex = (n: number): string => `0x${n.toString(16)}`;
const skip = process.arch !== 'x64' ? 'x86-64 only' : ensureClientBin();
const t0 = skip ? test.serial.skip : test.serial;
if (skip) test('inject tests', (t) => { t.log(skip); t.pass(); });

const clients: ChildClient[] = [];
test.afterEach.always(() => { for (const c of clients.splice(0)) c.kill(); });

function uffdFdsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((x) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${x}`).includes('userfaultfd'); } catch { return false; } }).length;
}

t0('injectUffd into a client blocked in read(): fd taken, client keeps no copy and resumes its syscall', async (t) => {
  const c = await ChildClient.start(undefined, { grandchild: true });
  clients.push(c);
  const a = await c.num('mmap 4');
  const r = injectUffd(c.pid);
  t.true(r.fd > 2);
  t.log(`injection took ${r.ms.toFixed(2)} ms`);
  t.is(uffdFdsOf(c.pid), 0);
  t.is(await c.num('pid'), c.pid, 'the interrupted read() was restarted');
  const w = new UffdWatcher({ pid: c.pid, uffd: r.fd, features: r.features });
  t.true(w.tryRegister(1, a, a + 4 * PG - 1).ok);
  await c.cmd(`munmap ${hex(a)} ${PG}`);
  t.like(w.drain()[0], { event: 'UNMAP', start: a, end: a + PG });
  w.release();
});

t0('provider with inject: ranges first on /proc move to the injected uffd; munmap then deletes the BO via uffd', async (t) => {
  const c = await ChildClient.start(undefined, { grandchild: true });
  clients.push(c);
  const h = new RealHarness({ inject: true, procIntervalMs: 0 });
  h.setScratch(c.pid, await c.num('mmap 1'));
  const a = await c.num('mmap 4'), b = await c.num('mmap 4');
  const f = h.open(c.pid);
  const env = h.provider.live.get(c.pid)!;
  const ra = h.create(f, c.pid, a, 4 * PG);
  t.is(ra.ret, 0);
  t.true(await until(() => env.events.uffd !== null, 3000), h.logs.join('\n'));
  t.true(h.logs.some((m) => /injected by ptrace/.test(m)));
  t.is(env.events.uffd!.registrations(), 1, 'the /proc range was registered on the uffd');
  t.true(env.events.exact(a, a + 4 * PG - 1));
  const rb = h.create(f, c.pid, b, 4 * PG);
  t.is(env.events.uffd!.registrations(), 2);
  await c.cmd(`munmap ${hex(a)} ${4 * PG}`);
  await c.cmd(`madvise ${hex(b)} ${4 * PG} ${u.constants.MADV_FREE}`);
  t.true(await until(() => h.handle(f, ra.handle) === undefined, 2000), 'deleted by the async wake-up');
  t.is(h.info(f, c.pid, rb.handle), 0);
  t.is(uffdFdsOf(c.pid), 0);
  f.close();
  t.is(h.provider.live.size, 0);
});

// A tracee never blocks us: every wait is waitpid(WNOHANG) driven by poll(). A tracee killed at any step is reaped
// by the injection (the tracer must reap first), so its parent (sh here) reaps it at once; one that cannot stop is
// abandoned after the timeout and detached once it stops.
const drive = async (inj: Injection, ms: number, until2: () => boolean = () => inj.finished): Promise<InjectionOutcome | null> => {
  let out: InjectionOutcome | null = null;
  for (const end = Date.now() + ms; Date.now() < end && !until2();) {
    out = inj.poll() ?? out;
    await new Promise((r) => setTimeout(r, 1));
  }
  return inj.poll() ?? out;
};
const tracerLinkGone = (tid: number): boolean => {
  try { u.waitpid(tid, u.constants.WNOHANG | u.constants.__WALL); return false; } catch (e) { return (e as { code?: string }).code === 'ECHILD'; }
};
const exitedWithin = (c: ChildClient, ms: number): Promise<boolean> => new Promise((resolve) => {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve(true);
  const timer = setTimeout(() => resolve(false), ms);
  c.proc.once('exit', () => { clearTimeout(timer); resolve(true); });
});
/** State and TracerPid of a process ('' when gone). */
const statusOf = (pid: number): { state: string; tracer: number } => {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    return { state: /^State:\s+(\S)/m.exec(st)?.[1] ?? '', tracer: Number(/^TracerPid:\s+(\d+)/m.exec(st)?.[1] ?? 0) };
  } catch { return { state: '', tracer: 0 }; }
};
/**
 * The killed client's parent (sh) reaps it within 1 s; on a loaded machine a client still running its exit then is
 * tolerated (reaped within 5 s more), a zombie still traced is not: that is the failure this guards against.
 */
const reapedByParent = async (c: ChildClient): Promise<string> => {
  if (await exitedWithin(c, 1000)) return '';
  const s = statusOf(c.pid);
  if (s.state === 'Z' && s.tracer !== 0) return `a zombie still traced by ${s.tracer} 1 s after the kill`;
  return (await exitedWithin(c, 5000)) ? '' : `not reaped 6 s after the kill (state ${s.state})`;
};

for (const step of ['stop', 'dumpable', 'userfaultfd', 'getfd', 'close', 'restore', 'detach'] as InjectionStep[]) {
  t0(`a tracee SIGKILLed at step "${step}": outcome died, reaped (no tracer link), its parent reaps it within 1 s, no fd kept`, async (t) => {
    const c = await ChildClient.start(undefined, { grandchild: true });
    clients.push(c);
    const fds = watcherFds();
    const inj = new Injection(c.pid, c.pid, { onStep: (s) => { if (s === step) process.kill(c.pid, 'SIGKILL'); } });
    const t1 = Date.now();
    const [out, reaped] = await Promise.all([drive(inj, 3000), reapedByParent(c)]);
    t.log(`finished in ${Date.now() - t1} ms`);
    if (out?.kind === 'injected') u.close(out.result.fd);
    t.true(inj.finished, 'no tracer link left');
    t.is(out?.kind, 'died', JSON.stringify(out));
    t.is(reaped, '', 'sh reaped the killed client');
    t.true(tracerLinkGone(c.pid));
    t.is(watcherFds(), fds, 'no uffd or pidfd kept');
  });
}

t0('a thread that cannot stop (vfork wait) is abandoned after 100 ms, then detached at its stop: the client runs on untouched', async (t) => {
  const c = await ChildClient.start(undefined, { grandchild: true });
  clients.push(c);
  c.send('vfork 1500');
  await sleep(50);
  const t1 = Date.now();
  const inj = new Injection(c.pid, c.pid, { stopTimeoutMs: INJECT_STOP_TIMEOUT_MS });
  const first = await drive(inj, 2000, () => inj.settled);
  t.is(first?.kind, 'abandoned');
  t.true(Date.now() - t1 < 1000, `abandoned after ${Date.now() - t1} ms`);
  t.false(inj.finished, 'still attached until it stops');
  await drive(inj, 3000);
  t.true(inj.finished, 'detached once the vfork child exited');
  t.true(tracerLinkGone(c.pid));
  t.is(await c.next(), 'ok', 'the vfork command completed');
  t.is(await c.num('pid'), c.pid, 'registers intact: the client runs on');
  t.is(uffdFdsOf(c.pid), 0);
});

t0('an abandoned tracee SIGKILLed before it stops is reaped: its parent reaps it within 1 s', async (t) => {
  const c = await ChildClient.start(undefined, { grandchild: true });
  clients.push(c);
  c.send('vfork 5000');
  await sleep(50);
  const inj = new Injection(c.pid, c.pid);
  t.is((await drive(inj, 2000, () => inj.settled))?.kind, 'abandoned');
  process.kill(c.pid, 'SIGKILL');
  const [, reaped] = await Promise.all([drive(inj, 3000), reapedByParent(c)]);
  t.true(inj.finished);
  t.is(reaped, '', 'sh reaped the killed client');
  t.true(tracerLinkGone(c.pid));
});

t0('refused once stopped (the recheck): detached before anything runs in it, outcome refused, the client runs on untouched', async (t) => {
  const c = await ChildClient.start(undefined, { grandchild: true });
  clients.push(c);
  const fds = watcherFds();
  const steps: InjectionStep[] = [];
  const inj = new Injection(c.pid, c.pid, { onStep: (s) => steps.push(s), recheck: () => ({ kind: 'uid', detail: 'not allowed' }) });
  const out = await drive(inj, 3000);
  t.deepEqual(out, { kind: 'refused', why: 'uid', reason: 'not allowed' });
  t.deepEqual(steps, ['seize', 'stop'], 'no syscall injected');
  t.true(inj.finished);
  t.true(tracerLinkGone(c.pid));
  t.is(await c.num('pid'), c.pid, 'the interrupted read() was restarted');
  t.is(uffdFdsOf(c.pid), 0);
  t.is(watcherFds(), fds);
});
