// enum fuse_opcode (linux/fuse.h) with the C names (the enum also names them at run time), and one table row per
// opcode the session knows about.
import type { Struct } from '../../core/abi/layout';
import * as F from './fuse';

export enum FuseOpcode {
  FUSE_LOOKUP = 1,
  FUSE_FORGET = 2,
  FUSE_GETATTR = 3,
  FUSE_SETATTR = 4,
  FUSE_READLINK = 5,
  FUSE_SYMLINK = 6,
  FUSE_MKNOD = 8,
  FUSE_MKDIR = 9,
  FUSE_UNLINK = 10,
  FUSE_RMDIR = 11,
  FUSE_RENAME = 12,
  FUSE_LINK = 13,
  FUSE_OPEN = 14,
  FUSE_READ = 15,
  FUSE_WRITE = 16,
  FUSE_STATFS = 17,
  FUSE_RELEASE = 18,
  FUSE_FSYNC = 20,
  FUSE_SETXATTR = 21,
  FUSE_GETXATTR = 22,
  FUSE_LISTXATTR = 23,
  FUSE_REMOVEXATTR = 24,
  FUSE_FLUSH = 25,
  FUSE_INIT = 26,
  FUSE_OPENDIR = 27,
  FUSE_READDIR = 28,
  FUSE_RELEASEDIR = 29,
  FUSE_FSYNCDIR = 30,
  FUSE_GETLK = 31,
  FUSE_SETLK = 32,
  FUSE_SETLKW = 33,
  FUSE_ACCESS = 34,
  FUSE_CREATE = 35,
  FUSE_INTERRUPT = 36,
  FUSE_BMAP = 37,
  FUSE_DESTROY = 38,
  FUSE_IOCTL = 39,
  FUSE_POLL = 40,
  FUSE_NOTIFY_REPLY = 41,
  FUSE_BATCH_FORGET = 42,
  FUSE_FALLOCATE = 43,
  FUSE_READDIRPLUS = 44,
  FUSE_RENAME2 = 45,
  FUSE_LSEEK = 46,
  FUSE_COPY_FILE_RANGE = 47,
  FUSE_SETUPMAPPING = 48,
  FUSE_REMOVEMAPPING = 49,
  FUSE_SYNCFS = 50,
  FUSE_TMPFILE = 51,
  FUSE_STATX = 52,
  FUSE_COPY_FILE_RANGE_64 = 53,
  CUSE_INIT = 4096,
}

export interface OpcodeRow {
  readonly op: number;
  readonly name: string;
  /** The fixed argument struct after fuse_in_header (a shorter body is malformed → EINVAL). */
  readonly decode?: Struct<any>;
  /** Bytes that must follow the header at least (decode.size unless the kernel may send less, e.g. old INIT). */
  readonly minBody: number;
  /** The kernel expects no reply at all (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY). */
  readonly noReply: boolean;
  /**
   * Not served: answered ENOSYS without a log line, because the kernel probes it and handles ENOSYS by itself
   * (STATX falls back to GETATTR, xattrs and statfs are turned off for the mount).
   */
  readonly quietEnosys: boolean;
}

function row(op: FuseOpcode, decode?: Struct<any>, opts: { noReply?: boolean; minBody?: number; quietEnosys?: boolean } = {}): OpcodeRow {
  return { op, name: opcodeName(op), decode, minBody: opts.minBody ?? decode?.size ?? 0, noReply: opts.noReply ?? false, quietEnosys: opts.quietEnosys ?? false };
}

/**
 * Opcodes this server knows: served, or not served but expected (quietEnosys). Any other opcode is answered ENOSYS
 * with one log line (kernel: ENOTTY/EOPNOTSUPP to callers).
 */
export const OPCODES: readonly OpcodeRow[] = [
  row(FuseOpcode.FUSE_LOOKUP, undefined, { minBody: 1 }),
  row(FuseOpcode.FUSE_FORGET, F.fuse_forget_in, { noReply: true }),
  row(FuseOpcode.FUSE_GETATTR, F.fuse_getattr_in, { minBody: 0 }),
  row(FuseOpcode.FUSE_OPEN, F.fuse_open_in),
  row(FuseOpcode.FUSE_READ, F.fuse_read_in),
  row(FuseOpcode.FUSE_WRITE, F.fuse_write_in),
  row(FuseOpcode.FUSE_RELEASE, F.fuse_release_in),
  row(FuseOpcode.FUSE_FLUSH, F.fuse_flush_in),
  // INIT from kernels before 7.36 carries 16 bytes; the rest decodes as zero.
  row(FuseOpcode.FUSE_INIT, F.fuse_init_in, { minBody: 16 }),
  row(FuseOpcode.FUSE_OPENDIR, F.fuse_open_in),
  row(FuseOpcode.FUSE_READDIR, F.fuse_read_in),
  row(FuseOpcode.FUSE_RELEASEDIR, F.fuse_release_in),
  row(FuseOpcode.FUSE_ACCESS, undefined, { minBody: 8 }),
  row(FuseOpcode.FUSE_INTERRUPT, F.fuse_interrupt_in, { noReply: true }),
  row(FuseOpcode.FUSE_DESTROY),
  row(FuseOpcode.FUSE_IOCTL, F.fuse_ioctl_in),
  row(FuseOpcode.FUSE_POLL, F.fuse_poll_in),
  row(FuseOpcode.FUSE_NOTIFY_REPLY, undefined, { noReply: true }),
  row(FuseOpcode.FUSE_BATCH_FORGET, F.fuse_batch_forget_in, { noReply: true }),
  row(FuseOpcode.FUSE_STATFS, undefined, { quietEnosys: true }),
  row(FuseOpcode.FUSE_GETXATTR, undefined, { quietEnosys: true }),
  row(FuseOpcode.FUSE_LISTXATTR, undefined, { quietEnosys: true }),
  row(FuseOpcode.FUSE_STATX, undefined, { quietEnosys: true }),
  row(FuseOpcode.CUSE_INIT, F.cuse_init_in),
];

/** Indexed by opcode (a plain array lookup per request; the largest opcode is CUSE_INIT = 4096). */
const byOp: (OpcodeRow | undefined)[] = new Array<OpcodeRow | undefined>(FuseOpcode.CUSE_INIT + 1).fill(undefined);
for (const r of OPCODES) byOp[r.op] = r;
export function opcodeRow(op: number): OpcodeRow | undefined { return op >= 0 && op < byOp.length ? byOp[op] : undefined; }

/** C name of any opcode, for logs and traces ("FUSE_OP_<n>" when unknown). */
export function opcodeName(op: number): string {
  return FuseOpcode[op] ?? `FUSE_OP_${op}`;
}
