// One client's 4 GiB userptr create does not stall the other clients: the serving loop parks the create and faults
// its pages in by bounded steps between other requests (Session.step, core's PinPreparation), then runs it.
// Real FUSE node, `virtgpu-emu serve` defaults (watcher auto, clients unmodified: ptrace injection), C clients
// (tests/c/big_create). Asserted by order only: a no-op ioctl issued by another client AFTER the server began
// faulting in the creator's pages (seen as the creator's RSS growing while it is blocked in its ioctl) returns
// BEFORE the create does. Timings (the other client's latency, the create's duration, server RSS) are printed
// with t.log and measured in bench/stall.ts, never asserted.
import test from 'ava';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { runBigCreate, type BigCreateResult } from '../helpers/big-create';

const fuse = probeFuse();
const maybe = fuse.ok ? test.serial : test.serial.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

function report(r: BigCreateResult): string {
  const ms = (ns: bigint): string => (Number(ns) / 1e6).toFixed(1);
  const killed = r.createRc === 'killed';
  return [
    killed ? 'creator SIGKILLed during the preparation' : `create: rc=${r.createRc} ${r.createMs.toFixed(0)} ms`,
    `no-op of another client during it: ${ms(r.noopEnd - r.noopStart)} ms` + (killed ? '' : ` (returned ${ms(r.createEnd - r.noopEnd)} ms before the create)`),
    `GETPARAM loop of a third client: n=${r.lat.n} p50=${r.lat.p50Us} µs p99=${r.lat.p99Us} µs max=${(r.lat.maxUs / 1000).toFixed(1)} ms`,
    `server RSS: before ${r.serverRssBeforeMiB.toFixed(0)} MiB, peak ${r.serverPeakMiB.toFixed(0)} MiB, after close ${r.serverRssAfterMiB.toFixed(0)} MiB`,
    r.serverSummary,
  ].join('\n');
}

maybe(`a 4 GiB userptr create: another client's no-op ioctl issued while it is served returns before it${skipWhy}`, async (t) => {
  t.timeout(240_000);
  const r = await runBigCreate({ mib: 4096, timeoutMs: 180_000 });
  t.log(report(r));
  t.is(r.createRc, '0', 'the 4 GiB create succeeds');
  t.true(r.witnessed, 'the creator\'s RSS grew while it was blocked in its create (the server was faulting its pages in)');
  t.is(r.noopRc, '0');
  t.true(r.noopEnd < r.createEnd, `the other client's VERSION (issued after the server began the create) returned ${r.noopEnd} ns, the create ${r.createEnd} ns: the create stalled it`);
  // Everything released: three clients, one userptr created, every file closed before the stop.
  t.regex(r.serverSummary, /^virtgpu-emu: stopped \(stop\): clients=3 .*userptrs created=1 /);
  t.notRegex(r.serverSummary, /files-open-at-stop/);
});

maybe(`a creator SIGKILLed while its 4 GiB create is prepared: the server keeps serving and releases everything${skipWhy}`, async (t) => {
  t.timeout(240_000);
  const r = await runBigCreate({ mib: 4096, timeoutMs: 180_000, killCreator: true });
  t.log(report(r));
  t.true(r.witnessed);
  t.is(r.noopRc, '0', 'the other client is served after the kill');
  // The killed create was answered (EINTR on the FUSE interrupt) and never ran: no userptr, no file left open.
  t.regex(r.serverSummary, /^virtgpu-emu: stopped \(stop\): clients=3 .*userptrs created=0 /);
  t.notRegex(r.serverSummary, /files-open-at-stop/);
});
