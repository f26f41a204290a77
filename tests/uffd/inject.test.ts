// ptrace injection (x86-64) of a userfaultfd into a client that handed none over: the client keeps running, keeps
// no copy, and its events then flow; ranges registered on /proc before the injection move to the uffd.
import test from 'ava';
import * as fs from 'fs';
import { injectUffd } from '../../uffd/inject';
import { UffdWatcher } from '../../uffd/uffd-watcher';
import { ChildClient, RealHarness, ensureClientBin, until, u, PG } from './real-harness';

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
  const w = new UffdWatcher({ pid: c.pid, uffd: r.fd });
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
