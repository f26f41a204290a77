// Trace sink: one JSON object per line (core's TraceEvent + the transport's events), buffered, written with
// blocking writes from the thread that owns the Device (the worker), flushed at 64 KiB, every 200 ms of activity and on close.
import * as fs from 'fs';

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

export class JsonlSink {
  private fd: number | null;
  private buf: string[] = [];
  private bytes = 0;
  private last = Date.now();
  lines = 0;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'w');
  }

  write(ev: object): void {
    if (this.fd === null) return;
    let line: string;
    try { line = traceJson({ ts: Date.now(), ...ev }) + '\n'; } catch (e) { line = traceJson({ ts: Date.now(), t: 'log', msg: `unserializable trace event: ${String(e)}` }) + '\n'; }
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
    this.flush();
    if (this.fd !== null) { try { fs.closeSync(this.fd); } catch { /* ignore */ } this.fd = null; }
  }
}
