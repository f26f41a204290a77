// --fault through the real FUSE node with the unmodified demo client (libdrm): each rule kind's client-visible effect
// and its trace record; the grammar's refusals (exit code 2); the same rules in process, the random ones repeatable.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { readTrace } from '../../cuse-dev/trace/reader';
import { FaultRuleError, parseFaultRule, parseFaults } from '../../cuse-dev/fault/rules';
import { openDevice } from '../../cuse-dev/transport/in-process';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
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
    ['fence:delay=5', /needs fences, which this build does not have yet/],
    ['bogus', /unknown rule kind "bogus"/],
  ] as const) {
    t.throws(() => parseFaultRule(rule), { instanceOf: FaultRuleError, message: msg });
  }
  const r = await cli(['serve', '--fault', 'ioctl:GETPARAM:p=2:errno=EIO']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--fault ioctl:GETPARAM:p=2:errno=EIO: p must be in \(0, 1\]/);
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
