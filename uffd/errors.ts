import { constants as osConstants } from 'os';

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name] as [number, string]),
);

/** Name of a positive errno ('EINVAL'), or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/**
 * The one error class of every failed native syscall. errno is POSITIVE (kernel vocabulary, equal to
 * os.constants.errno.X), unlike libuv's negative err.errno; code is the name ('EINVAL').
 */
export class SyscallError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;

  /** Signature used by the addon (setErrorConstructor): keep it. */
  constructor(message: string, errno: number, code: string, syscall: string) {
    super(message);
    this.name = 'SyscallError';
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }

  /** For TS code reporting a syscall-shaped failure itself. */
  static from(syscall: string, errno: number, detail?: string): SyscallError {
    const code = errnoName(errno);
    return new SyscallError(`${syscall}: ${code}${detail ? `, ${detail}` : ''}`, errno, code, syscall);
  }
}

export function isSyscallError(e: unknown, code?: string): e is SyscallError {
  return e instanceof SyscallError && (code === undefined || e.code === code);
}
