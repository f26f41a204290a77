// The userptr lifetime model behind both report views (cuse-dev/trace/lifetime.ts), at scale: a 100k-record
// synthetic trace gives one lifetime per create with its splits, evicts, dedup hits and deletions, and the Perfetto
// export of it passes the trace-event format check.
import test from 'ava';
import { lifetimes } from '../../cuse-dev/trace/lifetime';
import { toPerfetto } from '../../cuse-dev/trace/perfetto';
import { viewData } from '../../cuse-dev/trace/html';
import { syntheticTrace } from '../helpers/synthetic-trace';
import { checkTraceEventJson } from '../helpers/trace-event-schema';

test('100k records: one lifetime per create, every split, evict, dedup and deletion found', (t) => {
  const { trace, counts } = syntheticTrace(100_000);
  const life = lifetimes(trace.records);
  t.is(life.bos.length, counts.bos);
  const marks = (k: string): number => life.bos.reduce((n, b) => n + b.marks.filter((m) => m.kind === k).length, 0);
  t.is(marks('split'), counts.splits);
  t.is(marks('evict'), counts.evicts);
  t.is(marks('dedup'), counts.dedups);
  t.is(life.bos.filter((b) => b.deleted).length, counts.deleted);
  t.true(life.bos.filter((b) => b.marks.some((m) => m.kind === 'evict')).every((b) => b.marks.find((m) => m.kind === 'evict')!.cause !== undefined), 'every evict names the memory event that caused it');
  t.is(viewData(trace, 'x').bos.length, counts.bos);
  t.deepEqual(checkTraceEventJson(toPerfetto(trace)), []);
});
