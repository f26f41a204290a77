// The one check every fd the server takes from a client passes before it is used as a userfaultfd: handed over
// through the channel, injected by ptrace (which a client can turn into any fd of its choosing with a seccomp user
// notification), created by ourselves, or installed by the kernel with a FORK record. An fd is a userfaultfd when
// our own /proc/self/fd entry says so (the kernel's anon inode name: a client cannot forge it, a file's link is an
// absolute path) AND UFFDIO_API, which the kernel allows once per uffd, succeeds on it here. A refused fd is closed
// (never on a JS thread: see closeForeign) and never becomes a watcher; what it was is told by kind only, never
// by path.
import * as fs from 'fs';
import type { UffdBinding } from './native-types';

/** The link text of a userfaultfd in /proc/self/fd. */
const UFFD_LINK = 'anon_inode:[userfaultfd]';

/** What one of our own fds is, by kind (never a path: it may name another user's file). */
export type FdKind = 'userfaultfd' | 'pipe' | 'socket' | 'eventfd' | 'pidfd' | 'memfd' | 'anon inode' | 'file' | 'closed';

export function fdKind(fd: number): FdKind {
  let link: string;
  try { link = fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return 'closed'; }
  if (link === UFFD_LINK) return 'userfaultfd';
  if (link.startsWith('pipe:')) return 'pipe';
  if (link.startsWith('socket:')) return 'socket';
  if (link === 'anon_inode:[eventfd]') return 'eventfd';
  if (link === 'anon_inode:[pidfd]') return 'pidfd';
  if (link.startsWith('/memfd:')) return 'memfd';
  if (link.startsWith('anon_inode:')) return 'anon inode';
  return 'file';
}

/** A refused fd (already closed): `kind` is what it was, `code` the errno a caller answers with. */
export class UffdRefused extends Error {
  readonly code: string;
  constructor(readonly kind: FdKind | 'api', code: string, message: string) {
    super(message);
    this.name = 'UffdRefused';
    this.code = code;
  }
  /** Key for logging a refusal once per kind. */
  get key(): string { return this.kind === 'api' ? `api:${this.code}` : this.kind; }
}

export function isUffdRefused(e: unknown): e is UffdRefused { return e instanceof UffdRefused; }

/** A verified userfaultfd on which our UFFDIO_API succeeded with `features`. */
export interface AdoptedUffd { fd: number; features: bigint }

/**
 * The feature sets tried in order: the non-cooperative events the watchers need (UNMAP, REMOVE, REMAP), with FORK
 * when we have CAP_SYS_PTRACE and write-protect registration (WP_HUGETLBFS_SHMEM for shmem on some kernels).
 */
export function featureLadder(u: UffdBinding): bigint[] {
  const C = u.constants;
  const events = C.UFFD_FEATURE_EVENT_UNMAP | C.UFFD_FEATURE_EVENT_REMOVE | C.UFFD_FEATURE_EVENT_REMAP;
  return [
    events | C.UFFD_FEATURE_EVENT_FORK | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP | C.UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
    events | C.UFFD_FEATURE_EVENT_FORK | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP,
    events | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP | C.UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
    events | C.UFFD_FEATURE_PAGEFAULT_FLAG_WP,
  ];
}

const ARTICLE: Record<string, string> = { userfaultfd: 'a userfaultfd', pipe: 'a pipe', socket: 'a socket', eventfd: 'an eventfd', pidfd: 'a pidfd', memfd: 'a memfd', 'anon inode': 'another anon inode', file: 'a file or device', closed: 'no open fd' };

/**
 * Take ownership of `fd` as a client's userfaultfd: verify it is one, then UFFDIO_API (first feature set that the
 * kernel accepts). On any failure the fd is closed and UffdRefused thrown: EBADF for what is not a userfaultfd,
 * the UFFDIO_API errno (EINVAL: initialized already, by its creator) otherwise.
 */
export function adoptUffd(u: UffdBinding, fd: number): AdoptedUffd {
  const kind = fdKind(fd);
  if (kind !== 'userfaultfd') {
    if (kind !== 'closed') closeForeign(u, fd);
    throw new UffdRefused(kind, 'EBADF', `${ARTICLE[kind]}, not a userfaultfd`);
  }
  let last = 'EINVAL';
  for (const f of featureLadder(u)) {
    try { u.uffdApi(fd, f); return { fd, features: f }; } catch (e) { last = (e as { code?: string }).code ?? 'EIO'; }
  }
  try { u.close(fd); } catch { /* closed meanwhile */ }
  throw new UffdRefused('api', last, `a userfaultfd on which UFFDIO_API fails (${last}${last === 'EINVAL' ? ': initialized already by its creator' : ''})`);
}

/**
 * Close an fd a client chose that is not (known to be) a userfaultfd: on the addon's closer thread, since close()
 * runs the file's flush, which the client may make hang (a file of its own FUSE mount). A userfaultfd has no flush.
 */
export function closeForeign(u: UffdBinding, fd: number): void {
  try { u.closeOffThread(fd); } catch { /* not an fd */ }
}

/**
 * Close the child uffd a FORK record names, only once our fd table says it is a userfaultfd (the kernel installed
 * it while our reader read the event). False when it is not (the fd is then left alone: it is not the record's).
 */
export function closeIfUffd(u: UffdBinding, fd: number): boolean {
  if (fdKind(fd) !== 'userfaultfd') return false;
  try { u.close(fd); return true; } catch { return false; }
}

/** Logs each refusal kind once (per source), counts every refusal. */
export class RefusalLog {
  readonly counts = new Map<string, number>();
  private readonly told = new Set<string>();
  constructor(private readonly log: (msg: string) => void) {}
  /** `who` is printed with the first refusal of its kind only (e.g. "pid 123"); `e` a refusal or its key and text. */
  refuse(source: string, who: string, e: UffdRefused | { key: string; message: string }): void {
    const key = `${source}:${e.key}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (this.told.has(key)) return;
    this.told.add(key);
    this.log(`${who}: ${source} uffd refused: ${e.message} (further ${source} refusals of this kind are counted, not logged)`);
  }
  get total(): number { let n = 0; for (const c of this.counts.values()) n += c; return n; }
}
