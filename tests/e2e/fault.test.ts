// --fault through the real FUSE node with the unmodified demo client (libdrm): each rule kind's client-visible effect
// and its trace record; the grammar's refusals (exit code 2); the same rules in process, the random ones repeatable;
// a delayed fence in process with real fence fds (its later fences of the same context wait for it, other contexts'
// do not). A delayed fence through the preload transport and the C client: tests/preload/mmap-fence.test.ts.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { readTrace } from '../../cuse-dev/trace/reader';
import { FaultRuleError, parseFaultRule, parseFaults } from '../../cuse-dev/fault/rules';
import { openDevice } from '../../cuse-dev/transport/in-process';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
import { RecordingHost } from '../../core';
import { loadTestkit } from '../../uffd/load';
import * as B from '../helpers/bytes';
import { cli, DEMO } from '../helpers/demo-trace';
import type { TraceRecord } from '../../cuse-dev/trace/schema';

const fuse = probeFuse();
const maybe = fuse.ok ? test : test.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

/** The demo under `run --fault …` over FUSE with a trace; the run and the trace's records. */
async function demoWith(faults: string[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-fault-'));
  const trace = path.join(dir, 't.jsonl');
  const run = await cli(['run', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), '--trace', trace, ...faults.flatMap((f) => ['--fault', f]), '--', DEMO], 60_000, { ...process.env, VIRTGPU_EMU_MODE: 'notifier' });
  const records = readTrace(trace).records;
  fs.rmSync(dir, { recursive: true, force: true });
  return { run, records };
}
const of = (rs: TraceRecord[], t: string): Record<string, unknown>[] => rs.filter((r) => r.t === t) as unknown as Record<string, unknown>[];

