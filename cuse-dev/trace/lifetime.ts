// The life of every userptr BO of a trace, rebuilt from its records (docs/trace-format.md): created by a create
// that took the userptr path, found again by dedup, split (a work-list UPDATE narrowing its range), evicted (EVICT),
// deleted (work-list UNMAP, GEM_CLOSE, or its file's close) — each change with the memory event that caused it and
// the ioctl it happened in. Both report views (perfetto.ts, html.ts) draw from this one model.
import type { TraceRecord } from './schema';

const PAGE = 4096;
const pageDown = (a: number): number => a - (a % PAGE);
const pageUp = (a: number): number => pageDown(a + PAGE - 1);

export type MarkKind = 'dedup' | 'notify' | 'split' | 'evict' | 'update' | 'delete';

export interface LifeMark {
  seq: number;
  mono: number;
  kind: MarkKind;
  /** What the record says (the notifier's action, the work item's outcome, the dedup's address). */
  detail: string;
  /** seq of the memory event (a drained notifier record) that caused it. */
  cause?: number;
  /** seq of the ioctl record whose entry or handler it happened in. */
  ioctl?: number;
}

/** [start, end) of the BO's range from `seq` on. */
export interface LifeRange { seq: number; mono: number; start: number; end: number }

export interface BoLife {
  /** Index in the lifetimes array (a handle number can be reused). */
  id: number;
  file: number;
  pid: number;
  tid?: number;
  handle: number;
  resId?: number;
  created: { seq: number; mono: number; ioctl?: number };
  /** The range over time: [0] at create, one more per split/update. */
  ranges: LifeRange[];
  marks: LifeMark[];
  deleted?: { seq: number; mono: number; why: 'unmap' | 'GEM_CLOSE' | 'close'; ioctl?: number; cause?: number };
}

export interface Lifetimes {
  bos: BoLife[];
  /** seq → seq of the ioctl it belongs to (records between a thread's ioctls belong to its next one). */
  ioctlOf: Map<number, number>;
  /** The last seq and mono of the trace (a BO never deleted lives to here). */
  endSeq: number;
  endMono: number;
}

/** Pages a BO's range covers (the pinned pages of a pinned BO). */
export const pagesOf = (r: { start: number; end: number }): number => (r.end - r.start) / PAGE;

const RAW_KEEP = 64;

