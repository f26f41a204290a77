// The only builders of reply bytes: fuse_out_header + payload in ONE buffer, so each reply is one write(2)
// (the kernel treats each write on /dev/fuse as one whole reply). Every errno sent is range-checked here (core's
// dispatcher also checks its handlers' errnos); an out-of-range one goes out as EIO.
import { Errno, EIO, MAX_ERRNO } from '../../core/errno';
import { fuse_out_header, fuse_ioctl_out, fuse_ioctl_iovec, FUSE_IOCTL_RETRY } from '../abi/fuse';
import type { Range } from '../../core';
import { alloc, byteOffsetOf, setU64, viewOf } from './slab';

const HDR = fuse_out_header.size;
const LE = true;
const OFF_LEN = fuse_out_header.offsetOf('len');
const OFF_ERROR = fuse_out_header.offsetOf('error');
const OFF_UNIQUE = fuse_out_header.offsetOf('unique');

/** Reported once per distinct bad value by the session (a bug upstream of the edge, never the kernel's problem). */
export type BadErrnoSink = (what: string) => void;

function header(buf: Uint8Array, unique: bigint, error: number): void {
  const dv = viewOf(buf), base = byteOffsetOf(buf);
  dv.setUint32(base + OFF_LEN, buf.length, LE);
  dv.setInt32(base + OFF_ERROR, error, LE);
  setU64(buf, base, OFF_UNIQUE, unique);
}

/** Valid errno → itself; anything else → EIO, reported. */
export function checkedErrno(e: Errno, bad?: BadErrnoSink): Errno {
  if (Number.isInteger(e.errno) && e.errno >= 1 && e.errno <= MAX_ERRNO) return e;
  bad?.(`errno ${String(e.errno)} (${e.code}) out of 1..${MAX_ERRNO}, answered EIO`);
  return EIO;
}

/** Error reply: header only, error = -errno. */
export function replyError(unique: bigint, e: Errno, bad?: BadErrnoSink): Uint8Array {
  const buf = alloc(HDR);
  header(buf, unique, -checkedErrno(e, bad).errno);
  return buf;
}

/** Success reply: header + the concatenated parts. */
export function replyOk(unique: bigint, ...parts: Uint8Array[]): Uint8Array {
  let n = HDR;
  for (const p of parts) n += p.length;
  const buf = alloc(n);
  let off = HDR;
  for (const p of parts) { buf.set(p, off); off += p.length; }
  header(buf, unique, 0);
  return buf;
}

/** Success reply whose fixed part is a layout struct value. */
export function replyStruct<T>(unique: bigint, layout: { size: number; encode(v: T, buf?: Uint8Array, off?: number): Uint8Array }, v: T, tail?: Uint8Array): Uint8Array {
  const buf = alloc(HDR + layout.size + (tail?.length ?? 0));
  layout.encode(v, buf, HDR);
  if (tail) buf.set(tail, HDR + layout.size);
  header(buf, unique, 0);
  return buf;
}

const IOCTL_OUT = fuse_ioctl_out.size;
const OFF_IOCTL_RESULT = fuse_ioctl_out.offsetOf('result');

/**
 * Final FUSE_IOCTL reply: fuse_ioctl_out{result} + out data, one part or several (scattered by the kernel over the
 * out iovecs in order).
 * An Errno becomes result = -errno: the kernel still copies the out data back first, as drm_ioctl does on failure.
 */
export function replyIoctl(unique: bigint, result: number | Errno, out: Uint8Array | readonly Uint8Array[], bad?: BadErrnoSink): Uint8Array {
  let res: number;
  if (result instanceof Errno) res = -checkedErrno(result, bad).errno;
  else if (Number.isInteger(result) && result >= 0 && result <= 0x7fffffff) res = result;
  else { bad?.(`ioctl result ${String(result)} is not an int >= 0, answered EIO`); res = -EIO.errno; }
  // One part (a restricted ioctl's struct: the hot path, no array) or the parts in order.
  const one = out instanceof Uint8Array ? out : null;
  let n = HDR + IOCTL_OUT;
  if (one) n += one.length; else for (const p of out as readonly Uint8Array[]) n += p.length;
  const buf = alloc(n);
  // The hot path of every ioctl: fuse_ioctl_out's result written through the slab view; flags, in_iovs and out_iovs
  // stay 0 (alloc() hands out zeroed bytes).
  viewOf(buf).setInt32(byteOffsetOf(buf) + HDR + OFF_IOCTL_RESULT, res, LE);
  let off = HDR + IOCTL_OUT;
  if (one) { if (one.length) buf.set(one, off); } else for (const p of out as readonly Uint8Array[]) { buf.set(p, off); off += p.length; }
  header(buf, unique, 0);
  return buf;
}

/** FUSE_IOCTL_RETRY: ask the kernel to fetch `inIov` and map `outIov` and send the request again (CUSE unrestricted only). */
export function replyIoctlRetry(unique: bigint, inIov: readonly Range[], outIov: readonly Range[]): Uint8Array {
  const IOV = fuse_ioctl_iovec.size;
  const buf = alloc(HDR + IOCTL_OUT + (inIov.length + outIov.length) * IOV);
  fuse_ioctl_out.encode({ result: 0, flags: FUSE_IOCTL_RETRY, in_iovs: inIov.length, out_iovs: outIov.length }, buf, HDR);
  let off = HDR + IOCTL_OUT;
  for (const r of [...inIov, ...outIov]) {
    fuse_ioctl_iovec.encode({ base: BigInt(r.addr), len: BigInt(r.len) }, buf, off);
    off += IOV;
  }
  header(buf, unique, 0);
  return buf;
}
