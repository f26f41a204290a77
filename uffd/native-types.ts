// Typed surface of the virtgpu_uffd addon (uffd/native/syscalls.cc, reader.cc): syscall wrappers, the uffd reader
// thread, the serving loop's read/write calls; and of the virtgpu_testkit addon (testkit.cc: forkChild's op list,
// peek/poke, mmap & co.) that only tests and bench load. All policy lives in TS.
//
// Numbers: user addresses and lengths are `number` (x86-64 user addresses < 2^47 are exact); every address/length
// argument also accepts a `bigint`. u64 feature/ioctl masks are `bigint`.
// Errors: a failing syscall throws (or rejects with) SyscallError {errno (positive, os.constants.errno), code
// ('EINVAL'), syscall ('munmap', 'ioctl(UFFDIO_REGISTER)', ...)} once loadUffd() installed the constructor; a bad
// argument throws TypeError whose message ends in "; usage: <signature>".
// Blocking: every call is one short synchronous syscall on the calling thread, except ioctlAsync (libuv
// threadpool) and the reader thread. Note munmap/madvise/mremap/fork of a range registered on a uffd of THIS
// process block until some reader read()s the event: only do that with a reader running.

// readerDrain()/readerStop() record format: reader_record and uffd_msg in abi.ts.

export interface ReaderOptions {
  /** Attach /proc/<pid>/task/{tid}/syscall snapshots to REMOVE records (to tell MADV_FREE from DONTNEED). */
  taskSyscallsPid?: number;
  /** An eventfd (not owned) the reader bumps whenever it would call onPending: wakes a thread blocked in poll. */
  notifyFd?: number;
  /** When notifyFd is a wake queue's (wakeQueueCreate): the token queued with each bump (the client's pid). */
  notifyToken?: number;
}

export interface ReaderStats {
  id: number;
  uffd: number;
  /** false once the thread stopped on an error (errno/code say which); records stay drainable. */
  running: boolean;
  errno: number;
  code: string | null;
  /** read() drains several messages per call only on an O_NONBLOCK uffd. */
  nonblocking: boolean;
  events: number;
  reads: number;
  batches: number;
  queuedRecords: number;
  queuedBytes: number;
  /** onPending calls made (at most one outstanding between drains). */
  notifications: number;
  snapshots: number;
  snapshotErrors: number;
  /** Scans of /proc/PID/task (the per-task syscall files stay open between snapshots; a thread count change rescans). */
  snapshotRescans: number;
}

export interface Iov {
  addr: number;
  len: number;
}

/** x86-64 `struct user_regs_struct` field byte offsets (each field is a u64). */
export interface UserRegsOffsets {
  r15: number; r14: number; r13: number; r12: number; rbp: number; rbx: number; r11: number; r10: number;
  r9: number; r8: number; rax: number; rcx: number; rdx: number; rsi: number; rdi: number; orig_rax: number;
  rip: number; cs: number; eflags: number; rsp: number; ss: number; fs_base: number; gs_base: number;
  ds: number; es: number; fs: number; gs: number;
}

