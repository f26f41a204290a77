// Drain → invalidate → work list → worker (docs/semantics.md §4–§6): what stands in for the MMU notifier and its work item.
import type { Client } from '../client';
import type { DrainCause, NotifierEvent } from '../memory/client-memory';
import { NOT_PRESENT, PAGE_SIZE, pageDown, pageUp } from '../memory/client-memory';
import type { VirtgpuFile } from '../virtgpu/fpriv';
import type { Vgdev } from '../virtgpu/vgdev';
import type { Userptr } from './userptr';
import { split } from './split';
import { anyWorkQueued } from './worklist';

/**
 * The one door of "drain, then work": drain the clients' pending events into the work lists of the files holding
 * their userptrs, then run the worker of each of `files`. Ioctl entry, watcher wake-ups, create and close use it.
 */
export function sync(dev: Vgdev, clients: Iterable<Client>, files: Iterable<VirtgpuFile>): void {
  for (const c of clients) drainInto(dev, c);
  for (const f of files) runWorker(dev, f);
}

/**
 * The flush of create (docs/semantics.md §3 step 4): the file's work done and its clients' events seen. The caller was drained
 * and its files worked at this ioctl's entry when the scheduler ran the worker there: only the other clients are left.
 */
export function syncFile(dev: Vgdev, f: VirtgpuFile, caller: Client): void {
  // sync(dev, clients but the caller, [f]), without the two arrays (every create and dedup lookup comes here).
  const skip = dev.scheduler.runAtEntry() ? caller : null;
  for (const c of f.clients) if (c !== skip) drainInto(dev, c);
  runWorker(dev, f);
}

/** The client's files in open order (deterministic host command order across files). */
export function filesOf(c: Client): Iterable<VirtgpuFile> {
  return c.filesInOpenOrder() as readonly VirtgpuFile[];
}

/**
 * Ioctl entry and watcher wake-ups (docs/semantics.md §5): drain the client, then run the worker of its files — none when no
 * work list holds anything (the common case: no walk over the client's files). cause: 'entry' or 'wake' (DrainCause).
 */
export function syncClient(dev: Vgdev, c: Client, work: boolean, cause: DrainCause): void {
  drainInto(dev, c, cause);
  if (!work || !anyWorkQueued()) return;
  for (const f of filesOf(c)) runWorker(dev, f);
}

/** Drain a client's pending events into the work lists of every file holding its userptrs. */
function drainInto(dev: Vgdev, c: Client, cause: DrainCause = 'sync'): void {
  const evs = c.drainEvents(cause);
  if (evs.length === 0) return;
  dev.stats.notifierEvents += evs.length;
  for (const ev of evs) dev.trace?.({ t: 'notifier', pid: c.pid, event: ev.event, start: ev.start, end: ev.end, removed: ev.removed, note: ev.note });
  if (dev.mode !== 'notifier') return;
  for (const f of filesOf(c)) applyEvents(dev, f, c, evs);
}

/** Route a client's drained events to the userptrs of this file that the client created. */
function applyEvents(dev: Vgdev, f: VirtgpuFile, c: Client, evs: readonly NotifierEvent[]): void {
  for (const ev of evs) {
    if (ev.event === 'RELEASE') continue; // exit/exec: ignored, as in the series
    if (ev.end <= ev.start) continue;
    for (const u of f.priv.tree.overlapping(ev.start, ev.end - 1)) {
      if (u.client !== c || u.deleted) continue;
      invalidate(dev, f, u, ev);
    }
  }
}

/** The invalidate handler for one userptr (never runs the work itself). */
function invalidate(dev: Vgdev, f: VirtgpuFile, u: Userptr, ev: NotifierEvent): void {
  // Clip to the userptr's *current* range, page aligned.
  const s = Math.max(pageDown(ev.start), u.start);
  const e = Math.min(pageUp(ev.end), u.last + 1);
  if (e <= s) return;
  const trace = dev.trace;
  if (u.queued && u.op === 'UNMAP') { trace?.({ t: 'notifier', pid: u.client.pid, event: ev.event, start: s, end: e, file: f.id, handle: u.bo.handle, action: 'unmap already queued' }); return; }
  if (ev.event === 'UNMAP' || (ev.event === 'CLEAR' && ev.removed)) markRemoved(u, s, e);
  let action: string;
  if (ev.event === 'UNMAP') {
    action = unmapRange(dev, f, u, s, e);
  } else {
    if (u.evictEnd > u.evictStart) { u.evictStart = Math.min(u.evictStart, s); u.evictEnd = Math.max(u.evictEnd, e); }
    else { u.evictStart = s; u.evictEnd = e; }
    f.priv.work.queue(u, 'EVICT');
    action = 'queue EVICT';
  }
  trace?.({ t: 'notifier', pid: u.client.pid, event: ev.event, start: s, end: e, removed: ev.removed, file: f.id, handle: u.bo.handle, action });
}

