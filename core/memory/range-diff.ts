// The /proc checker's rule as a pure function (shared by the real ProcWatcher and the simulator):
// compare what a registered range looked like at the last check with what it looks like now.
import { NOT_PRESENT, PAGE_SIZE, type Mapping, type NotifierEvent } from './client-memory';

export interface RangeState {
  start: number;
  /** Protection key per page ('' = unmapped), e.g. "rw-p". */
  prot: string[];
  frames: Float64Array;
}

export function protKey(m: Mapping | undefined): string {
  if (!m) return '';
  return (m.read ? 'r' : '-') + (m.write ? 'w' : '-') + (m.exec ? 'x' : '-') + (m.shared ? 's' : 'p');
}

export function captureRange(start: number, npages: number, maps: Mapping[], frames: Float64Array): RangeState {
  const prot: string[] = new Array(npages);
  let mi = 0;
  for (let i = 0; i < npages; i++) {
    const a = start + i * PAGE_SIZE;
    while (mi < maps.length && maps[mi].end <= a) mi++;
    const m = mi < maps.length && maps[mi].start <= a ? maps[mi] : undefined;
    prot[i] = protKey(m);
  }
  return { start, prot, frames };
}

/**
 * Events for what changed (docs/semantics.md §4 rows for the /proc checker): mapping gone → UNMAP; protection changed →
 * PROTECTION_VMA; frame changed or not present → CLEAR (only when `framesToo`, i.e. no userfaultfd covers it).
 * Adjacent pages with the same verdict are merged into one event.
 */
export function diffRange(before: RangeState, now: RangeState, framesToo: boolean): NotifierEvent[] {
  const out: NotifierEvent[] = [];
  const n = before.prot.length;
  let cur: NotifierEvent | null = null;
  for (let i = 0; i < n; i++) {
    const a = before.start + i * PAGE_SIZE;
    let ev: NotifierEvent['event'] | null = null;
    if (before.prot[i] !== '' && now.prot[i] === '') ev = 'UNMAP';
    else if (before.prot[i] !== now.prot[i]) ev = 'PROTECTION_VMA';
    else if (framesToo && now.prot[i] !== '' && (now.frames[i] === NOT_PRESENT || now.frames[i] !== before.frames[i])) ev = 'CLEAR';
    if (ev && cur && cur.event === ev && cur.end === a) { cur.end = a + PAGE_SIZE; continue; }
    if (cur) { out.push(cur); cur = null; }
    if (ev) cur = ev === 'CLEAR' ? { event: ev, start: a, end: a + PAGE_SIZE, removed: true, note: '/proc: frame changed or not present' } : { event: ev, start: a, end: a + PAGE_SIZE };
  }
  if (cur) out.push(cur);
  return out;
}