export interface UffdConstants {
  O_CLOEXEC: number; O_NONBLOCK: number; O_RDONLY: number; O_RDWR: number;
  UFFD_USER_MODE_ONLY: number; USERFAULTFD_IOC_NEW: number;
  UFFD_API: bigint;
  UFFD_FEATURE_PAGEFAULT_FLAG_WP: bigint; UFFD_FEATURE_EVENT_FORK: bigint; UFFD_FEATURE_EVENT_REMAP: bigint;
  UFFD_FEATURE_EVENT_REMOVE: bigint; UFFD_FEATURE_MISSING_HUGETLBFS: bigint; UFFD_FEATURE_MISSING_SHMEM: bigint;
  UFFD_FEATURE_EVENT_UNMAP: bigint; UFFD_FEATURE_SIGBUS: bigint; UFFD_FEATURE_THREAD_ID: bigint;
  UFFD_FEATURE_MINOR_HUGETLBFS: bigint; UFFD_FEATURE_MINOR_SHMEM: bigint; UFFD_FEATURE_EXACT_ADDRESS: bigint;
  UFFD_FEATURE_WP_HUGETLBFS_SHMEM: bigint; UFFD_FEATURE_WP_UNPOPULATED: bigint; UFFD_FEATURE_POISON: bigint;
  UFFD_FEATURE_WP_ASYNC: bigint; UFFD_FEATURE_MOVE: bigint;
  UFFDIO_REGISTER_MODE_MISSING: number; UFFDIO_REGISTER_MODE_WP: number; UFFDIO_REGISTER_MODE_MINOR: number;
  UFFDIO_WRITEPROTECT_MODE_WP: number; UFFDIO_WRITEPROTECT_MODE_DONTWAKE: number;
  UFFD_EVENT_PAGEFAULT: number; UFFD_EVENT_FORK: number; UFFD_EVENT_REMAP: number; UFFD_EVENT_REMOVE: number;
  UFFD_EVENT_UNMAP: number;
  UFFD_PAGEFAULT_FLAG_WRITE: number; UFFD_PAGEFAULT_FLAG_WP: number; UFFD_PAGEFAULT_FLAG_MINOR: number;
  /** Bit numbers inside the `ioctls` masks returned by uffdApi/uffdRegister. */
  _UFFDIO_REGISTER: number; _UFFDIO_UNREGISTER: number; _UFFDIO_WAKE: number; _UFFDIO_COPY: number;
  _UFFDIO_ZEROPAGE: number; _UFFDIO_MOVE: number; _UFFDIO_WRITEPROTECT: number; _UFFDIO_CONTINUE: number;
  _UFFDIO_POISON: number; _UFFDIO_API: number;
  /** ioctl request numbers for ioctl()/ioctlAsync(). */
  UFFDIO_API: number; UFFDIO_REGISTER: number; UFFDIO_UNREGISTER: number; UFFDIO_WAKE: number; UFFDIO_COPY: number;
  UFFDIO_ZEROPAGE: number; UFFDIO_MOVE: number; UFFDIO_WRITEPROTECT: number; UFFDIO_CONTINUE: number;
  UFFDIO_POISON: number;
  MADV_NORMAL: number; MADV_RANDOM: number; MADV_SEQUENTIAL: number; MADV_WILLNEED: number; MADV_DONTNEED: number;
  MADV_FREE: number; MADV_REMOVE: number; MADV_DONTFORK: number; MADV_DOFORK: number; MADV_MERGEABLE: number;
  MADV_UNMERGEABLE: number; MADV_HUGEPAGE: number; MADV_NOHUGEPAGE: number; MADV_DONTDUMP: number;
  MADV_DODUMP: number; MADV_WIPEONFORK: number; MADV_KEEPONFORK: number; MADV_COLD: number; MADV_PAGEOUT: number;
  MADV_POPULATE_READ: number; MADV_POPULATE_WRITE: number; MADV_DONTNEED_LOCKED: number; MADV_COLLAPSE: number;
  PROT_NONE: number; PROT_READ: number; PROT_WRITE: number; PROT_EXEC: number;
  MAP_SHARED: number; MAP_PRIVATE: number; MAP_FIXED: number; MAP_ANONYMOUS: number; MAP_NORESERVE: number;
  MAP_POPULATE: number; MAP_FIXED_NOREPLACE: number; MAP_HUGETLB: number; MAP_GROWSDOWN: number; MAP_LOCKED: number;
  MREMAP_MAYMOVE: number; MREMAP_FIXED: number; MREMAP_DONTUNMAP: number;
  MFD_CLOEXEC: number; MFD_ALLOW_SEALING: number; MFD_HUGETLB: number;
  EFD_CLOEXEC: number; EFD_NONBLOCK: number; EFD_SEMAPHORE: number;
  WNOHANG: number; WUNTRACED: number; WCONTINUED: number; __WALL: number; __WCLONE: number; __WNOTHREAD: number;
  PTRACE_TRACEME: number; PTRACE_PEEKTEXT: number; PTRACE_PEEKDATA: number; PTRACE_PEEKUSER: number;
  PTRACE_POKETEXT: number; PTRACE_POKEDATA: number; PTRACE_POKEUSER: number; PTRACE_CONT: number;
  PTRACE_KILL: number; PTRACE_SINGLESTEP: number; PTRACE_GETREGS: number; PTRACE_SETREGS: number;
  PTRACE_ATTACH: number; PTRACE_DETACH: number; PTRACE_SYSCALL: number; PTRACE_SETOPTIONS: number;
  PTRACE_GETEVENTMSG: number; PTRACE_GETSIGINFO: number; PTRACE_SEIZE: number; PTRACE_INTERRUPT: number;
  PTRACE_LISTEN: number;
  PTRACE_O_TRACESYSGOOD: number; PTRACE_O_EXITKILL: number; PTRACE_O_TRACEEXEC: number; PTRACE_O_TRACEFORK: number;
  PTRACE_EVENT_STOP: number;
  PIDFD_NONBLOCK: number;
  FIONREAD: number; FIONBIO: number;
  IOV_MAX: number;
  SYS_read: number; SYS_write: number; SYS_close: number; SYS_mmap: number; SYS_munmap: number;
  SYS_mprotect: number; SYS_madvise: number; SYS_mremap: number; SYS_ioctl: number; SYS_getpid: number;
  SYS_gettid: number; SYS_clock_nanosleep: number; SYS_nanosleep: number; SYS_userfaultfd: number;
  SYS_pidfd_open: number; SYS_pidfd_getfd: number; SYS_process_madvise: number; SYS_exit_group: number;
  UFFD_MSG_SIZE: number;
  READER_RECORD_HEADER_SIZE: number;
  /** The bits of readerPendingView's word: a read() may be in progress; records are queued. */
  READER_HINT_READING: number; READER_HINT_QUEUED: number;
  PAGE_SIZE: number;
  USER_REGS_SIZE: number;
  USER_REGS_OFFSETS: UserRegsOffsets;
  /** pidfd_open flag (kernel >= 6.9): a pidfd of one thread, readable when that thread exits. */
  PIDFD_THREAD: number;
}