/** UNMAP of [s, e) (already clipped): whole → in_release + UNMAP; part → split + UPDATE. */
function unmapRange(dev: Vgdev, f: VirtgpuFile, u: Userptr, s: number, e: number): string {
  if (s <= u.start && e - 1 >= u.last) {
    u.inRelease = true;
    f.priv.work.queue(u, 'UNMAP');
    return 'queue UNMAP';
  }
  f.priv.tree.update(u, () => split(u, s, e - 1));
  dev.stats.userptrsSplit++;
  f.priv.work.queue(u, 'UPDATE');
  return `split to [0x${u.start.toString(16)}, 0x${u.last.toString(16)}], queue UPDATE`;
}

function markRemoved(u: Userptr, s: number, e: number): void {
  if (!u.removed) u.removed = new Uint8Array(u.npages);
  for (let a = s; a < e; a += PAGE_SIZE) u.removed[u.pageIndex(a)] = 1;
}

/** Run the worker until the file's list is empty. */
function runWorker(dev: Vgdev, f: VirtgpuFile): void {
  const trace = dev.trace;
  const work = f.priv.work;
  for (let u = work.shift(); u; u = work.shift()) {
    if (u.deleted) continue; // closed meanwhile: dropped
    const op = u.op;
    let outcome = 'done';
    switch (op) {
      case 'UNMAP':
        // Delete the handle only if it still names this object (v1 deletes by number and can hit a reused handle).
        if (f.handles.get(u.bo.handle) === u.bo) {
          dev.gemClose(f, u.bo);
          dev.stats.userptrsUnmapped++;
          outcome = 'handle deleted';
        } else outcome = 'stale: dropped';
        break;
      case 'UPDATE':
        u.op = null;
        syncRegistration(u);
        // An EVICT that this UPDATE replaced (coalescing) must still be checked: never keep a stale page.
        if (u.evictEnd > u.evictStart) outcome = evictCheck(dev, f, u);
        else outcome = `range [0x${u.start.toString(16)}, 0x${u.last.toString(16)}] re-registered`;
        break;
      case 'EVICT':
        u.op = null;
        outcome = evictCheck(dev, f, u);
        syncRegistration(u);
        break;
      default:
        outcome = 'no op';
    }
    trace?.({ t: 'work', file: f.id, op: op ?? 'NULL', handle: u.bo.handle, resId: u.bo.resId, outcome, start: u.start, last: u.last });
  }
}

/**
 * EVICT (docs/semantics.md §5 + "Frames" §4): re-read the frames of the evict range; a page is changed when it is not
 * present, or was removed (private: always; shared: if its frame differs), or its frame differs where no
 * userfaultfd reports removals (/proc only). A frame that changed with no removal is updated silently.
 */
function evictCheck(dev: Vgdev, f: VirtgpuFile, u: Userptr): string {
  const s = Math.max(u.evictStart, u.start);
  const e = Math.min(u.evictEnd, u.last + 1);
  u.evictStart = u.evictEnd = 0;
  if (e <= s) return 'evict range outside the kept range';
  const n = (e - s) / PAGE_SIZE;
  const cur = u.client.memory.frames(s, n);
  const exact = u.client.events.exact(s, e - 1);
  const i0 = u.pageIndex(s);
  let changed = false;
  for (let k = 0; k < n; k++) {
    const i = i0 + k;
    const fr = cur[k];
    const pinned = u.frames[i];
    const removed = u.removed ? u.removed[i] === 1 : false;
    if (fr === NOT_PRESENT || (removed && (!u.shared?.[i] || fr !== pinned)) || (fr !== pinned && !exact)) { changed = true; break; }
  }
  if (!changed) {
    for (let k = 0; k < n; k++) {
      const i = i0 + k;
      if (cur[k] !== u.frames[i]) { u.frames[i] = cur[k]; dev.stats.silentFrameUpdates++; }
      if (u.removed) u.removed[i] = 0;
    }
    return 'frames unchanged';
  }
  if (u.removed) for (let k = 0; k < n; k++) u.removed[i0 + k] = 0;
  dev.stats.userptrsEvicted++;
  return 'changed: ' + unmapRange(dev, f, u, s, e);
}

/** Keep the watcher's registration equal to the current range (UPDATE's job; EVICT may have replaced it). */
export function syncRegistration(u: Userptr): void {
  if (u.deleted || (u.regStart === u.start && u.regLast === u.last)) return;
  // register() of a known id replaces its range: a watcher keeps watching what both ranges share, no gap between.
  u.client.events.register(u.id, u.start, u.last);
  u.regStart = u.start;
  u.regLast = u.last;
}

export function unregister(u: Userptr): void {
  if (u.regLast < 0) return;
  u.regLast = -1;
  u.client.events.unregister(u.id);
}
