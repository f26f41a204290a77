// ProcWatcher: the /proc checker of one client process, for what no userfaultfd reports. At drain() (= every ioctl
// entry of that client, docs/semantics.md §5) and on an optional interval it re-reads /proc/PID/maps (once per check) and
// /proc/PID/pagemap (one pread per range, only for ranges whose frames it compares) and emits the range-diff events
// (core/memory/range-diff.ts): mapping gone → UNMAP, protection changed → PROTECTION_VMA, frame changed or not
// present → CLEAR (frames only where no userfaultfd covers the range). Cost: one maps read + O(registered pages).
import { NOT_PRESENT, PAGE_SIZE, type Mapping, type NotifierEvent } from '../core/memory/client-memory';
import { captureRange, diffRange, protKey, type RangeState } from '../core/memory/range-diff';
import { parseMaps } from './proc-maps';

/** What the checker needs from the process (ProcessMemory provides it). */
export interface ProcSource {
  readonly pid: number;
  mapsText(): string;
  frames(start: number, npages: number): Float64Array;
}

/**
 * sig: the range's mappings clipped to it with their protection; equal sig + equal frames = nothing to diff.
 * The per-page state (captureRange: a protection per page) is built only when a diff needs it: a registration
 * keeps its mappings and, where compared, its frames (one Float64Array), so watching a 4 GiB range costs no
 * per-page objects while nothing changes.
 */
interface Reg { start: number; npages: number; framesToo: boolean; maps: Mapping[]; frames: Float64Array | null; sig: string }

export interface ProcWatcherOptions {
  /** Check on a timer too (ms; 0 = only at drain). Found events are queued and onPending is called. */
  intervalMs?: number;
  onPending?: () => void;
}

export class ProcWatcher {
  private readonly regs = new Map<number, Reg>();
  private queue: NotifierEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly onPending?: () => void;
  checks = 0;
  pagesChecked = 0;

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
    const maps = parseMaps(this.src.mapsText(), start, last + 1);
    this.regs.delete(id); // a re-registered id goes last, as after unregister + register (the diff's event order)
    this.regs.set(id, { start, npages, framesToo, maps, frames: framesToo ? this.src.frames(start, npages) : null, sig: signature(maps, start, last + 1) });
  }

  unregister(id: number): void { this.regs.delete(id); }
  registrations(): number { return this.regs.size; }
  has(id: number): boolean { return this.regs.has(id); }
  /** The registered ids, in registration order. */
  ids(): IterableIterator<number> { return this.regs.keys(); }
  /** [start, last] of a registration. */
  range(id: number): [number, number] | null { const r = this.regs.get(id); return r ? [r.start, r.start + r.npages * PAGE_SIZE - 1] : null; }

  /** Switch a range to mapping-only checks (a userfaultfd now covers it) or back. */
  setFramesToo(id: number, framesToo: boolean): void {
    const r = this.regs.get(id);
    if (!r || r.framesToo === framesToo) return;
    r.framesToo = framesToo;
    r.frames = framesToo ? this.src.frames(r.start, r.npages) : null;
  }

  private state(r: Reg, maps: Mapping[], frames: Float64Array | null): RangeState {
    return captureRange(r.start, r.npages, maps, frames ?? new Float64Array(r.npages));
  }

  /** One pass over every registered range. */
  check(): void {
    if (this.regs.size === 0) return;
    const text = this.src.mapsText();
    if (text === '') return; // process gone: exit tears the mm down without unmapping (RELEASE, not UNMAP)
    this.checks++;
    let lo = Infinity, hi = 0;
    for (const r of this.regs.values()) { lo = Math.min(lo, r.start); hi = Math.max(hi, r.start + r.npages * PAGE_SIZE); }
    const all = parseMaps(text, lo, hi); // lines outside the registered span are skipped unparsed
    for (const r of this.regs.values()) {
      const end = r.start + r.npages * PAGE_SIZE;
      const maps = sliceMaps(all, r.start, end);
      const sig = signature(maps, r.start, end);
      const frames = r.framesToo ? this.src.frames(r.start, r.npages) : null;
      if (r.framesToo) this.pagesChecked += r.npages;
      // Fast path (the common case): same mappings and, where compared, the same present frames → no event.
      if (sig === r.sig && (!frames || (r.frames && sameFrames(frames, r.frames)))) continue;
      const before = this.state(r, r.maps, r.frames), now = this.state(r, maps, frames);
      for (const e of diffRange(before, now, r.framesToo)) this.queue.push(e.note ? e : { ...e, note: '/proc' });
      r.maps = maps;
      r.frames = frames;
      r.sig = sig;
    }
  }

  private tick(): void {
    const had = this.queue.length;
    try { this.check(); } catch { /* process gone: the exit check reports it */ }
    if (this.queue.length > had) this.onPending?.();
  }

  drain(): readonly NotifierEvent[] {
    this.check();
    if (this.queue.length === 0) return EMPTY;
    const q = this.queue;
    this.queue = [];
    return q;
  }

  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.regs.clear();
    this.queue = [];
  }
}

/** Mappings clipped to [start, end) with protection: equal strings ⇔ captureRange would give equal prot arrays. */
function signature(maps: Mapping[], start: number, end: number): string {
  let s = '';
  for (const m of maps) s += `${Math.max(m.start, start)}-${Math.min(m.end, end)}:${protKey(m)};`;
  return s;
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
