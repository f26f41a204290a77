// Trace event shapes (no I/O here: transports write them, e.g. as JSON lines).
import type { HostCommand } from './host/host';
import type { Mapping, NotifierEventKind, UserCopy } from './memory/client-memory';
import { isErr } from './errno';

/** One copy_from_user / copy_to_user of an ioctl's embedded pointers, as the trace keeps it (replay serves reads back). */
export interface UserIo { addr: number; len: number; data?: Uint8Array; errno?: string }

/** `user` with every read and write appended to `io` (only while tracing: the copies are kept until written). */
export function recordingUser(user: UserCopy, io: { reads: UserIo[]; writes: UserIo[] }): UserCopy {
  return {
    read(addr, len) {
      const r = user.read(addr, len);
      io.reads.push(isErr(r) ? { addr, len, errno: r.code } : { addr, len, data: r.slice() });
      return r;
    },
    write(addr, data) {
      const r = user.write(addr, data);
      io.writes.push(r ? { addr, len: data.length, errno: r.code } : { addr, len: data.length, data: data.slice() });
      return r;
    },
  };
}

export type TraceEvent =
  /** The first event of a traced device: how it reads the client's bytes (uAPI revision, mode) and what it offers (device profile). */
  | { t: 'device'; uapi: string; mode: string; profile: string; posted: boolean }
  | { t: 'file'; op: 'open' | 'close'; file: number; pid: number }
  | { t: 'ioctl'; file: number; pid: number; cmd: number; name: string; in?: Record<string, unknown>; out?: Record<string, unknown>; result: number | string; us: number; fault?: boolean; raw?: Uint8Array; reads?: UserIo[]; writes?: UserIo[] }
  | { t: 'notifier'; pid: number; event: NotifierEventKind; start: number; end: number; removed?: boolean; note?: string; file?: number; handle?: number; action?: string }
  | { t: 'work'; file: number; op: string; handle: number; resId: number; outcome: string; start?: number; last?: number }
  | { t: 'host'; cmd: HostCommand & { seq: number } }
  | { t: 'log'; msg: string }
  /** A `--fault` rule fired: what it did instead of the normal path (the ioctl's own record says `fault: true`). */
  | { t: 'fault'; rule: string; kind: string; file?: number; pid?: number; name?: string; errno?: string; detail?: string }
  /** A create the uAPI revision sent down the userptr path, and how it ended (a handle, +3, or an errno). */
  | { t: 'userptr'; file: number; pid: number; addr: number; size: number; rdonly: boolean; result: number | string; handle?: number; maps?: Mapping[] };
