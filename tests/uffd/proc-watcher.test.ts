// The /proc checker's walk over mapping-only ranges (uffd/proc-watcher.ts) against a scripted address space: a
// drain asks about LIGHT_PER_DRAIN of them in turn, never reads the whole maps file, finds every protection change
// within n / LIGHT_PER_DRAIN drains, and says nothing once the process is gone. Frames-too ranges are compared
// FULL_PER_DRAIN ranges / FRAMES_PER_DRAIN pages per drain in turn (all of them at each drain while they fit).
import test from 'ava';
import type { Mapping } from '../../core';
import { FRAMES_PER_DRAIN, FULL_PER_DRAIN, LIGHT_PER_DRAIN, ProcWatcher, type ProcSource } from '../../uffd/proc-watcher';

const PG = 4096;
const BASE = 0x7f0000000000;

/** A scripted process: one mapping per page, protection settable; counts what the checker asks. */
class Script implements ProcSource {
  readonly pid = 4242;
  prot = new Map<number, 'rw' | 'r'>();
  gone = false;
  fileReads = 0;
  queries = 0;
  frameReads = 0;
  constructor(pages: number) { for (let i = 0; i < pages; i++) this.prot.set(BASE + i * PG, 'rw'); }
  private map(a: number): Mapping { return { start: a, end: a + PG, read: true, write: this.prot.get(a) === 'rw', exec: false, shared: false, backing: 'anon' }; }
  mapsText(): string { this.fileReads++; return this.gone ? '' : 'unused'; }
  protections(start: number, end: number): Mapping[] | null {
    if (this.gone) return null;
    const out: Mapping[] = [];
    for (let a = start - (start % PG); a < end; a += PG) { this.queries++; if (this.prot.has(a)) out.push(this.map(a)); }
    return out;
  }
  framePages = 0;
  frames(_start: number, npages: number): Float64Array { this.frameReads++; this.framePages += npages; return new Float64Array(npages).fill(7); }
}

test('mapping-only ranges: a bounded walk per drain, every change found within n / LIGHT_PER_DRAIN drains', (t) => {
  const n = 10 * LIGHT_PER_DRAIN;
  const src = new Script(n);
  const w = new ProcWatcher(src);
  for (let i = 0; i < n; i++) w.register(i + 1, BASE + i * PG, BASE + (i + 1) * PG - 1, false);
  const q0 = src.queries;
  for (let k = 0; k < 50; k++) t.deepEqual(w.drain(), []);
  t.is(src.fileReads, 0, 'never the whole file');
  t.is(src.frameReads, 0, 'no frames for mapping-only ranges');
  t.is(src.queries - q0, 50 * LIGHT_PER_DRAIN);
  // Three changes anywhere: each seen within one full turn of the walk.
  for (const i of [0, n / 2, n - 1]) src.prot.set(BASE + i * PG, 'r');
  const seen: number[] = [];
  for (let k = 0; k < n / LIGHT_PER_DRAIN; k++) for (const e of w.drain()) { t.is(e.event, 'PROTECTION_VMA'); seen.push((e.start - BASE) / PG); }
  t.deepEqual(seen.sort((a, b) => a - b), [0, n / 2, n - 1]);
  for (let k = 0; k < n / LIGHT_PER_DRAIN; k++) t.deepEqual(w.drain(), [], 'reported once');
  // Gone: nothing is reported (an exited process has no maps; that is RELEASE, never UNMAP).
  src.gone = true;
  for (let k = 0; k < n / LIGHT_PER_DRAIN; k++) t.deepEqual(w.drain(), []);
  w.release();
});

test('up to LIGHT_PER_DRAIN ranges: a change is seen at the very next drain; frames-too ranges are all compared each time', (t) => {
  const src = new Script(LIGHT_PER_DRAIN + 2);
  const w = new ProcWatcher(src);
  for (let i = 0; i < LIGHT_PER_DRAIN; i++) w.register(i + 1, BASE + i * PG, BASE + (i + 1) * PG - 1, false);
  w.register(100, BASE + LIGHT_PER_DRAIN * PG, BASE + (LIGHT_PER_DRAIN + 2) * PG - 1, true);
  t.is(w.registrations(), LIGHT_PER_DRAIN + 1);
  t.deepEqual([...w.ids()], [100, ...Array.from({ length: LIGHT_PER_DRAIN }, (_, i) => i + 1)]);
  const f0 = src.frameReads;
  t.deepEqual(w.drain(), []);
  t.is(src.frameReads - f0, 1);
  src.prot.set(BASE + (LIGHT_PER_DRAIN - 1) * PG, 'r');
  t.like(w.drain()[0], { event: 'PROTECTION_VMA', start: BASE + (LIGHT_PER_DRAIN - 1) * PG });
  src.prot.delete(BASE + (LIGHT_PER_DRAIN + 1) * PG); // a page of the frames-too range unmapped
  t.like(w.drain()[0], { event: 'UNMAP', start: BASE + (LIGHT_PER_DRAIN + 1) * PG });
  // Moving a range between the kinds keeps it registered once.
  w.setFramesToo(100, false);
  w.setFramesToo(1, true);
  t.is(w.registrations(), LIGHT_PER_DRAIN + 1);
  t.deepEqual(w.range(100), [BASE + LIGHT_PER_DRAIN * PG, BASE + (LIGHT_PER_DRAIN + 2) * PG - 1]);
  w.unregister(100);
  t.false(w.has(100));
  t.is(src.fileReads, 0);
  w.release();
});

test('frames-too ranges beyond the budget: at most FULL_PER_DRAIN ranges and FRAMES_PER_DRAIN pages per drain (one range at least), every change within one turn', (t) => {
  // 3 × FULL_PER_DRAIN one-page ranges, then two ranges bigger than the page budget, then 3 one-page ranges again.
  const small = 3 * FULL_PER_DRAIN, big = FRAMES_PER_DRAIN + 1;
  const layout: number[] = [...Array<number>(small).fill(1), big, big, 1, 1, 1];
  const src = new Script(layout.reduce((a, b) => a + b, 0));
  const w = new ProcWatcher(src);
  const starts: number[] = [];
  let at = BASE;
  layout.forEach((pages, i) => { starts.push(at); w.register(i + 1, at, at + pages * PG - 1, true); at += pages * PG; });
  const turn = Math.ceil(small / FULL_PER_DRAIN) + 3; // drains per turn of the walk, with room
  for (let k = 0; k < 3 * turn; k++) {
    const r0 = src.frameReads, p0 = src.framePages;
    t.deepEqual(w.drain(), []);
    const ranges = src.frameReads - r0, pages = src.framePages - p0;
    t.true(ranges >= 1 && ranges <= FULL_PER_DRAIN, `ranges ${ranges}`);
    t.true(pages <= FRAMES_PER_DRAIN || ranges === 1, `pages ${pages} over ${ranges} ranges`);
  }
  t.is(src.fileReads, 0);
  // An unmapped page in the first small range, in each big one and in the last range: all seen within one turn.
  const hit = [0, small, small + 1, layout.length - 1];
  for (const i of hit) src.prot.delete(starts[i]!);
  const seen = new Set<number>();
  for (let k = 0; k < turn; k++) for (const e of w.drain()) { t.is(e.event, 'UNMAP'); seen.add(starts.indexOf(e.start)); }
  t.deepEqual([...seen].sort((a, b) => a - b), hit);
  w.release();
});