export function lifetimes(records: readonly TraceRecord[]): Lifetimes {
  const bos: BoLife[] = [];
  const live = new Map<string, BoLife>();
  const key = (file: number, handle: number): string => `${file}:${handle}`;
  const ioctlOf = new Map<number, number>();
  const pendingByTid = new Map<number, number[]>();
  const rawByPid = new Map<number, { seq: number; event: string; start: number; end: number }[]>();
  /** The notifier application that queued a BO's next work item (its cause, passed on to the work mark). */
  const queuedBy = new Map<BoLife, { seq: number; cause?: number }>();
  const awaitingIoctl: { bo: BoLife; file: number }[] = [];
  const del = (bo: BoLife, seq: number, mono: number, why: 'unmap' | 'GEM_CLOSE' | 'close', cause?: number): void => {
    bo.deleted = { seq, mono, why, cause };
    bo.marks.push({ seq, mono, kind: 'delete', detail: why, cause });
    live.delete(key(bo.file, bo.handle));
  };
  for (const r of records) {
    const rec = r as unknown as Record<string, unknown> & { t: string; seq: number; mono: number; tid?: number };
    if (rec.tid !== undefined && rec.t !== 'ioctl') {
      let p = pendingByTid.get(rec.tid);
      if (!p) pendingByTid.set(rec.tid, p = []);
      p.push(rec.seq);
    }
    switch (rec.t) {
      case 'userptr': {
        const file = rec.file as number, handle = rec.handle as number | undefined, addr = rec.addr as number, size = rec.size as number;
        if (handle === undefined) break;
        if (rec.result === 0) {
          const bo: BoLife = {
            id: bos.length, file, pid: rec.pid as number, tid: rec.tid, handle,
            created: { seq: rec.seq, mono: rec.mono }, ranges: [{ seq: rec.seq, mono: rec.mono, start: pageDown(addr), end: pageUp(addr + size) }], marks: [],
          };
          // A handle still live under this key was deleted unseen (not in this trace): end it here.
          const old = live.get(key(file, handle));
          if (old) del(old, rec.seq, rec.mono, 'close');
          bos.push(bo);
          live.set(key(file, handle), bo);
          awaitingIoctl.push({ bo, file });
        } else if (rec.result === 3) {
          const bo = live.get(key(file, handle));
          bo?.marks.push({ seq: rec.seq, mono: rec.mono, kind: 'dedup', detail: `0x${addr.toString(16)} + 0x${size.toString(16)} found in handle ${handle}` });
        }
        break;
      }
      case 'ioctl': {
        const tid = rec.tid;
        if (tid !== undefined) {
          for (const s of pendingByTid.get(tid) ?? []) ioctlOf.set(s, rec.seq);
          pendingByTid.delete(tid);
        }
        for (let i = 0; i < awaitingIoctl.length; i++) {
          const a = awaitingIoctl[i]!;
          if (a.file !== rec.file) continue;
          a.bo.created.ioctl = rec.seq;
          const res = (rec.out as Record<string, unknown> | undefined)?.res_handle;
          if (typeof res === 'number') a.bo.resId = res;
          awaitingIoctl.splice(i--, 1);
        }
        if (rec.name === 'DRM_IOCTL_GEM_CLOSE' && rec.result === 0) {
          const h = (rec.in as Record<string, unknown> | undefined)?.handle;
          const bo = typeof h === 'number' ? live.get(key(rec.file as number, h)) : undefined;
          if (bo) { del(bo, rec.seq, rec.mono, 'GEM_CLOSE'); bo.deleted!.ioctl = rec.seq; }
        }
        break;
      }
      case 'notifier': {
        const pid = rec.pid as number, start = rec.start as number, end = rec.end as number, event = rec.event as string;
        if (rec.file === undefined) {
          let raw = rawByPid.get(pid);
          if (!raw) rawByPid.set(pid, raw = []);
          raw.push({ seq: rec.seq, event, start, end });
          if (raw.length > RAW_KEEP) raw.shift();
          break;
        }
        const bo = live.get(key(rec.file as number, rec.handle as number));
        if (!bo) break;
        const raw = rawByPid.get(pid) ?? [];
        let cause: number | undefined;
        // The latest drained event that covers it; of the same event seen by two watchers in a row, the first.
        for (let i = raw.length - 1; i >= 0; i--) {
          const e = raw[i]!;
          const covers = e.event === event && e.start <= start + PAGE && e.end >= end - PAGE;
          if (covers && (cause === undefined || e.seq === cause - 1)) cause = e.seq;
          else if (cause !== undefined) break;
        }
        bo.marks.push({ seq: rec.seq, mono: rec.mono, kind: 'notify', detail: `${event} [0x${start.toString(16)}, 0x${end.toString(16)}): ${String(rec.action)}`, cause });
        queuedBy.set(bo, { seq: rec.seq, cause });
        break;
      }
      case 'work': {
        const bo = live.get(key(rec.file as number, rec.handle as number));
        if (!bo) break;
        const by = queuedBy.get(bo);
        queuedBy.delete(bo);
        const op = rec.op as string, outcome = String(rec.outcome);
        const start = rec.start as number | undefined, last = rec.last as number | undefined;
        const cur = bo.ranges[bo.ranges.length - 1]!;
        if (start !== undefined && last !== undefined && (start !== cur.start || last + 1 !== cur.end)) {
          bo.ranges.push({ seq: rec.seq, mono: rec.mono, start, end: last + 1 });
        }
        if (op === 'UNMAP') {
          if (outcome === 'handle deleted') del(bo, rec.seq, rec.mono, 'unmap', by?.cause);
        } else if (op === 'UPDATE') {
          bo.marks.push({ seq: rec.seq, mono: rec.mono, kind: bo.ranges.length > 1 && bo.ranges[bo.ranges.length - 1]!.seq === rec.seq ? 'split' : 'update', detail: `UPDATE: ${outcome}`, cause: by?.cause });
        } else if (op === 'EVICT') {
          bo.marks.push({ seq: rec.seq, mono: rec.mono, kind: 'evict', detail: `EVICT: ${outcome}`, cause: by?.cause });
        }
        break;
      }
      case 'file':
        if (rec.op === 'close') for (const bo of [...live.values()]) if (bo.file === rec.file) del(bo, rec.seq, rec.mono, 'close');
        break;
    }
  }
  for (const bos2 of bos) for (const m of bos2.marks) { const io = ioctlOf.get(m.seq); if (io !== undefined) m.ioctl = io; }
  for (const bo of bos) if (bo.deleted && bo.deleted.ioctl === undefined) bo.deleted.ioctl = ioctlOf.get(bo.deleted.seq);
  const last = records[records.length - 1] as unknown as { seq: number; mono: number } | undefined;
  return { bos, ioctlOf, endSeq: last?.seq ?? 0, endMono: last?.mono ?? 0 };
}
