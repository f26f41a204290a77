// `report TRACE --perfetto OUT.json` on the demo session recorded over the real FUSE node (as `npm start` runs it):
// the output passes the trace-event format check (tests/helpers/trace-event-schema.ts) and holds what the view
// promises — a slice per ioctl on the client's thread, instants for notifier events and work items, the host's
// track, one flow per userptr BO bound inside a slice, counters back to zero.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { readTrace } from '../../cuse-dev/trace/reader';
import { HOST_PID, SERVER_PID, type PerfettoJson } from '../../cuse-dev/trace/perfetto';
import { checkTraceEventJson } from '../helpers/trace-event-schema';
import { cli, recordDemo } from '../helpers/demo-trace';

const fuse = probeFuse();
const maybe = fuse.ok ? test : test.skip;
const skipWhy = fuse.ok ? '' : ` (skipped: ${fuse.reason})`;

test('the schema check catches what it is written for', (t) => {
  t.deepEqual(checkTraceEventJson({ traceEvents: [] }), []);
  const bad = checkTraceEventJson({ traceEvents: [
    { ph: 'X', name: 'a', pid: 1, tid: 1, ts: 0, dur: 10 }, { ph: 'X', name: 'b', pid: 1, tid: 1, ts: 5, dur: 10 },
    { ph: 'Q', name: 'q', pid: 1, tid: 1, ts: 0 }, { ph: 'C', name: 'c', pid: 1, tid: 1, ts: 0, args: { v: 'x' } },
    { ph: 's', name: 'f', cat: 'c', id: 1, pid: 1, tid: 1, ts: 0 }, { ph: 'M', name: 'thread_name', pid: 1, tid: 1, args: {} },
    { ph: 'i', name: 'i', pid: 1.5, tid: 1, ts: -1 },
  ], displayTimeUnit: 's' });
  for (const m of [/overlaps event 0 without nesting/, /unknown ph "Q"/, /counter series v must be a number/, /phases s, expected/, /thread_name needs args.name/, /pid must be an integer/, /ts must be a number/, /displayTimeUnit/]) {
    t.true(bad.some((b) => m.test(b)), `${m} in ${bad.join('; ')}`);
  }
});

maybe(`the demo session's Perfetto JSON is valid trace-event JSON with slices, instants, the host track, flows and counters${skipWhy}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-perfetto-'));
  const { trace } = await recordDemo(dir);
  const out = path.join(dir, 'demo.json');
  const r = await cli(['report', trace, '--perfetto', out]);
  t.is(r.code, 0, r.stderr);
  const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as PerfettoJson;
  t.deepEqual(checkTraceEventJson(doc), []);
  const tr = readTrace(trace);
  const ev = doc.traceEvents;
  const count = (t0: string): number => tr.records.filter((x) => x.t === t0).length;
  const pid = (tr.records.find((x) => x.t === 'ioctl') as unknown as { pid: number }).pid;
  const slices = ev.filter((e) => e.ph === 'X');
  const ioctls = slices.filter((e) => e.cat === 'ioctl');
  t.is(ioctls.length, count('ioctl'));
  t.true(ioctls.every((e) => e.pid === pid && e.tid === pid));
  t.true(slices.every((e) => e.cat === 'ioctl' || (e.cat === 'outside' && e.pid === pid)), 'the other slices: runs of memory events outside a request');
  t.true(slices.some((e) => e.name === 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB' && (e.args!.out as { bo_handle: number }).bo_handle === 1));
  t.is(ev.filter((e) => e.ph === 'i' && e.cat === 'notifier').length, count('notifier'));
  t.is(ev.filter((e) => e.ph === 'i' && e.cat === 'work').length, count('work'));
  const host = ev.filter((e) => e.cat === 'host');
  t.is(host.length, count('host'));
  t.true(host.every((e) => e.pid === HOST_PID && e.tid === 1));
  t.true(ev.some((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === HOST_PID && (e.args!.name as string) === 'host commands'));
  // One flow per userptr BO (the demo makes two), each step inside a slice on its thread (where the UI binds it).
  const starts = ev.filter((e) => e.ph === 's');
  t.is(starts.length, 2);
  const inSlice = (e: { pid: number; tid: number; ts?: number }): boolean => slices.some((s) => s.pid === e.pid && s.tid === e.tid && s.ts! <= e.ts! && e.ts! <= s.ts! + s.dur!);
  for (const e of ev.filter((x) => x.ph === 's' || x.ph === 't' || x.ph === 'f')) t.true(inSlice(e), `flow ${e.ph} of ${e.name} at ${e.ts} is inside a slice of its thread`);
  // The split BO's flow passes its UPDATE, the evicted one's its EVICT.
  const steps = ev.filter((e) => e.ph === 't' && e.id === 1).map((e) => e.ts);
  const update = ev.find((e) => e.cat === 'work' && (e.args!.op as string) === 'UPDATE')!;
  const evict = ev.find((e) => e.cat === 'work' && (e.args!.op as string) === 'EVICT')!;
  t.true(steps.includes(update.ts) && steps.includes(evict.ts));
  const last = (name: string): Record<string, unknown> => ev.filter((e) => e.ph === 'C' && e.name === name && e.pid === SERVER_PID).at(-1)!.args!;
  t.deepEqual(last('live userptr BOs'), { bos: 0 });
  t.deepEqual(last('pinned pages'), { pages: 0 });
  t.is(Math.max(...ev.filter((e) => e.ph === 'C' && e.name === 'pinned pages').map((e) => e.args!.pages as number)), 16, 'the 16-page BO pinned whole');
  fs.rmSync(dir, { recursive: true, force: true });
});