/** An accepted connection of the client channel, with the credentials the kernel recorded at connect(). */
export interface UnixPeer { fd: number; pid: number; uid: number; gid: number; pidfd: number }
/** One received message: its bytes, the fds it carried (now ours) and the sender's kernel-checked credentials. */
export interface UnixMessage { data: Buffer; fds: number[]; cred: { pid: number; uid: number; gid: number } | null; truncated: boolean }

export type ErrorConstructorLike = new (message: string, errno: number, code: string, syscall: string) => Error;

export interface UffdBinding {
  /** Per JS thread: native failures are then constructed with `new ctor(message, errno, code, syscall)`. */
  setErrorConstructor?(ctor: ErrorConstructorLike): void;
  readonly constants: UffdConstants;

  /** userfaultfd(2), falling back to /dev/userfaultfd + USERFAULTFD_IOC_NEW. Pass O_CLOEXEC|O_NONBLOCK. */
  userfaultfd(flags: number): number;
  /** UFFDIO_API; the kernel allows it once per uffd. */
  uffdApi(fd: number, features: bigint): { features: bigint; ioctls: bigint };
  /** UFFDIO_REGISTER; returns the range's ioctls mask. Ranges resolve in the mm that CREATED the uffd. */
  uffdRegister(fd: number, start: number, len: number, mode: number | bigint): bigint;
  uffdUnregister(fd: number, start: number, len: number): void;
  /** UFFDIO_UNREGISTER that never throws: 0 or the positive errno (EINVAL: nothing mapped there, or another uffd's). */
  uffdUnregisterErrno(fd: number, start: number, len: number): number;
  /**
   * PROCMAP_QUERY (kernel >= 6.11) on an fd of /proc/PID/maps: the VMA covering addr (next: or the first above it);
   * out[0] = start, out[1] = end, out[2] = flags (1 r, 2 w, 4 x, 8 shared). False when there is none; older kernels
   * throw ENOTTY. With `name`: the VMA's name as maps shows it is written there (cut at its size) and out[3] is
   * its length (out must then hold 4).
   */
  procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array, name?: Uint8Array): boolean;
  /** UFFDIO_WRITEPROTECT; EAGAIN (mmap_changing, e.g. right after FORK) is thrown, retry is the caller's. */
  uffdWriteProtect(fd: number, start: number, len: number, wp: boolean, dontWake?: boolean): void;

  /**
   * Starts the reader thread; the uffd fd is OWNED by the reader from now on (still usable for ioctls; never
   * close it yourself: readerStop does). onPending runs on the starting JS thread, at most once per drain
   * (it is unref'd: a reader alone does not keep the process alive). Any JS thread may drain by id.
   */
  readerStart(uffd: number, opts: ReaderOptions, onPending?: () => void): number;
  /** Swaps out the queued records (format: reader_record in abi.ts). Every read() event is visible here. */
  readerDrain(id: number): Buffer;
  /**
   * readerDrain into `buf` when every queued record fits: returns the bytes copied (0: nothing queued). When they do
   * not fit, nothing is taken and minus the bytes queued is returned (grow buf and call again).
   */
  readerDrainInto(id: number, buf: Uint8Array): number;
  /** Wakes and joins the thread, closes the uffd (releases blocked clients), returns records never drained. */
  readerStop(id: number): Buffer;
  readerStats(id: number): ReaderStats;
  /**
   * The lock-free hint word of a reader, [0]: READER_HINT_READING (a read() may be in progress) | READER_HINT_QUEUED
   * (records are queued). Load it with Atomics.load; 0 ⇒ readerDrain would return nothing (every event already read
   * was drained).
   */
  readerPendingView(id: number): Int32Array;
  /**
   * A wake queue: an eventfd (returned; EFD_CLOEXEC|EFD_NONBLOCK, owned by the queue) that readers started with it
   * as notifyFd bump, queueing their notifyToken first, so a thread blocked in poll(2) learns WHICH clients to serve;
   * a thread blocked in readOrWake on it is signalled instead.
   */
  wakeQueueCreate(): number;
  /** The tokens queued since the last drain, in order (a token at most once per drain of its reader). */
  wakeQueueDrain(fd: number): Int32Array;
  /** Closes the eventfd; readers still holding the queue bump nothing from now on. */
  wakeQueueClose(fd: number): void;

  pidfdOpen(pid: number, flags?: number): number;
  /** pidfd_getfd(2); the new fd is O_CLOEXEC. */
  pidfdGetfd(pidfd: number, targetfd: number): number;
  /** poll(pidfd, 0 ms): true once the process exited (zombie or reaped). */
  pidfdExited(pidfd: number): boolean;
  close(fd: number): void;
  /** eventfd(2) with the initial count (default 0); default flags EFD_CLOEXEC|EFD_NONBLOCK. */
  eventfd(flags?: number, count?: number): number;
  /** Read (reset) a non-blocking eventfd: its count, 0 if nothing was signalled. */
  eventfdDrain(fd: number): number;
  /** poll(2) for input on 1..8 fds: bit i set when fds[i] is readable (or hung up). Blocks the calling thread. */
  pollReadable(fds: number[], timeoutMs: number): number;
  /**
   * read(2) into buf, or -1 (wakeFd drained) on a wake-up with no request. wakeFd a wake queue's (wakeQueueCreate):
   * read(2) alone, which the queue's readers interrupt with a signal (x86-64; one waiting thread per queue); any other
   * wakeFd >= 0: poll both first.
   */
  readOrWake(fd: number, buf: Uint8Array, wakeFd: number): number;
  /**
   * Bind a serving loop's device fd and read buffer to this thread's addon instance, for loopNext; returns the
   * binding's number (a later loopBind replaces it).
   */
  loopBind(fd: number, buf: Uint8Array): number;
  /**
   * write(reply) on the bound fd unless reply is null (ENOENT ignored), then readOrWake into the bound buffer: one
   * call per request in a serving loop. Throws unless `binding` is the current one.
   */
  loopNext(binding: number, reply: Uint8Array | null, wakeFd: number): number;
  /** One write(2) of the whole buffer; bytes written. */
  writeFd(fd: number, buf: Uint8Array): number;

  /**
   * The client channel (uffd/channel.ts): a unix SOCK_SEQPACKET socket bound at `path` (absolute), with SO_PASSCRED,
   * listening; non-blocking and close-on-exec.
   */
  unixListen(path: string, backlog: number): number;
  /** accept4 + the peer's credentials at connect() (SO_PEERCRED) and its pidfd (SO_PEERPIDFD; -1 before 6.5); null: none pending. */
  unixAccept(listenFd: number): UnixPeer | null;
  /** recvmsg of one message with its SCM_RIGHTS fds (close-on-exec) and SCM_CREDENTIALS; null: nothing queued. */
  unixRecv(fd: number, maxBytes: number, maxFds: number): UnixMessage | null;
  /**
   * unixRecv without building objects (a serving loop's hot path): one message into buf; meta (Int32Array of 5 +
   * maxFds) gets [truncated, cred pid, cred uid, cred gid (-1: none), nfds, fds...]. Bytes received, -1 when none.
   */
  unixRecvInto(fd: number, buf: Uint8Array, meta: Int32Array): number;
  /** One non-blocking send (MSG_NOSIGNAL): bytes sent, -1 when the socket buffer is full. */
  unixSend(fd: number, data: Uint8Array): number;
  /** A connected SOCK_SEQPACKET pair [ours (non-blocking, SO_PASSCRED), theirs], both close-on-exec. */
  unixPair(): [number, number];
  /** The socket's SO_COOKIE (unique for the boot), or null when fd is not a socket. */
  sockCookie(fd: number): bigint | null;
  /** One non-blocking sendmsg with `fds` as SCM_RIGHTS: bytes sent, -1 when the socket buffer is full. */
  unixSendFds(fd: number, data: Uint8Array, fds: number[]): number;
  /**
   * Call cb(id, errno) on THIS thread's event loop whenever fd is readable or hung up (level-triggered). The watch
   * does not keep the process alive. Unwatch before closing the fd.
   */
  fdWatch(fd: number, cb: (id: number, errno: number) => void): number;
  /** Stop a watch (false when unknown). */
  fdUnwatch(id: number): boolean;
  /**
   * A set of fds on one epoll (close() it when done), watched with fdWatch as one fd. fdSetAdd/fdSetDel: a member,
   * readable or hung up, level-triggered; fdSetReady: the members ready now (no wait).
   */
  fdSetCreate(): number;
  fdSetAdd(set: number, fd: number): void;
  fdSetDel(set: number, fd: number): boolean;
  fdSetReady(set: number): number[];
  /**
   * Serve a set without returning to the event loop between members: fdSetBurstBegin takes the set's watch out of
   * the loop and the loop's epoll into the set (false: not begun, the loop has work now); fdSetWait blocks until a
   * member is ready (its fd) or the loop has something to do (a message, a watched fd, a due timer: -1, end the burst
   * with fdSetBurstEnd, which gives the watch back to the loop).
   */
  fdSetBurstBegin(set: number, watchId: number): boolean;
  fdSetWait(set: number): number;
  fdSetBurstEnd(set: number, watchId: number): void;
  /**
   * close(2) on the addon's closer thread, for an fd a client chose (its close may run a flush that never returns:
   * a file of a FUSE mount whose daemon does not answer). Returns the closes still pending.
   */
  closeOffThread(fd: number): number;

  // ---- shared memory of mappable blobs (shared-mem.cc) ----
  /**
   * A memfd of `size` bytes (sealed against shrink and grow: a client that gets it cannot make the server's accesses
   * fault), mapped MAP_SHARED into this process: `buffer` is that mapping, `fd` the memfd (owned until release).
   */
  sharedMemCreate(name: string, size: number): { id: number; fd: number; buffer: ArrayBuffer | null };
  /**
   * Detaches `buffer` (every view of it becomes empty), unmaps it and closes the memfd; mappings made of the memfd
   * stay. `buffer` is null for memory above 4 GiB (an ArrayBuffer's limit), which the server does not map.
   */
  sharedMemRelease(id: number, buffer: ArrayBuffer | null): void;
  /** fcntl(F_DUPFD_CLOEXEC): a new fd for the same open file. */
  dupFd(fd: number): number;

  /** glibc ptrace(); PEEK* return the word read. Must be called on the tracer's thread (the one that seized). */
  ptrace(request: number, pid: number, addr: number | bigint, data: number | bigint): bigint;
  /** PTRACE_GETREGS: USER_REGS_SIZE (216) bytes; fields at USER_REGS_OFFSETS, u64 little-endian. */
  ptraceGetRegs(pid: number): Buffer;
  ptraceSetRegs(pid: number, regs: Uint8Array): void;
  /** Synchronous waitpid; blocks unless options has WNOHANG (then pid 0 = nothing yet). EINTR is retried. */
  waitpid(pid: number, options: number): { pid: number; status: number };
  /** process_vm_readv into one new Buffer (iovs concatenated); batches IOV_MAX, resumes partial; fault -> EFAULT. */
  processVmRead(pid: number, iovs: Iov[]): Buffer;
  processVmWrite(pid: number, addr: number, data: Uint8Array): void;
  /** data.length must equal the sum of remote lens. */
  processVmWritev(pid: number, remote: Iov[], data: Uint8Array): void;

  madvise(addr: number, len: number, advice: number): void;
  /** process_madvise(2) (syscall 440), one call, at most IOV_MAX iovs; returns bytes advised. */
  processMadvise(pidfd: number, iovs: Iov[], advice: number): number;
  /** Address of the first byte of a Buffer/TypedArray view (keep the buffer alive while it is used). */
  bufferAddress(buf: Uint8Array): number;

  // ---- thread pidfds watched for exit (pidwatch.cc) ----
  /**
   * A native thread epoll-waiting on up to `slots` pidfds. `exited[slot]` becomes 1 when the slot's task exits (the
   * thread closed its pidfd then); one word, read with a plain or an atomic load. realtime: ask for SCHED_FIFO (best effort, see stats).
   */
  pidWatchStart(slots: number, opts?: { realtime?: boolean }): { id: number; exited: Int32Array };
  /** The watch takes `pidfd` into the empty `slot` (EBUSY if it holds one) and sets exited[slot] = 0; on failure the caller keeps it. */
  pidWatchAdd(id: number, slot: number, pidfd: number): void;
  /** Empties `slot`: true when its pidfd was still open (closed now), false when its exit had closed it already. */
  pidWatchRemove(id: number, slot: number): boolean;
  /** Joins the thread and closes every pidfd it holds and its own fds; the `exited` view stays readable. */
  pidWatchStop(id: number): void;
  pidWatchStats(id: number): PidWatchStats;
  /** PIDFD_GET_INFO (kernel >= 6.13): ESRCH once the task exited; ENOTTY/EINVAL on older kernels. */
  pidfdGetInfo(pidfd: number): PidfdInfo;
}

