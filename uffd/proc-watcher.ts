// ProcWatcher: the /proc checker of one client process, for what no userfaultfd reports, and the range-diff events
// it finds (core/memory/range-diff.ts): mapping gone → UNMAP, protection changed → PROTECTION_VMA, frame changed or
// not present → CLEAR (frames only where no userfaultfd covers the range). Two kinds of registration:
// - frames too (no userfaultfd covers the range): each drain() (= each ioctl entry of that client, docs/semantics.md §5) reads
//   the mappings and /proc/PID/pagemap of the next such ranges in turn, FULL_PER_DRAIN (16) of them and FRAMES_PER_DRAIN
//   (1024) pages at most (one range at least, whatever its size), the timer all of them — the approximate /proc mode:
//   a change is seen at the next ioctl while that covers them all, else within one turn of the walk;
// - mappings only (a userfaultfd covers the range, which reports unmap and removal; only a protection change is left
//   to see): each drain() asks the kernel about the next LIGHT_PER_DRAIN (4) of them in turn (PROCMAP_QUERY of that range
//   only; ranges inside one VMA share one query), the timer LIGHT_PER_TICK: a drain costs the same with 10 or 10,000
//   registrations, and a protection change is seen within ceil(n / LIGHT_PER_DRAIN) ioctls of the client (at its
//   next one while n <= LIGHT_PER_DRAIN) or the timer's pass. Outcomes do not depend on when: an EVICT it queues
//   finds frames unchanged unless a page went away, which the userfaultfd reports by itself.
// Mappings of a range are asked for that range only (src.protections: PROCMAP_QUERY); the whole maps file is read
// only on kernels without it (once per check), or by a timer pass over more frames-too ranges than FULL_PER_DRAIN.
import { NOT_PRESENT, PAGE_SIZE, type Mapping, type NotifierEvent } from '../core/memory/client-memory';
import { captureRange, diffRange, type RangeState } from '../core/memory/range-diff';
import { parseMaps } from './proc-maps';

/** What the checker needs from the process (ProcessMemory provides it). */
export interface ProcSource {
  readonly pid: number;
  mapsText(): string;
  /** Mappings of [start, end) with their protection (asked for that range only); null once the process is gone. */
  protections?(start: number, end: number): Mapping[] | null;
  frames(start: number, npages: number): Float64Array;
  /** A new ioctl entry or timer pass: answers kept for the last ioctl's queries are asked again. */
  forget?(): void;
}

/**
 * maps: the range's mappings at the last check; the same layout clipped to the range (sameLayout) and equal frames
 * = nothing to diff.
 * The per-page state (captureRange: a protection per page) is built only when a diff needs it: a registration
 * keeps its mappings and, where compared, its frames (one Float64Array), so watching a 4 GiB range costs no
 * per-page objects while nothing changes.
 */
interface Reg { id: number; start: number; npages: number; framesToo: boolean; maps: Layout; frames: Float64Array | null }

/**
 * A range's mappings as last seen: the protection bits (protBits) when one VMA covered the whole range (the common
 * case: no Mapping object kept per registration), else the mappings.
 */
type Layout = Mapping[] | number;
const protBits = (m: Mapping): number => (m.read ? 1 : 0) | (m.write ? 2 : 0) | (m.exec ? 4 : 0) | (m.shared ? 8 : 0);
function compact(maps: Mapping[], start: number, end: number): Layout {
  return maps.length === 1 && maps[0]!.start <= start && maps[0]!.end >= end ? protBits(maps[0]!) : maps;
}
function expand(l: Layout, start: number, end: number): Mapping[] {
  return typeof l !== 'number' ? l : [{ start, end, read: (l & 1) !== 0, write: (l & 2) !== 0, exec: (l & 4) !== 0, shared: (l & 8) !== 0, backing: 'anon' }];
}

export interface ProcWatcherOptions {
  /** Check on a timer too (ms; 0 = only at drain). Found events are queued and onPending is called. */
  intervalMs?: number;
  onPending?: () => void;
}

/** Mapping-only ranges asked about per drain() and per timer tick. */
export const LIGHT_PER_DRAIN = 4;
const LIGHT_PER_TICK = 256;
/** Frames-too ranges compared per drain() at most, and their pages (one range at least). */
export const FULL_PER_DRAIN = 16;
export const FRAMES_PER_DRAIN = 1024;
/** Everything (a timer pass, a direct check()). */
const ALL = { ranges: Infinity, pages: Infinity };
const DRAIN = { ranges: FULL_PER_DRAIN, pages: FRAMES_PER_DRAIN };

