// A trace as Chrome trace-event JSON (the JSON Object Format the Perfetto UI and chrome://tracing load): one process
// per client with a track per thread, each ioctl a complete slice ("X") from the request's first record to its
// return; notifier events and work-list operations as thread instants ("i") with one flow ("s"/"t"/"f") per userptr
// BO from its create through every change to its deletion; host commands as instants on the host's own track;
// counters ("C") of live userptr BOs and their pinned pages. Timestamps are the trace's monotonic µs.
import type { Trace } from './reader';
import { lifetimes, pagesOf } from './lifetime';
import type { TraceRecord } from './schema';

export interface TraceEventJson {
  ph: string; name: string; pid: number; tid: number; ts?: number; dur?: number; cat?: string; s?: string;
  id?: number; bp?: string; args?: Record<string, unknown>;
}
export interface PerfettoJson { traceEvents: TraceEventJson[]; displayTimeUnit: 'ms'; otherData: Record<string, unknown> }

/** The host's process and the server's (counters) in the output: ids no Linux pid reaches (pid_max ≤ 2^22). */
export const HOST_PID = 1 << 30;
export const SERVER_PID = (1 << 30) + 1;
/** A client's track for its memory events that ran outside any of its requests (a watcher's wake-up, close). */
export const memoryTid = (pid: number): number => (1 << 30) + pid;
/** SUBMIT_3D payloads are cut to this many hex characters in the slice's args (the trace has them whole). */
const MAX_HEX = 256;
/** A run of records outside a request ends this much after its last one (µs), so that one lies inside it. */
const RUN_PAD = 0.001;

const clip = (v: unknown): unknown => (typeof v === 'string' && v.length > MAX_HEX ? `${v.slice(0, MAX_HEX)}…(${v.length / 2} bytes)` : v);

