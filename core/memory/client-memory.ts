// What core needs from a client's address space and from whatever watches it. Implemented by uffd/ for real
// processes and by sim-memory.ts for tests. Addresses are user virtual addresses (< 2^47), kept as JS numbers:
// exact below 2^53; u64 values from the uAPI are converted once at the codec edge (see `addrOf`).
import type { Errno } from '../errno';
import { LITTLE_ENDIAN_HOST } from '../abi/layout';

export const PAGE_SIZE = 4096;
/** End of the x86-64 user address space (TASK_SIZE_MAX): a userptr range must end at or below it. */
export const USER_ADDR_END = 0x7ffffffff000;
/** Frame value for "page not present" (pagemap's present bit clear). */
export const NOT_PRESENT = 0;

/** u64 from the uAPI → number. Values ≥ 2^53 lose precision but stay far above USER_ADDR_END, so range checks still fail them. */
export function addrOf(v: bigint): number { return u64Number(v); }

const U64 = new BigUint64Array(1);
const U64_HALVES = new Uint32Array(U64.buffer);

/**
 * Number(v) of a u64 (0 ≤ v < 2^64, as the struct codecs decode them): the same double (the exact sum of the two
 * halves rounded once), without the runtime call V8 makes for Number(bigint) (several times the cost). A value
 * outside the u64 range is taken modulo 2^64, as the codecs store one.
 */
export function u64Number(v: bigint): number {
  if (!LITTLE_ENDIAN_HOST) return Number(BigInt.asUintN(64, v));
  U64[0] = v;
  return U64_HALVES[0]! + U64_HALVES[1]! * 4294967296;
}
/** The page holding address `a` (PAGE_ALIGN_DOWN), and `n` rounded up to whole pages (PAGE_ALIGN). */
export const pageDown = (a: number): number => a - (a % PAGE_SIZE);
export const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/** copy_from_user / copy_to_user for one ioctl's embedded pointers. */
export interface UserCopy {
  read(addr: number, len: number): Uint8Array | Errno;
  /** Returns an Errno (EFAULT) if any byte cannot be written. */
  write(addr: number, data: Uint8Array): Errno | undefined;
}

export type Backing = 'anon' | 'shmem' | 'file' | 'special';
export interface Mapping {
  start: number; end: number; // [start, end)
  read: boolean; write: boolean; exec: boolean;
  shared: boolean; backing: Backing;
}

/**
 * What the kernel's can_do_mlock() and pinned_vm accounting read of a process: its RLIMIT_MEMLOCK soft limit in
 * bytes (Infinity: unlimited) and whether it holds CAP_IPC_LOCK.
 */
export interface MemlockLimits { readonly limitBytes: number; readonly capIpcLock: boolean }

/** A client process's address space. */
export interface ClientMemory extends UserCopy {
  readonly pid: number;
  /** Mappings overlapping [start, end), sorted; holes are unmapped. */
  mappings(start: number, end: number): Mapping[];
  /** Fault in untouched pages of [start, start+len) (MADV_POPULATE_WRITE, or _READ when !write). */
  populate(start: number, len: number, write: boolean): Errno | undefined;
  /** Frame identity of `npages` pages from `start` (page aligned); NOT_PRESENT where no page is mapped. */
  frames(start: number, npages: number): Float64Array;
  /** The process's memory-lock limits now (read at each create that accounts pins); absent or null: unlimited. */
  memlockLimits?(): MemlockLimits | null;
}

/** Notifier events of docs/semantics.md §4 (end exclusive, page aligned; core clips them to each userptr). */
export type NotifierEventKind = 'UNMAP' | 'CLEAR' | 'PROTECTION_VMA' | 'PROTECTION_PAGE' | 'RELEASE';
export interface NotifierEvent {
  event: NotifierEventKind;
  start: number;
  end: number;
  /** CLEAR only: true when the pages were removed (DONTNEED/REMOVE), false for MADV_FREE. */
  removed?: boolean;
  /** Free text for the trace (e.g. "uffd REMOVE, advice unknown: treated as DONTNEED"). */
  note?: string;
}

/**
 * Why core drains a client's watcher:
 *   entry: the entry of an ioctl the client itself is making (so it is alive: no exit check);
 *   sync:  another synchronous point (a create's flush of the file's other clients, a file's close);
 *   wake:  a watcher's wake-up (service): what the watchers already hold, with no comparison of /proc (that is the
 *          entry's, sync's and the timer's), so a munmap's BO is deleted without a /proc query.
 */
export type DrainCause = 'entry' | 'sync' | 'wake';

/**
 * The watcher of one client process, pulled by core (docs/semantics.md §5 "Ordering"): core calls drain() at the entry of
 * every ioctl of that client, so an event read before the client's munmap returned is always seen.
 */
export interface NotifierSource {
  /** Watch [start, last] for userptr `id`; a known id has its range replaced. */
  register(id: number, start: number, last: number): void;
  unregister(id: number): void;
  /** The events seen since the last drain, in order (`cause`: DrainCause; 'sync' when omitted). */
  drain(cause?: DrainCause): readonly NotifierEvent[];
  /** True when removals in [start, last] are reported synchronously (userfaultfd); false: /proc checker only (approximate). */
  exact(start: number, last: number): boolean;
  /** Live registrations, for snapshots and leak checks. */
  registrations(): number;
}

/** Everything core knows about one client process (thread-group id). */
export interface ClientEnv {
  readonly pid: number;
  readonly memory: ClientMemory;
  readonly events: NotifierSource;
  /** Called once when core holds no more references (no open file of it, no userptr created by it). */
  release(): void;
}

/** Transports/watchers give core a ClientEnv for a thread-group id on first use. */
export type ClientProvider = (pid: number) => ClientEnv;