export class ProcWatcher {
  /** Frames-too ranges, in registration order; `fullCursor` walks them a bounded number per drain. */
  private readonly full = new Map<number, Reg>();
  private fullCursor: IterableIterator<[number, Reg]> | null = null;
  private fullHeld: Reg | null = null;
  /** Pages of the frames-too ranges. */
  private fullPages = 0;
  /** Mapping-only ranges, in registration order; `cursor` walks them a few per drain. */
  private readonly light = new Map<number, Reg>();
  private cursor: IterableIterator<[number, Reg]> | null = null;
  private queue: NotifierEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly onPending?: () => void;
  checks = 0;
  pagesChecked = 0;
  /** Ranges whose mappings were compared (tests: a drain with nothing registered frames-too compares at most LIGHT_PER_DRAIN). */
  rangesChecked = 0;

  constructor(private readonly src: ProcSource, opts: ProcWatcherOptions = {}) {
    this.onPending = opts.onPending;
    if (opts.intervalMs && opts.intervalMs > 0) {
      this.timer = setInterval(() => this.tick(), opts.intervalMs);
      this.timer.unref();
    }
  }

  /** framesToo: compare frames (no userfaultfd covers the range) or only mappings (gone, protection). */
  register(id: number, start: number, last: number, framesToo: boolean): void {
    const npages = (last + 1 - start) / PAGE_SIZE;
    const maps = compact(this.mappingsOf(start, last + 1) ?? [], start, last + 1);
    // a re-registered id goes last, as after unregister + register (the diff's event order)
    this.unregister(id);
    (framesToo ? this.full : this.light).set(id, { id, start, npages, framesToo, maps, frames: framesToo ? this.src.frames(start, npages) : null });
    if (framesToo) this.fullPages += npages;
  }

  unregister(id: number): void {
    const r = this.full.get(id);
    if (r) { this.full.delete(id); this.fullPages -= r.npages; } else this.light.delete(id);
  }
  registrations(): number { return this.full.size + this.light.size; }
  has(id: number): boolean { return this.full.has(id) || this.light.has(id); }
  /** The registered ids: frames-too ranges, then mapping-only ones, each in registration order. */
  *ids(): IterableIterator<number> { yield* this.full.keys(); yield* this.light.keys(); }
  /** [start, last] of a registration. */
  range(id: number): [number, number] | null { const r = this.full.get(id) ?? this.light.get(id); return r ? [r.start, r.start + r.npages * PAGE_SIZE - 1] : null; }

  /** Switch a range to mapping-only checks (a userfaultfd now covers it) or back. */
  setFramesToo(id: number, framesToo: boolean): void {
    const from = framesToo ? this.light : this.full;
    const r = from.get(id);
    if (!r) return;
    from.delete(id);
    this.fullPages += framesToo ? r.npages : -r.npages;
    r.framesToo = framesToo;
    r.frames = framesToo ? this.src.frames(r.start, r.npages) : null;
    (framesToo ? this.full : this.light).set(id, r);
  }

  private state(r: Reg, maps: Mapping[], frames: Float64Array | null): RangeState {
    return captureRange(r.start, r.npages, maps, frames ?? new Float64Array(r.npages));
  }

  /** Mappings of [start, end) from the kernel for that range (or the maps text); null: the process is gone. */
  private mappingsOf(start: number, end: number): Mapping[] | null {
    if (this.src.protections) return this.src.protections(start, end);
    const text = this.src.mapsText();
    return text === '' ? null : parseMaps(text, start, end);
  }

  /**
   * One check: every frames-too range, and `lightBudget` mapping-only ones from where the last check stopped
   * (Infinity: all of them). Process gone: nothing (exit tears the mm down without unmapping: RELEASE, not UNMAP).
   */
  check(lightBudget = Infinity, full: { ranges: number; pages: number } = ALL): void {
    if (this.full.size === 0 && this.light.size === 0) return;
    this.checks++;
    if (this.full.size > 0 && !this.checkFull(full)) return;
    if (this.light.size > 0) this.checkLight(Math.min(lightBudget, this.light.size));
  }

  /** The next frames-too ranges within the budget (all of them: in registration order); false when the process is gone. */
  private checkFull(budget: { ranges: number; pages: number }): boolean {
    const every = budget.ranges >= this.full.size && budget.pages >= this.fullPages;
    const regs: Reg[] = [];
    if (every) { for (const r of this.full.values()) regs.push(r); this.fullCursor = null; }
    else {
      for (let pages = 0; regs.length < budget.ranges && (regs.length === 0 || pages < budget.pages);) {
        const r = this.nextFull();
        if (!r) break;
        // over the page budget (or round already): it starts the next drain's share
        if (regs.length > 0 && (regs.includes(r) || pages + r.npages > budget.pages)) { this.fullHeld = r; break; }
        regs.push(r);
        pages += r.npages;
      }
    }
    let all: Mapping[] | null = null;
    if (regs.length > FULL_PER_DRAIN || !this.src.protections) {
      const text = this.src.mapsText();
      if (text === '') return false;
      let lo = Infinity, hi = 0;
      for (const r of regs) { lo = Math.min(lo, r.start); hi = Math.max(hi, r.start + r.npages * PAGE_SIZE); }
      all = parseMaps(text, lo, hi); // lines outside the compared span are skipped unparsed
    }
    for (const r of regs) {
      const end = r.start + r.npages * PAGE_SIZE;
      const maps = all ? sliceMaps(all, r.start, end) : this.src.protections!(r.start, end);
      if (!maps) return false;
      const frames = this.src.frames(r.start, r.npages);
      this.pagesChecked += r.npages;
      this.compare(r, maps, frames);
    }
    return true;
  }

