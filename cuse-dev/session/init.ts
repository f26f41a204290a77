// The INIT answers (libfuse's do_init and cuse_lowlevel_init): the version gate, then FUSE_INIT's or CUSE_INIT's
// reply with what this server announces (max_write; for CUSE the device numbers, DEVNAME and unrestricted ioctls).
import { EINVAL, EPROTO, Errno } from '../../core/errno';
import * as F from '../abi/fuse';
import { replyError, replyStruct } from './reply';

export interface CuseParams {
  /** Name under /dev, e.g. "dri/renderD128" (DEVNAME=…). */
  devname: string;
  /** 0 = let the kernel pick (dynamic). */
  major: number;
  minor: number;
  /** Ask for CUSE_UNRESTRICTED_IOCTL (embedded pointers via RETRY); otherwise restricted like FUSE files. */
  unrestricted: boolean;
}

/** max_read/max_write announced when the caller names none (ioctl data is limited separately to 128 KiB per direction). */
export const DEFAULT_MAX_WRITE = 128 * 1024;

/** The protocol version the kernel offered and the one answered, with the flags granted. */
export interface Proto { kernelMinor: number; minor: number; flags: number }

/** What the INIT answers need from the session. */
export interface InitCtx {
  logOnce(key: string, msg: string): void;
  maxWrite?: number;
}

/** The reply, and the protocol agreed on when INIT succeeded (the session is then ready; the major is 7). */
export interface InitAnswer { reply: Uint8Array; proto?: Proto }

/** Major 7 and at least the oldest minor this server speaks; else EPROTO (logged once). */
export function checkVersion(c: InitCtx, major: number, minor: number): Errno | undefined {
  if (major !== F.FUSE_KERNEL_VERSION || minor < F.FUSE_MIN_MINOR) {
    c.logOnce('proto', `kernel speaks FUSE ${major}.${minor}; need 7.${F.FUSE_MIN_MINOR}+: EPROTO`);
    return EPROTO;
  }
  return undefined;
}

export function fuseInit(c: InitCtx, unique: bigint, body: Uint8Array): InitAnswer {
  const i = F.fuse_init_in.decode(body);
  const bad = checkVersion(c, i.major, i.minor);
  if (bad) return { reply: replyError(unique, bad) };
  const minor = Math.min(i.minor, F.FUSE_KERNEL_MINOR_VERSION);
  const maxWrite = c.maxWrite ?? DEFAULT_MAX_WRITE;
  return {
    proto: { kernelMinor: i.minor, minor, flags: 0 },
    reply: replyStruct(unique, F.fuse_init_out, {
      major: F.FUSE_KERNEL_VERSION, minor, max_readahead: i.max_readahead, flags: 0,
      max_background: 16, congestion_threshold: 12, max_write: maxWrite, time_gran: 1, max_pages: 0, map_alignment: 0,
      flags2: 0, max_stack_depth: 0, request_timeout: 0,
    }),
  };
}

export function cuseInit(c: InitCtx, p: CuseParams, unique: bigint, body: Uint8Array): InitAnswer {
  const i = F.cuse_init_in.decode(body);
  const bad = checkVersion(c, i.major, i.minor);
  if (bad) return { reply: replyError(unique, bad) };
  const info = cuseInfo(p.devname);
  if (info instanceof Errno) { c.logOnce('devname', `CUSE DEVNAME "${p.devname}" is invalid: EINVAL`); return { reply: replyError(unique, info) }; }
  const minor = Math.min(i.minor, F.FUSE_KERNEL_MINOR_VERSION);
  const flags = p.unrestricted && (i.flags & F.CUSE_UNRESTRICTED_IOCTL) ? F.CUSE_UNRESTRICTED_IOCTL : 0;
  if (p.unrestricted && !flags) c.logOnce('restricted', 'kernel did not offer CUSE_UNRESTRICTED_IOCTL: embedded pointers go through process memory');
  const maxWrite = c.maxWrite ?? DEFAULT_MAX_WRITE;
  return {
    proto: { kernelMinor: i.minor, minor, flags },
    reply: replyStruct(unique, F.cuse_init_out, {
      major: F.FUSE_KERNEL_VERSION, minor, unused: 0, flags, max_read: maxWrite, max_write: maxWrite,
      dev_major: p.major, dev_minor: p.minor, spare: [],
    }, info),
  };
}

/** The CUSE_INIT info string: packed "KEY=VAL\0" pairs, NUL-terminated, ≤ CUSE_INIT_INFO_MAX; only DEVNAME is known. */
export function cuseInfo(devname: string): Uint8Array | Errno {
  if (!devname || devname.includes('\0') || devname.startsWith('/') || devname.split('/').some((p) => p === '' || p === '.' || p === '..')) return EINVAL;
  const b = Buffer.from(`DEVNAME=${devname}\0`, 'utf8');
  if (b.length > F.CUSE_INIT_INFO_MAX) return EINVAL;
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}
