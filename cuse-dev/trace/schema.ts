// The versioned trace format (docs/trace-format.md): a header line, then one record per line, each stamped with a
// global sequence number and two clocks. Shared by the writer (jsonl.ts) and the reader (reader.ts).
import type { TraceEvent } from '../../core/trace-events';
import type { SessionTraceEvent } from '../session/session';

/** The `format` of every header; a trace without it predates schema 1. */
export const TRACE_FORMAT = 'virtgpu-emu-trace';
/** The schema this build writes. A reader accepts versions 1..TRACE_VERSION (new versions only add fields and kinds). */
export const TRACE_VERSION = 1;

/** Stamped on every line by the writer. */
export interface TraceStamp {
  /** 0 for the header, then 1, 2, 3… with no gap: the order the server did things in (clocks can tie). */
  seq: number;
  /** Wall clock, ms since the epoch (as before schema 1). */
  ts: number;
  /** Monotonic clock, µs since the header (never goes back; ties possible). */
  mono: number;
  /** The calling thread of the open/ioctl the record belongs to, when the transport knows it (CUSE/FUSE). */
  tid?: number;
}

/** What the server was started with (the serve options that change what the device does). */
export interface TraceOptions {
  transport?: string;
  watch?: string;
  inject?: boolean;
  /** The `--mode` given (absent: the revision's own); the resolved mode is the header's `mode`. */
  mode?: string;
  /** `--fault` rules, as given. */
  faults?: string[];
}

/** Line 1 of a trace. */
export interface TraceHeader {
  t: 'header';
  format: typeof TRACE_FORMAT;
  version: number;
  /** The uAPI revision, resolved mode and device profile the device was built with (null: it never started). */
  uapi: string | null;
  mode: string | null;
  profile: string | null;
  posted: boolean | null;
  options: TraceOptions;
  /** ISO-8601 wall time of `mono` 0. */
  started: string;
}

/** Any record of a trace as written: core's events (the faults' included), the transport's, with the writer's stamp. */
export type TraceRecord = (TraceEvent | SessionTraceEvent) & TraceStamp;
