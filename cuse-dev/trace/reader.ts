// Reads a trace back (docs/trace-format.md): the header's format and version, then every line checked for what the
// writer guarantees (JSON, `t`, seq 1, 2, 3… with no gap, a monotonic clock that never goes back, the end record).
// Any failure is a TraceFormatError naming the line; `report` and `replay` turn it into exit code 2.
import * as fs from 'fs';
import { TRACE_FORMAT, TRACE_VERSION, type TraceHeader, type TraceRecord } from './schema';

export class TraceFormatError extends Error {}

export interface Trace {
  header: TraceHeader;
  /** Every record after the header, in seq order (records[i].seq === i + 1). */
  records: TraceRecord[];
  /** False when the end record is missing (only with `partial`: the server did not stop cleanly). */
  complete: boolean;
}

export interface ReadOptions {
  /** Accept a trace without its end record (a server killed mid-run); a torn last line is still refused. */
  partial?: boolean;
}

function fail(source: string, msg: string): never { throw new TraceFormatError(`${source}: ${msg}`); }

/** The fields each kind the views and replay read must carry, with their JSON type (others are optional or free). */
const REQUIRED: Readonly<Record<string, Readonly<Record<string, 'number' | 'string' | 'object'>>>> = {
  file: { op: 'string', file: 'number', pid: 'number' },
  ioctl: { file: 'number', pid: 'number', cmd: 'number', name: 'string', us: 'number' },
  userptr: { file: 'number', pid: 'number', addr: 'number', size: 'number' },
  notifier: { pid: 'number', event: 'string', start: 'number', end: 'number' },
  work: { file: 'number', op: 'string', handle: 'number' },
  host: { cmd: 'object' },
  fault: { rule: 'string', kind: 'string' },
};

/** Parse a whole trace; `source` names it in errors. */
export function parseTrace(text: string, source = 'trace', opts: ReadOptions = {}): Trace {
  if (text.length === 0) fail(source, 'empty file: not a virtgpu-emu trace');
  if (!text.endsWith('\n')) fail(source, `truncated: the last line (${text.split('\n').length}) has no end of line`);
  const lines = text.slice(0, -1).split('\n');
  const parse = (i: number): Record<string, unknown> => {
    let v: unknown;
    try { v = JSON.parse(lines[i]!); } catch (e) { fail(source, `corrupt: line ${i + 1} is not JSON (${(e as Error).message})`); }
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { t?: unknown }).t !== 'string') fail(source, `corrupt: line ${i + 1} is not a trace record (an object with a string "t")`);
    return v as Record<string, unknown>;
  };
  const h = parse(0);
  if (h.t !== 'header' || h.format !== TRACE_FORMAT) {
    fail(source, `unsupported trace: line 1 is not a ${TRACE_FORMAT} header (traces written before schema version 1 have none; record again with this build's --trace)`);
  }
  if (typeof h.version !== 'number' || !Number.isInteger(h.version) || h.version < 1 || h.version > TRACE_VERSION) {
    fail(source, `unsupported trace schema version ${JSON.stringify(h.version)}: this build reads versions 1..${TRACE_VERSION}`);
  }
  const records: TraceRecord[] = [];
  let mono = 0;
  let ended = false;
  for (let i = 1; i < lines.length; i++) {
    if (ended) fail(source, `corrupt: line ${i + 1} follows the end record`);
    const r = parse(i);
    if (r.seq !== i) fail(source, `corrupt: line ${i + 1} has seq ${JSON.stringify(r.seq)}, expected ${i} (a line is missing, repeated or reordered)`);
    if (typeof r.mono !== 'number' || r.mono < mono) fail(source, `corrupt: line ${i + 1} has mono ${JSON.stringify(r.mono)}, before the previous line's ${mono}`);
    mono = r.mono;
    const need = REQUIRED[r.t as string];
    if (need) {
      for (const [k, type] of Object.entries(need)) {
        const v = r[k];
        if (typeof v !== type || v === null || (type === 'number' && !Number.isFinite(v))) fail(source, `corrupt: line ${i + 1}: a "${String(r.t)}" record needs ${k} (a ${type})`);
      }
      if (r.t === 'ioctl' && typeof r.result !== 'number' && typeof r.result !== 'string') fail(source, `corrupt: line ${i + 1}: an "ioctl" record needs result (a number or an errno name)`);
    }
    if (r.t === 'end') {
      if (r.records !== i - 1) fail(source, `corrupt: the end record counts ${JSON.stringify(r.records)} records, the file has ${i - 1}`);
      ended = true;
      continue;
    }
    records.push(r as unknown as TraceRecord);
  }
  if (!ended && !opts.partial) fail(source, `truncated: no end record after line ${lines.length} (the server did not stop cleanly; --partial reads what is there)`);
  return { header: h as unknown as TraceHeader, records, complete: ended };
}

/** Read and parse a trace file (a missing or unreadable file is a TraceFormatError too). */
export function readTrace(path: string, opts: ReadOptions = {}): Trace {
  let text: string;
  try { text = fs.readFileSync(path, 'utf8'); } catch (e) { throw new TraceFormatError(`${path}: cannot read: ${(e as Error).message}`); }
  return parseTrace(text, path, opts);
}