export interface PidWatchStats { id: number; slots: number; open: number; added: number; exits: number; removed: number; realtime: boolean }

/** struct pidfd_info's ids, in the caller's namespaces; the creds are present when the kernel set PIDFD_INFO_CREDS. */
export interface PidfdInfo { pid: number; tgid: number; ppid: number; ruid?: number; euid?: number; fsuid?: number; rgid?: number; egid?: number; fsgid?: number }

/** forkChild ops: Float64Array of [op, a, b, c] steps (the testkit's constants). */
export interface TestkitConstants {
  FORK_OP_EXIT: number;      // [EXIT, code]
  FORK_OP_SLEEP_MS: number;  // [SLEEP_MS, ms]
  FORK_OP_WRITE_U8: number;  // [WRITE_U8, addr, value]
  FORK_OP_READ_U8: number;   // [READ_U8, addr]
  FORK_OP_MUNMAP: number;    // [MUNMAP, addr, len]
  FORK_OP_MADVISE: number;   // [MADVISE, addr, len, advice]
  FORK_OP_MPROTECT: number;  // [MPROTECT, addr, len, prot]
  FORK_OP_WRITE_FD: number;  // [WRITE_FD, fd, byte]
  FORK_OP_CLOSE: number;     // [CLOSE, fd]
  FORK_OP_WIDTH: number;     // 4
  /** A failing step i makes the child exit with FORK_FAIL_BASE + min(i, 99); no EXIT step -> exit 0. */
  FORK_FAIL_BASE: number;
}

