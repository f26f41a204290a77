// The log limiter: once per key, once per errno class of a file with counts, a token bucket over every line, bounded
// state, summaries at file close and at stop. A fake clock drives the bucket.
import test from 'ava';
import { LogLimiter, type LogLimitOptions } from '../../core';
import { Harness } from '../helpers/core-harness';

function make(o: Partial<LogLimitOptions> = {}) {
  const lines: string[] = [];
  let t = 0;
  const l = new LogLimiter({ sink: (m) => lines.push(m), now: () => t, ...o });
  return { l, lines, advance: (ms: number) => { t += ms; } };
}

test('once: the first line of a key goes out, repeats are counted and summarized by kind at stop', (t) => {
  const { l, lines } = make();
  for (let i = 0; i < 1000; i++) { l.once('enosys:5', 'op 5 not implemented'); l.once('short', 'short request'); }
  t.deepEqual(lines, ['op 5 not implemented', 'short request']);
  l.stop();
  t.deepEqual(lines.slice(2), ['log: repeated messages suppressed: enosys 999, short 999']);
  t.deepEqual(l.stats, { emitted: 3, suppressed: 1998, rateLimited: 0 });
});

test('once: the key set is bounded; new keys beyond it are counted by kind, never relogged', (t) => {
  const { l, lines } = make({ maxKeys: 10, burst: 1000 });
  for (let round = 0; round < 3; round++) for (let i = 0; i < 100; i++) l.once(`bug:${i}`, `bug ${i}`);
  t.is(lines.length, 10, 'only the first 10 keys are ever logged');
  l.stop();
  t.is(lines[10], 'log: repeated messages suppressed: bug 290');
});

test('fileError: one line per errno class and file, a summary with counts at close, state dropped', (t) => {
  const { l, lines } = make({ burst: 1000 });
  for (let i = 0; i < 1_000_000; i++) l.fileError(3, 123, i % 5 === 0 ? 'ENOTTY' : i % 7 === 0 ? 'EFAULT' : 'EINVAL', `file 3: error ${i}`);
  l.fileError(4, 124, 'EINVAL', 'file 4: first');
  t.deepEqual(lines, ['file 3: error 0', 'file 3: error 1', 'file 3: error 7', 'file 4: first']);
  t.is(l.trackedFiles(), 2);
  l.closeFile(3);
  t.is(lines[4], 'file 3 pid 123: 999,997 further ioctl errors suppressed: EINVAL 685,713, ENOTTY 199,999, EFAULT 114,285');
  t.is(l.trackedFiles(), 1);
  l.closeFile(4); // nothing suppressed there: no line
  t.is(lines.length, 5);
  t.is(l.trackedFiles(), 0);
  l.fileError(3, 125, 'EINVAL', 'file 3 again'); // a new file with a reused id starts afresh
  t.is(lines[5], 'file 3 again');
});

test('fileError: errno classes per file are bounded (the rest counts as other)', (t) => {
  const { l, lines } = make({ burst: 1000, maxClasses: 4 });
  for (let i = 0; i < 100; i++) l.fileError(1, 9, `E${i}`, `e${i}`);
  t.is(lines.length, 4);
  l.closeFile(1);
  t.is(lines[4], 'file 1 pid 9: 96 further ioctl errors suppressed: other 96');
});

test('the token bucket: at most burst lines at once, then rate per second; the next line tells how many were held back', (t) => {
  const { l, lines, advance } = make({ rate: 10, burst: 5 });
  for (let i = 0; i < 50; i++) l.line(`l${i}`);
  t.deepEqual(lines, ['l0', 'l1', 'l2', 'l3', 'l4']);
  advance(250); // 2.5 tokens
  for (let i = 50; i < 60; i++) l.line(`l${i}`);
  t.deepEqual(lines.slice(5), ['l50 [45 earlier lines held back by the log rate limit]', 'l51']);
  advance(10_000); // refills to the burst, never beyond
  for (let i = 60; i < 70; i++) l.line(`l${i}`);
  t.is(lines.length, 7 + 5);
  t.regex(lines[7]!, /^l60 \[8 earlier lines/);
  t.deepEqual(l.stats, { emitted: 12, suppressed: 58, rateLimited: 58 });
  l.stop();
  t.is(lines.at(-1), 'log: 5 lines held back by the rate limit (10/s, burst 5)');
});

test('a file summary the bucket refuses is folded into the stop summary; files still open are summarized at stop', (t) => {
  const { l, lines } = make({ rate: 1, burst: 2 });
  for (let i = 0; i < 10; i++) l.fileError(1, 11, 'EINVAL', `f1 ${i}`);
  for (let i = 0; i < 10; i++) l.fileError(2, 12, 'ENOTTY', `f2 ${i}`);
  for (let i = 0; i < 10; i++) l.fileError(3, 13, 'EFAULT', `f3 ${i}`); // bucket empty: first line held back
  t.deepEqual(lines, ['f1 0', 'f2 0']);
  l.closeFile(1); // refused by the bucket
  l.stop();
  t.deepEqual(lines.slice(2), [
    'file 2 pid 12: 9 further ioctl errors suppressed: ENOTTY 9 [2 earlier lines held back by the log rate limit]',
    'file 3 pid 13: 9 further ioctl errors suppressed: EFAULT 9',
    'log: summaries of 1 closed files held back by the rate limit: EINVAL 9 further errors',
  ]);
  l.stop();
  t.is(lines.length, 5, 'stop is idempotent');
});

test('core: a fuzzing client gets one line per errno class and a count at close, through the device', (t) => {
  const lines: string[] = [];
  const h = new Harness({ log: (s) => lines.push(s) });
  const p = h.proc();
  const f = h.open(p);
  const bad = new Uint8Array(8);
  // Unknown nrs, every direction: EACCES or EINVAL each time (drm_ioctl's permit check and unknown nr).
  const classes = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const r = h.ioctl(f, p, ((i % 4) << 30 | 8 << 16 | 0x64 << 8 | (0xd0 + (i % 32))) >>> 0, bad);
    classes.set(String(r.ret), (classes.get(String(r.ret)) ?? 0) + 1);
  }
  t.is(lines.length, classes.size, lines.join('\n'));
  h.dev.closeFile(f);
  const counts = [...classes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${(n - 1).toLocaleString('en-US')}`).join(', ');
  t.is(lines.at(-1), `file ${f.id} pid ${p.pid}: ${(20_000 - classes.size).toLocaleString('en-US')} further ioctl errors suppressed: ${counts}`);
  h.dev.shutdown();
  t.is(lines.length, classes.size + 1, 'nothing else to tell at stop');
});
