// Trace event shapes (no I/O here: transports write them, e.g. as JSON lines).
import type { HostCommand } from './host/host';
import type { CcmdEvent } from './host/hsakmt/host';
import type { NotifierEventKind } from './memory/client-memory';

export type TraceEvent =
  /** The first event of a traced device: how it reads the client's bytes (uAPI revision, mode) and what it offers (device profile). */
  | { t: 'device'; uapi: string; mode: string; profile: string; posted: boolean }
  | { t: 'file'; op: 'open' | 'close'; file: number; pid: number }
  | { t: 'ioctl'; file: number; pid: number; cmd: number; name: string; in?: Record<string, unknown>; out?: Record<string, unknown>; result: number | string; us: number }
  | { t: 'notifier'; pid: number; event: NotifierEventKind; start: number; end: number; removed?: boolean; note?: string; file?: number; handle?: number; action?: string }
  | { t: 'work'; file: number; op: string; handle: number; resId: number; outcome: string; start?: number; last?: number }
  | { t: 'host'; cmd: HostCommand & { seq: number } }
  /** A ccmd an emulated host answered: decoded request fields and reply. */
  | ({ t: 'ccmd' } & CcmdEvent)
  | { t: 'log'; msg: string }
  /** A create the uAPI revision sent down the userptr path, and how it ended (a handle, +3, or an errno). */
  | { t: 'userptr'; file: number; pid: number; addr: number; size: number; rdonly: boolean; result: number | string; handle?: number };
