import { errnoOf } from '../core/errno';

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
    const code = errnoOf(errno).code;
    return new SyscallError(`${syscall}: ${code}${detail ? `, ${detail}` : ''}`, errno, code, syscall);
  }
}

export function isSyscallError(e: unknown, code?: string): e is SyscallError {
  return e instanceof SyscallError && (code === undefined || e.code === code);
}
