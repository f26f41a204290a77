// The server's own fd budget (RLIMIT_NOFILE): a watcher that would keep an fd per client (pidfd, userfaultfd) is
// skipped when few are left, so the fds that remain serve opens and /proc reads; the client is watched through /proc.
import * as fs from 'fs';

/** Free fds below which no fd is kept per new client (the transient opens of an open and a create need a few). */
export const FD_RESERVE = 16;

let limit: number | undefined;

/** RLIMIT_NOFILE's soft limit, read from /proc/self/limits (Infinity when unlimited or unreadable). */
export function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'latin1'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  } catch { return Infinity; }
}

/** How many more fds this process may open now (0 when even counting them fails for want of an fd). */
export function fdHeadroom(): number {
  limit ??= fdLimit();
  if (limit === Infinity) return Infinity;
  try { return limit - fs.readdirSync('/proc/self/fd').length; } catch { return 0; }
}

/** True when an fd kept per client would eat into the reserve. */
export function fdsLow(): boolean { return fdHeadroom() < FD_RESERVE; }