export function toPerfetto(tr: Trace): PerfettoJson {
  const ev: TraceEventJson[] = [];
  const life = lifetimes(tr.records);
  const filePid = new Map<number, number>();
  const threads = new Map<number, Set<number>>();
  const seen = (pid: number, tid: number): void => {
    let s = threads.get(pid);
    if (!s) threads.set(pid, s = new Set());
    s.add(tid);
  };
  /** First mono of each thread's records since its last ioctl: the request began no later than that. */
  const since = new Map<number, number>();
  const lastEnd = new Map<number, number>();
  const bySeq = new Map<number, TraceRecord>();
  // Records of a client outside its requests (a watcher's wake-up, close) come in runs: each run is a slice on the
  // client's memory-event track, so the instants and flow steps in it have a slice to bind to.
  let run: { pid: number; ts0: number; ts1: number; seq0: number; lastSeq: number } | null = null;
  const endRun = (): void => {
    if (!run) return;
    ev.push({ ph: 'X', cat: 'outside', name: 'outside an ioctl', pid: run.pid, tid: memoryTid(run.pid), ts: run.ts0, dur: run.ts1 - run.ts0 + RUN_PAD, args: { seq: run.seq0, lastSeq: run.lastSeq } });
    run = null;
  };
  for (const r of tr.records) {
    const rec = r as unknown as Record<string, unknown> & { t: string; seq: number; mono: number; tid?: number };
    bySeq.set(rec.seq, r);
    if (rec.t === 'file' && rec.op === 'open') filePid.set(rec.file as number, rec.pid as number);
    const pid = (rec.pid as number | undefined) ?? (rec.file !== undefined ? filePid.get(rec.file as number) : undefined);
    const tid = rec.tid ?? (pid !== undefined ? memoryTid(pid) : undefined);
    if (rec.tid !== undefined && rec.t !== 'ioctl' && !since.has(rec.tid)) since.set(rec.tid, rec.mono);
    if (pid !== undefined && rec.tid === undefined && rec.t !== 'ioctl' && rec.t !== 'host' && rec.t !== 'log') {
      if (run && (run.pid !== pid || run.lastSeq !== rec.seq - 1)) endRun();
      if (run) { run.ts1 = rec.mono; run.lastSeq = rec.seq; } else run = { pid, ts0: rec.mono, ts1: rec.mono, seq0: rec.seq, lastSeq: rec.seq };
    } else if (run && rec.t !== 'host' && rec.t !== 'log') endRun();
    const args = { seq: rec.seq } as Record<string, unknown>;
    switch (rec.t) {
      case 'ioctl': {
        const t = rec.tid ?? (rec.pid as number);
        // Never before the thread's previous ioctl returned (one thread, one ioctl at a time; the clocks differ).
        const begin = Math.max(lastEnd.get(t) ?? 0, Math.min(rec.mono - (rec.us as number), since.get(t) ?? Infinity));
        since.delete(t);
        lastEnd.set(t, rec.mono);
        seen(rec.pid as number, t);
        ev.push({ ph: 'X', cat: 'ioctl', name: rec.name as string, pid: rec.pid as number, tid: t, ts: begin, dur: rec.mono - begin,
          args: { ...args, file: rec.file, cmd: `0x${(rec.cmd as number).toString(16)}`, in: rec.in, out: rec.out, result: rec.result, handlerUs: rec.us } });
        break;
      }
      case 'notifier': case 'work': case 'userptr': case 'fault': {
        if (rec.t === 'fault' && (rec.kind === 'host' || rec.kind === 'fence')) {
          const name = rec.kind === 'host' ? `refused ${rec.name as string} (${rec.errno as string})` : `fence delayed: ${rec.detail as string}`;
          ev.push({ ph: 'i', s: 't', cat: 'fault', name, pid: HOST_PID, tid: 1, ts: rec.mono, args: { ...args, rule: rec.rule } });
          break;
        }
        if (pid === undefined || tid === undefined) break;
        seen(pid, tid);
        const { t, seq, ts, mono, tid: _t, ...fields } = rec;
        void t; void seq; void ts; void mono; void _t;
        const name = rec.t === 'notifier' ? `${rec.event as string}${rec.action ? ` → ${rec.action as string}` : ''}`
          : rec.t === 'work' ? `${rec.op as string}: ${rec.outcome as string}` : rec.t === 'userptr' ? `userptr create → ${String(rec.result)}` : `fault ${rec.rule as string}`;
        ev.push({ ph: 'i', s: 't', cat: rec.t, name, pid, tid, ts: rec.mono, args: { ...args, ...fields } });
        break;
      }
      case 'file':
        if (pid === undefined || tid === undefined) break;
        seen(pid, tid);
        ev.push({ ph: 'i', s: 't', cat: 'file', name: `file ${rec.file as number} ${rec.op as string}`, pid, tid, ts: rec.mono, args: { ...args, file: rec.file } });
        break;
      case 'host': {
        const cmd = rec.cmd as Record<string, unknown>;
        ev.push({ ph: 'i', s: 't', cat: 'host', name: cmd.cmd as string, pid: HOST_PID, tid: 1, ts: rec.mono,
          args: { ...args, ...Object.fromEntries(Object.entries(cmd).map(([k, v]) => [k === 'seq' ? 'hostSeq' : k, clip(v)])) } });
        break;
      }
      case 'log':
        ev.push({ ph: 'i', s: 'p', cat: 'log', name: String(rec.msg).slice(0, 120), pid: SERVER_PID, tid: 1, ts: rec.mono, args: { ...args, msg: rec.msg } });
        break;
    }
  }
  endRun();
  // One flow per userptr BO: its create, every change (dedup, notifier, split, evict), its deletion.
  const counters: { ts: number; bos: number; pages: number }[] = [];
  for (const bo of life.bos) {
    const at = (seq: number): { pid: number; tid: number } => {
      const r = bySeq.get(seq) as unknown as { tid?: number; pid?: number } | undefined;
      return { pid: bo.pid, tid: r?.tid ?? memoryTid(bo.pid) };
    };
    const name = `BO file ${bo.file} handle ${bo.handle}${bo.resId !== undefined ? ` res ${bo.resId}` : ''}`;
    const id = bo.id + 1;
    ev.push({ ph: 's', cat: 'bo', name, id, ts: bo.created.mono, ...at(bo.created.seq) });
    for (const m of bo.marks) if (m.kind !== 'delete') ev.push({ ph: 't', cat: 'bo', name, id, ts: m.mono, ...at(m.seq) });
    const end = bo.deleted ?? { seq: life.endSeq, mono: life.endMono };
    ev.push({ ph: 'f', bp: 'e', cat: 'bo', name, id, ts: end.mono, ...at(end.seq) });
    counters.push({ ts: bo.created.mono, bos: 1, pages: pagesOf(bo.ranges[0]!) });
    for (let i = 1; i < bo.ranges.length; i++) counters.push({ ts: bo.ranges[i]!.mono, bos: 0, pages: pagesOf(bo.ranges[i]!) - pagesOf(bo.ranges[i - 1]!) });
    if (bo.deleted) counters.push({ ts: bo.deleted.mono, bos: -1, pages: -pagesOf(bo.ranges[bo.ranges.length - 1]!) });
  }
  counters.sort((a, b) => a.ts - b.ts);
  let bos = 0, pages = 0;
  ev.push({ ph: 'C', name: 'live userptr BOs', pid: SERVER_PID, tid: 0, ts: 0, args: { bos: 0 } }, { ph: 'C', name: 'pinned pages', pid: SERVER_PID, tid: 0, ts: 0, args: { pages: 0 } });
  for (const c of counters) {
    bos += c.bos; pages += c.pages;
    ev.push({ ph: 'C', name: 'live userptr BOs', pid: SERVER_PID, tid: 0, ts: c.ts, args: { bos } }, { ph: 'C', name: 'pinned pages', pid: SERVER_PID, tid: 0, ts: c.ts, args: { pages } });
  }
  // Names: a process per client, a track per thread, the memory-event track, the host and the server.
  const meta: TraceEventJson[] = [
    { ph: 'M', name: 'process_name', pid: HOST_PID, tid: 0, args: { name: 'virtio-gpu host' } },
    { ph: 'M', name: 'thread_name', pid: HOST_PID, tid: 1, args: { name: 'host commands' } },
    { ph: 'M', name: 'process_name', pid: SERVER_PID, tid: 0, args: { name: `virtgpu-emu (${tr.header.uapi}, ${tr.header.mode}, ${tr.header.profile})` } },
    { ph: 'M', name: 'thread_name', pid: SERVER_PID, tid: 1, args: { name: 'log' } },
  ];
  for (const [pid, tids] of threads) {
    meta.push({ ph: 'M', name: 'process_name', pid, tid: 0, args: { name: `client ${pid}` } });
    for (const tid of tids) meta.push({ ph: 'M', name: 'thread_name', pid, tid, args: { name: tid === memoryTid(pid) ? 'memory events outside an ioctl' : `thread ${tid}` } });
  }
  return {
    traceEvents: [...meta, ...ev], displayTimeUnit: 'ms',
    otherData: { format: tr.header.format, version: tr.header.version, uapi: tr.header.uapi, mode: tr.header.mode, profile: tr.header.profile, started: tr.header.started, complete: tr.complete },
  };
}