  /** `n` mapping-only ranges in turn; consecutive ranges inside one VMA share its query. */
  private checkLight(n: number): void {
    let vma: Mapping[] | null = null;
    for (let k = 0; k < n; k++) {
      let step = this.cursor?.next();
      if (!step || step.done) { this.cursor = this.light.entries(); step = this.cursor.next(); if (step.done) return; }
      const r = step.value[1];
      const end = r.start + r.npages * PAGE_SIZE;
      this.rangesChecked++;
      // The last answer was one VMA holding this whole range too: the same answer, no second query.
      let maps: Mapping[] | null;
      if (vma && vma.length === 1 && vma[0]!.start <= r.start && vma[0]!.end >= end) maps = vma;
      else {
        maps = this.mappingsOf(r.start, end);
        if (!maps) return;
        vma = maps;
      }
      this.compare(r, sliceMaps(maps, r.start, end), null);
    }
  }

  /** The next frames-too range of the walk: the one a drain's budget left over, else the cursor's next (wrapping). */
  private nextFull(): Reg | null {
    const held = this.fullHeld;
    this.fullHeld = null;
    if (held && this.full.get(held.id) === held) return held;
    let step = this.fullCursor?.next();
    if (!step || step.done) { this.fullCursor = this.full.entries(); step = this.fullCursor.next(); if (step.done) return null; }
    return step.value[1];
  }

  /** Diff a range against what it looked like at its last check; queue the events and keep the new state. */
  private compare(r: Reg, maps: Mapping[], frames: Float64Array | null): void {
    const end = r.start + r.npages * PAGE_SIZE;
    // Fast path (the common case): same mappings and, where compared, the same present frames → no event.
    if (sameLayout(maps, r.maps, r.start, end) && (!frames || (r.frames && sameFrames(frames, r.frames)))) return;
    const before = this.state(r, expand(r.maps, r.start, end), r.frames), now = this.state(r, maps, frames);
    for (const e of diffRange(before, now, r.framesToo)) this.queue.push(e.note ? e : { ...e, note: '/proc' });
    r.maps = compact(maps, r.start, end);
    r.frames = frames;
  }

  private tick(): void {
    this.src.forget?.();
    const had = this.queue.length;
    try { this.check(LIGHT_PER_TICK); } catch { /* process gone: the exit check reports it */ }
    if (this.queue.length > had) this.onPending?.();
  }

  /** The queued events, after one check (check = false: none, e.g. at a uffd wake-up). */
  drain(check = true): readonly NotifierEvent[] {
    this.src.forget?.();
    if (check) this.check(LIGHT_PER_DRAIN, DRAIN);
    if (this.queue.length === 0) return EMPTY;
    const q = this.queue;
    this.queue = [];
    return q;
  }

  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.full.clear();
    this.light.clear();
    this.cursor = null;
    this.fullCursor = null;
    this.fullHeld = null;
    this.fullPages = 0;
    this.queue = [];
  }
}

/** Same mappings clipped to [start, end), with the same protection: equal ⇔ captureRange would give equal prot arrays. */
function sameLayout(a: Mapping[], b: Layout, start: number, end: number): boolean {
  if (typeof b === 'number') return a.length === 1 && a[0]!.start <= start && a[0]!.end >= end && protBits(a[0]!) === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (Math.max(x.start, start) !== Math.max(y.start, start) || Math.min(x.end, end) !== Math.min(y.end, end)) return false;
    if (x.read !== y.read || x.write !== y.write || x.exec !== y.exec || x.shared !== y.shared) return false;
  }
  return true;
}

/** Equal and all present (a NOT_PRESENT page must go through diffRange, which reports it). */
function sameFrames(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] || a[i] === NOT_PRESENT) return false;
  return true;
}

/** Mappings of a sorted list overlapping [start, end) (binary search for the first). */
export function sliceMaps<M extends Mapping>(all: M[], start: number, end: number): M[] {
  let lo = 0, hi = all.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (all[mid].end <= start) lo = mid + 1; else hi = mid; }
  const out: M[] = [];
  for (let i = lo; i < all.length && all[i].start < end; i++) out.push(all[i]);
  return out;
}

const EMPTY: readonly NotifierEvent[] = Object.freeze([]);
