// Errnos the transport needs beyond core/errno.ts's set (same mechanism: os.constants.errno via errnoOf).
import { errnoOf } from '../../core/errno';
import { constants } from 'os';
export { Errno, EBADF, EINVAL, EIO, ENOENT, ENOSYS, ENOTTY, EAGAIN, ENOMEM, EFAULT, EINTR, ENODEV } from '../../core/errno';

const n = constants.errno as Record<string, number>;
export const EISDIR = errnoOf(n.EISDIR!);
export const ENOTDIR = errnoOf(n.ENOTDIR!);
export const EPROTO = errnoOf(n.EPROTO!);
export const ENFILE = errnoOf(n.ENFILE!);
