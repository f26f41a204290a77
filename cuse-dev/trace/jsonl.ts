// Trace sink: one JSON object per line (a header, then core's TraceEvent + the transport's events), buffered, written with
// blocking writes from the thread that owns the Device (the worker), flushed at 64 KiB, every 200 ms of activity and on close.
import * as fs from 'fs';
import { TRACE_FORMAT, TRACE_VERSION, type TraceHeader, type TraceOptions } from './schema';

const FLUSH_BYTES = 64 * 1024;
const FLUSH_MS = 200;

/** JSON with bigint as decimal strings and byte arrays as hex (trace lines must never throw). */
export function traceJson(ev: unknown): string {
  // The holder's raw value, not `v`: JSON.stringify applies Buffer's toJSON ({type,data}) before the replacer sees it.
  return JSON.stringify(ev, function (this: Record<string, unknown>, k: string, v: unknown) {
    const raw = this[k];
    if (typeof v === 'bigint') return v.toString();
    if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex');
    return v;
  });
}

/**
 * Writes a trace of schema TRACE_VERSION (docs/trace-format.md): the header once the device announced itself (its
 * `device` record; anything before it waits, a device that never started gets a header of nulls at close), then
 * every record stamped with seq, ts, mono and the calling thread (setCaller), then at close the end record.
 */
export class JsonlSink {
  private fd: number | null;
  private buf: string[] = [];
  private bytes = 0;
  private last = Date.now();
  private seq = 0;
  private readonly t0 = performance.now();
  private readonly started = new Date().toISOString();
  private tid = 0;
  /** Records written before the header (the device is built after the sink). */
  private early: object[] | null = [];
  lines = 0;

  constructor(readonly path: string, private readonly options: TraceOptions = {}) {
    this.fd = fs.openSync(path, 'w');
  }

  /** The thread whose open/ioctl runs now (0: none); stamped on the records until cleared. */
  setCaller(tid: number): void { this.tid = tid; }

  write(ev: object): void {
    if (this.fd === null) return;
    if (this.early) {
      if ((ev as { t?: unknown }).t !== 'device') { this.early.push(ev); return; }
      this.writeHeader(ev as Partial<Record<'uapi' | 'mode' | 'profile' | 'posted', unknown>>);
    }
    this.line(ev);
  }

  private writeHeader(dev: Partial<Record<'uapi' | 'mode' | 'profile' | 'posted', unknown>>): void {
    const early = this.early ?? [];
    this.early = null;
    const header: TraceHeader = {
      t: 'header', format: TRACE_FORMAT, version: TRACE_VERSION,
      uapi: typeof dev.uapi === 'string' ? dev.uapi : null, mode: typeof dev.mode === 'string' ? dev.mode : null,
      profile: typeof dev.profile === 'string' ? dev.profile : null, posted: typeof dev.posted === 'boolean' ? dev.posted : null,
      options: this.options, started: this.started,
    };
    this.push(traceJson({ seq: 0, ts: Date.now(), mono: 0, ...header }) + '\n');
    for (const e of early) this.line(e);
  }

  private line(ev: object): void {
    const stamp = { seq: ++this.seq, ts: Date.now(), mono: Math.round((performance.now() - this.t0) * 1000) / 1000, ...(this.tid ? { tid: this.tid } : {}) };
    let line: string;
    try { line = traceJson({ ...stamp, ...ev }) + '\n'; } catch (e) { line = traceJson({ ...stamp, t: 'log', msg: `unserializable trace event: ${String(e)}` }) + '\n'; }
    this.push(line);
  }

  private push(line: string): void {
    this.buf.push(line);
    this.bytes += line.length;
    this.lines++;
    if (this.bytes >= FLUSH_BYTES || Date.now() - this.last >= FLUSH_MS) this.flush();
  }

  flush(): void {
    this.last = Date.now();
    if (this.fd === null || this.buf.length === 0) return;
    const data = this.buf.join('');
    this.buf = [];
    this.bytes = 0;
    try { fs.writeSync(this.fd, data); } catch { /* disk full / closed: tracing must not stop serving */ }
  }

  close(): void {
    if (this.fd !== null && this.early) this.writeHeader({});
    // The end record: a reader tells a complete trace from one whose server died (it counts the records before it).
    if (this.fd !== null) this.line({ t: 'end', records: this.seq });
    this.flush();
    if (this.fd !== null) { try { fs.closeSync(this.fd); } catch { /* ignore */ } this.fd = null; }
  }
}
