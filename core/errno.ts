// Named errnos with the kernel's vocabulary, from os.constants.errno (Linux values).
import { constants } from 'os';

/** A failed result: the (positive) errno a syscall would report. Handlers return it, they never throw. */
export class Errno {
  constructor(readonly errno: number, readonly code: string) {}
  toString(): string { return this.code; }
}

const table = constants.errno as Record<string, number>;
function mk(code: string): Errno {
  const n = table[code];
  if (typeof n !== 'number') throw new Error(`errno ${code} unknown on this platform`);
  return Object.freeze(new Errno(n, code));
}

export const EPERM = mk('EPERM');
export const ENOENT = mk('ENOENT');
export const EIO = mk('EIO');
export const EBADF = mk('EBADF');
export const ENOMEM = mk('ENOMEM');
export const EACCES = mk('EACCES');
export const EFAULT = mk('EFAULT');
export const EBUSY = mk('EBUSY');
export const EEXIST = mk('EEXIST');
export const ENODEV = mk('ENODEV');
export const EINVAL = mk('EINVAL');
export const ENOTTY = mk('ENOTTY');
export const ENOSPC = mk('ENOSPC');
export const ERANGE = mk('ERANGE');
export const ENOSYS = mk('ENOSYS');
export const EOPNOTSUPP = mk('EOPNOTSUPP');
export const EAGAIN = mk('EAGAIN');
export const EINTR = mk('EINTR');
// The later userptr revisions' create errors (docs/uapi-revisions.md).
export const E2BIG = mk('E2BIG');
export const EOVERFLOW = mk('EOVERFLOW');
// The FUSE/CUSE session's own answers (namespace, protocol version) and its fd exhaustion.
export const EISDIR = mk('EISDIR');
export const ENOTDIR = mk('ENOTDIR');
export const EPROTO = mk('EPROTO');
export const ENFILE = mk('ENFILE');
// A fence fd the server could not make (get_unused_fd_flags).
export const EMFILE = mk('EMFILE');

const byNumber = new Map<number, Errno>();
for (const e of [EPERM, ENOENT, EIO, EBADF, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, ENODEV, EINVAL, ENOTTY, ENOSPC, ERANGE, ENOSYS, EOPNOTSUPP, EAGAIN, EINTR, E2BIG, EOVERFLOW, EISDIR, ENOTDIR, EPROTO, ENFILE, EMFILE]) byNumber.set(e.errno, e);

/** The Errno for a number (any valid Linux errno; unknown numbers get a generic code). */
export function errnoOf(n: number): Errno {
  let e = byNumber.get(n);
  if (!e) {
    const code = Object.keys(table).find((k) => table[k] === n) ?? `E${n}`;
    e = Object.freeze(new Errno(n, code));
    byNumber.set(n, e);
  }
  return e;
}

/** Linux errnos are 1..4095 (MAX_ERRNO); anything else must never reach a reply. */
export const MAX_ERRNO = 4095;

export function isErr(x: unknown): x is Errno { return x instanceof Errno; }