/**
 * The virtgpu_testkit addon (uffd/native/testkit.cc): what only tests and bench call, on this process's own memory.
 * loadTestkit() returns it merged with the UffdBinding (constants included).
 */
export interface TestkitBinding {
  setErrorConstructor?(ctor: ErrorConstructorLike): void;
  readonly constants: TestkitConstants;
  mmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number): number;
  munmap(addr: number, len: number): void;
  mprotect(addr: number, len: number, prot: number): void;
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr?: number): number;
  memfdCreate(name: string, flags: number): number;
  /** memcpy from/to OUR OWN memory (tests). An unmapped address crashes the process. */
  peek(addr: number, len: number): Buffer;
  poke(addr: number, data: Uint8Array): void;
  getpid(): number;
  gettid(): number;

  /** Synchronous ioctl: a Buffer arg passes a pointer to its bytes, number/bigint passes the raw value. */
  ioctl(fd: number, cmd: number, arg: Uint8Array | number | bigint): { result: number };
  /** Same on the libuv threadpool (for a server answering on this JS thread); the Buffer is kept alive. */
  ioctlAsync(fd: number, cmd: number, arg: Uint8Array | number | bigint): Promise<number>;

  /**
   * fork() via raw clone (no atfork handlers); the child runs `ops` with raw syscalls only (no JS) and exits.
   * Returns the child pid; reap it with waitpid.
   */
  forkChild(ops: Float64Array): number;
}

