// The trace format (docs/trace-format.md): the writer's header, sequence numbers, clocks, calling threads and end
// record; the reader's refusals (no header, unknown version, torn or missing lines, no end) and the CLI's exit code 2;
// a real trace recorded over FUSE from the demo client.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
import { makeDevice, type ProviderChoice } from '../../cli/compose';
import { JsonlSink } from '../../cuse-dev/trace/jsonl';
import { parseTrace, readTrace, TraceFormatError } from '../../cuse-dev/trace/reader';
import { TRACE_FORMAT, TRACE_VERSION } from '../../cuse-dev/trace/schema';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { cli, recordDemo } from '../helpers/demo-trace';

const fuse = probeFuse();
const maybe = fuse.ok ? test : test.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

function tmp(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-trace-')); }

/** A traced device over simulated memory: a log line before the device exists, two ioctls (one with a caller). */
function written(): string {
  const dir = tmp();
  const file = path.join(dir, 't.jsonl');
  const sink = new JsonlSink(file, { transport: 'fuse', watch: 'none', inject: false });
  sink.write({ t: 'log', msg: 'before the device' });
  const provider: ProviderChoice = { provider: simProvider(new SimMachine(), new Map<number, SimProcess>()), watcher: 'sim', reasons: [] };
  const { device } = makeDevice({ mode: 'notifier', watch: 'none' }, (ev) => sink.write(ev), undefined, provider);
  sink.setCaller(4321);
  const f = device.open(1000);
  sink.setCaller(0);
  f.ioctl(1000, 0xc0106443 /* GETPARAM */, new Uint8Array(16));
  f.close();
  sink.close();
  return fs.readFileSync(file, 'utf8');
}

test('the writer: header first (format, version, revision, mode, profile, options), seq 0,1,2… with no gap, monotonic clock, end record', (t) => {
  const lines = written().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(lines[0], { t: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, seq: 0, mono: 0, uapi: 'v1', mode: 'notifier', profile: 'hsakmt', options: { transport: 'fuse', watch: 'none', inject: false } });
  t.like(lines[1], { t: 'log', msg: 'before the device', seq: 1 }, 'what came before the device waited for the header, in its order');
  t.like(lines[2], { t: 'device', seq: 2 });
  lines.forEach((l, i) => { t.is(l.seq, i); t.is(typeof l.ts, 'number'); });
  for (let i = 1; i < lines.length; i++) t.true((lines[i]!.mono as number) >= (lines[i - 1]!.mono as number));
  t.like(lines.find((l) => l.t === 'file' && l.op === 'open'), { tid: 4321 }, 'the open carries its calling thread');
  t.false('tid' in lines.find((l) => l.t === 'ioctl')!, 'no caller set: no tid');
  t.like(lines.at(-1), { t: 'end', records: lines.length - 2 });
  const tr = parseTrace(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  t.is(tr.records.length, lines.length - 2);
  t.true(tr.complete);
});

test('the reader refuses a trace it cannot trust, naming the line', (t) => {
  const good = written();
  const ls = good.split('\n');
  const bad = (text: string, msg: RegExp) => t.throws(() => parseTrace(text, 'x.jsonl'), { instanceOf: TraceFormatError, message: msg });
  bad('', /empty file/);
  bad(good.slice(0, -5), /truncated: the last line \(\d+\) has no end of line/);
  bad(ls.slice(1).join('\n'), /line 1 is not a virtgpu-emu-trace header \(traces written before schema version 1/);
  bad('{"ts":1,"t":"device","uapi":"v1"}\n', /line 1 is not a virtgpu-emu-trace header/);
  bad(good.replace('"version":1', '"version":2'), /unsupported trace schema version 2: this build reads versions 1\.\.1/);
  bad([ls[0], ...ls.slice(2)].join('\n'), /line 2 has seq 2, expected 1/);
  bad([ls[0], ls[1], '{"seq":2', ...ls.slice(3)].join('\n'), /corrupt: line 3 is not JSON/);
  bad([ls[0], ls[1], '[1]', ...ls.slice(3)].join('\n'), /line 3 is not a trace record/);
  const ioctlAt = ls.findIndex((l) => l.includes('"t":"ioctl"'));
  bad(ls.map((l, i) => (i === ioctlAt ? l.replace(/"cmd":\d+/, '"cmd":"x"') : l)).join('\n'), new RegExp(`corrupt: line ${ioctlAt + 1}: a "ioctl" record needs cmd \\(a number\\)`));
  const noEnd = ls.slice(0, -2).join('\n') + '\n';
  bad(noEnd, /truncated: no end record .*--partial/);
  t.false(parseTrace(noEnd, 'x', { partial: true }).complete);
  t.throws(() => readTrace('/nonexistent/trace.jsonl'), { instanceOf: TraceFormatError, message: /cannot read/ });
});

test('report: a corrupt trace, an unsupported version, a bad option → exit code 2 with the reason', async (t) => {
  const dir = tmp();
  const corrupt = path.join(dir, 'c.jsonl');
  fs.writeFileSync(corrupt, written().replace('"seq":3', '"seq":7'));
  let r = await cli(['report', corrupt]);
  t.is(r.code, 2);
  t.regex(r.stderr, /c\.jsonl: corrupt: line 4 has seq 7, expected 3/);
  const v9 = path.join(dir, 'v9.jsonl');
  fs.writeFileSync(v9, written().replace('"version":1', '"version":9'));
  r = await cli(['report', v9]);
  t.is(r.code, 2);
  t.regex(r.stderr, /unsupported trace schema version 9/);
  r = await cli(['report', v9, '--svg', 'x']);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown report option --svg/);
  fs.rmSync(dir, { recursive: true, force: true });
});

maybe(`a real trace: the demo client over FUSE; its ioctls carry its pid and thread, report reads it${skipWhy}`, async (t) => {
  const dir = tmp();
  const { trace, run } = await recordDemo(dir);
  const tr = readTrace(trace);
  t.like(tr.header, { uapi: 'v1', mode: 'notifier', profile: 'hsakmt', options: { transport: 'fuse' } });
  const pid = Number(/this process \(pid (\d+)\)/.exec(run.stdout)![1]);
  const ioctls = tr.records.filter((r) => r.t === 'ioctl');
  t.true(ioctls.length >= 10);
  for (const r of ioctls) t.like(r, { pid, tid: pid }, 'the single-threaded demo: thread = process');
  const rep = await cli(['report', trace]);
  t.is(rep.code, 0);
  t.regex(rep.stderr, /trace schema 1: uapi v1 mode notifier profile hsakmt, \d+ records: .*ioctl=\d+/);
  fs.rmSync(dir, { recursive: true, force: true });
});