maybe(`ioctl:NAME:nth=1:errno=ENOMEM — the client's first create fails with ENOMEM, traced as a fault${skipWhy}`, async (t) => {
  const { run, records } = await demoWith(['ioctl:RESOURCE_CREATE_BLOB:nth=1:errno=ENOMEM']);
  t.regex(run.stdout, /CREATE_BLOB\(USE_USERPTR, 16 pages\)\s+-> ENOMEM/);
  t.not(run.code, 0, 'the demo cannot go on without its BO');
  const [fault] = of(records, 'fault');
  t.like(fault, { rule: 'ioctl:RESOURCE_CREATE_BLOB:nth=1:errno=ENOMEM', kind: 'ioctl', name: 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB', errno: 'ENOMEM' });
  const creates = of(records, 'ioctl').filter((r) => r.name === 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB');
  t.like(creates[0], { result: 'ENOMEM', fault: true });
  t.is(of(records, 'host').filter((h) => (h.cmd as { cmd: string }).cmd === 'RESOURCE_CREATE_BLOB').length, 0, 'nothing reached the host');
  t.regex(run.stderr, /fault ioctl:RESOURCE_CREATE_BLOB:nth=1:errno=ENOMEM fired/);
});

maybe(`invalidate:NAME#N:range=last-bo — the BO is unmapped before the 2nd create, which then makes a new BO instead of a dedup hit${skipWhy}`, async (t) => {
  const { run, records } = await demoWith(['invalidate:RESOURCE_CREATE_BLOB#2:range=last-bo']);
  t.regex(run.stdout, /CREATE_BLOB\(page 3 \+ 0x20, 256 bytes\)\s+-> 0 .*\[UNEXPECTED\]/, 'a new BO (0), not "already registered" (3)');
  const fault = of(records, 'fault')[0]!;
  t.like(fault, { kind: 'invalidate', name: 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB' });
  t.regex(fault.detail as string, /^UNMAP \[0x[0-9a-f]+, 0x[0-9a-f]+\)$/);
  // The forced event is drained at that create's entry and deletes the 16-page BO through the work list.
  const note = of(records, 'notifier').find((n) => (n.note as string | undefined)?.startsWith('fault '));
  t.truthy(note);
  t.true(of(records, 'work').some((w) => w.op === 'UNMAP' && w.outcome === 'handle deleted' && w.handle === 1 && (w.seq as number) > (note!.seq as number)));
});

maybe(`host:CMD:nth=1:errno=EIO — the host refuses the first CTX_ATTACH_RESOURCE: the client sees success (the driver does not wait on it), the server logs it, the trace has it${skipWhy}`, async (t) => {
  const { run, records } = await demoWith(['host:CTX_ATTACH_RESOURCE:nth=1:errno=EIO']);
  t.is(run.code, 0, run.stdout.slice(-1500));
  t.regex(run.stderr, /fault host:CTX_ATTACH_RESOURCE:nth=1:errno=EIO fired: CTX_ATTACH_RESOURCE -> EIO/);
  t.like(of(records, 'fault')[0], { kind: 'host', name: 'CTX_ATTACH_RESOURCE', errno: 'EIO' });
  const attaches = of(records, 'host').filter((h) => (h.cmd as { cmd: string }).cmd === 'CTX_ATTACH_RESOURCE');
  t.is(attaches.length, 1, 'the demo attaches two resources; the refused one never reached the host');
});

test('bad rules: a clear message and exit code 2', async (t) => {
  for (const [rule, msg] of [
    ['ioctl:NOPE:nth=1:errno=ENOMEM', /unknown ioctl NOPE \(one of .*RESOURCE_CREATE_BLOB/],
    ['ioctl:GETPARAM:nth=0:errno=ENOMEM', /nth must be an integer ≥ 1/],
    ['ioctl:GETPARAM:every:p=0.5:errno=EIO', /say when, once/],
    ['ioctl:GETPARAM:every:errno=EWHAT', /unknown errno EWHAT/],
    ['invalidate:GETPARAM#1:range=10-5', /range must be A-B/],
    ['host:RESOURCE_MAP:every:errno=EIO', /host:CMD:… names one of/],
    ['fence:delay=5', /say when, once: nth=N, every or p=P/],
    ['fence:every', /needs delay=MS, an integer from 1 to 2147483647/],
    ['fence:nth=1:delay=0', /needs delay=MS/],
    ['fence:nth=1:delay=1.5', /needs delay=MS/],
    ['fence:SUBMIT_3D:nth=1:delay=5', /takes nth=N\|every\|p=P and delay=MS, no name/],
    ['fence:nth=1:delay=5:errno=EIO', /unknown field errno=/],
    ['bogus', /unknown rule kind "bogus"/],
  ] as const) {
    t.throws(() => parseFaultRule(rule), { instanceOf: FaultRuleError, message: msg });
  }
  const r = await cli(['serve', '--fault', 'ioctl:GETPARAM:p=2:errno=EIO']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--fault ioctl:GETPARAM:p=2:errno=EIO: p must be in \(0, 1\]/);
  const f = await cli(['run', '--transport', 'preload', '--fault', 'fence:nth=1', '--', 'true']);
  t.is(f.code, 2);
  t.regex(f.stderr, /--fault fence:nth=1: needs delay=MS/);
});

test('in process: the same grammar through openDevice({fault}); a random rule repeats with its seed', (t) => {
  const GETPARAM = 0xc0106443;
  const run = (seed: number): number[] => {
    const events: Record<string, unknown>[] = [];
    const node = openDevice({ clients: simProvider(new SimMachine(), new Map<number, SimProcess>()), pid: 4242, fault: [`seed=${seed}`, 'ioctl:GETPARAM:p=0.5:errno=EAGAIN'], trace: (e) => events.push(e as unknown as Record<string, unknown>) });
    const rs: number[] = [];
    for (let i = 0; i < 64; i++) rs.push(node.ioctl(GETPARAM, new Uint8Array(16)));
    node.close();
    t.is(events.filter((e) => e.t === 'fault').length, rs.filter((r) => r === -11).length, 'one fault record per failed call');
    return rs;
  };
  const a = run(7), b = run(7), c = run(8);
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  t.true(a.some((r) => r === -11) && a.some((r) => r !== -11), 'some calls fail with EAGAIN, some do not');
  t.throws(() => openDevice({ clients: simProvider(new SimMachine(), new Map()), fault: ['ioctl:X:every:errno=EIO'] }), { instanceOf: FaultRuleError });
  t.is(parseFaults(['seed=3', 'ioctl:GETPARAM:every:errno=EIO']).seed, 3);
});

const u = (() => { try { return loadTestkit(); } catch { return null; } })();
const withFds = u ? test.serial : test.serial.skip;
const EXECBUF_OUT = (cmd: Buffer): Uint8Array => B.execbuffer({ flags: B.FENCE_FD_OUT, size: cmd.length, command: u!.bufferAddress(cmd) });

withFds('in process: fence:nth=1:delay=MS — the first fence fd is readable only after the delay, the next one of its context after it, another context\'s at once; one fault record', async (t) => {
  const DELAY = 300;
  const events: Record<string, unknown>[] = [];
  const logs: string[] = [];
  const host = new RecordingHost();
  const node = openDevice({ host, fault: ['fence:nth=1:delay=300'], trace: (e) => events.push(e as unknown as Record<string, unknown>), log: (m) => logs.push(m) });
  const other = openDevice({ device: node.device });
  const cmd = Buffer.from([1, 2, 3, 4]);
  const readable = (fd: number): boolean => u!.pollReadable([fd], 0) !== 0;
  const fds: number[] = [];
  const out = (n: typeof node): number => {
    const arg = EXECBUF_OUT(cmd);
    t.is(n.ioctl(B.VIRTGPU_EXECBUFFER, arg), 0);
    const fd = new B.R(arg).i32(B.EXECBUF_FENCE_FD_AT);
    fds.push(fd);
    return fd;
  };
  try {
    const t0 = Date.now();
    const first = out(node), later = out(node), elsewhere = out(other);
    t.is(host.ofType('SUBMIT_3D').length, 3, 'every submission reached the host, which completed it at once');
    t.false(readable(first), 'the delayed fence is not signalled');
    t.false(readable(later), 'the later fence of the same context waits for it');
    t.true(readable(elsewhere), 'another context\'s fence is not held');
    t.like(node.device.counts(), { fences: 2 });
    // The timer is the engine's (unref'd, as a server's): this test's own poll keeps the process alive meanwhile.
    while (!readable(later) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    t.true(readable(later));
    t.true(readable(first), 'the delayed fence signalled no later than the one after it');
    t.true(Date.now() - t0 >= DELAY, 'not before the delay');
    t.like(node.device.counts(), { fences: 0 });
    const faults = events.filter((e) => e.t === 'fault');
    t.is(faults.length, 1);
    t.like(faults[0], { rule: 'fence:nth=1:delay=300', kind: 'fence', name: 'SUBMIT_3D' });
    t.regex(faults[0]!.detail as string, /^fence \d+ of context \d+ ring 0: signalled 300 ms after the host completes it$/);
    t.is(logs.filter((m) => m.startsWith('fault fence:nth=1:delay=300 fired')).length, 1);
  } finally {
    for (const fd of fds) u!.close(fd);
    other.close();
    node.close();
  }
});

test('in process: fence:p=P repeats with its seed and draws from its own stream (a host:…:p= rule fires as without it)', (t) => {
  /** Per submission: F when a fence rule fired on it, H when a host rule did, . when none. */
  const firings = (rules: string[], kind: string): string => {
    const events: Record<string, unknown>[] = [];
    const node = openDevice({ clients: simProvider(new SimMachine(), new Map<number, SimProcess>()), pid: 4242, binding: null, fault: rules, trace: (e) => events.push(e as unknown as Record<string, unknown>) });
    let s = '';
    for (let i = 0; i < 48; i++) {
      const n = events.length;
      t.is(node.ioctl(B.VIRTGPU_EXECBUFFER, B.execbuffer({ flags: 0 })), 0);
      s += events.slice(n).some((e) => e.t === 'fault' && e.kind === kind) ? kind[0]!.toUpperCase() : '.';
    }
    node.close();
    return s;
  };
  const host = 'host:SUBMIT_3D:p=0.5:errno=EIO';
  const fence = 'fence:p=0.5:delay=1';
  const a = firings(['seed=5', fence], 'fence'), b = firings(['seed=5', fence], 'fence'), c = firings(['seed=6', fence], 'fence');
  t.is(a, b);
  t.not(a, c);
  t.regex(a, /F/);
  t.regex(a, /\./);
  t.is(firings(['seed=5', host, fence], 'host'), firings(['seed=5', host], 'host'), 'the host rule fires on the same submissions');
});
