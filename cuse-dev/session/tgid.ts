// Thread id (fuse_in_header.pid is the caller's TID) → thread-group id (the client process), via /proc/TID/status.
import * as fs from 'fs';

const TGID_RE = /^Tgid:\s*(\d+)$/m;
/** Bounded: a long-lived server sees many short-lived threads; the cache is simply dropped when full. */
const CACHE_MAX = 4096;

export type TgidResolver = ((tid: number) => number) & { forget(tid: number): void };

/** `read` is injectable for tests. A tid that vanished (or a /proc without it) maps to itself; EMFILE/ENFILE/ENOMEM throw. */
export function tgidResolver(read: (path: string) => string = (p) => fs.readFileSync(p, 'latin1')): TgidResolver {
  const cache = new Map<number, number>();
  const resolve = ((tid: number): number => {
    if (tid <= 0) return tid;
    const hit = cache.get(tid);
    if (hit !== undefined) return hit;
    let tgid = tid;
    try {
      const m = TGID_RE.exec(read(`/proc/${tid}/status`));
      if (m) tgid = Number(m[1]);
    } catch (e) {
      // Out of fds or memory here says nothing about the thread: never key a client by a guess (the caller answers
      // the request with an errno, session.ts exhaustionErrno); a thread already gone keeps its tid.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOMEM') throw e;
    }
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(tid, tgid);
    return tgid;
  }) as TgidResolver;
  // Tids are reused after exit: OPEN re-resolves so a new process never inherits a dead one's mapping.
  resolve.forget = (tid: number) => { cache.delete(tid); };
  return resolve;
}
