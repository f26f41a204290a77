// virtgpu_uffd: thin syscall wrappers (userfaultfd and UFFDIO_*, PROCMAP_QUERY, pidfd, eventfd, poll, the serving
// loop's read/write, ptrace, waitpid, process_vm_*, madvise) and the module's constants; the reader thread is in
// reader.cc, the client channel's sockets in channel.cc, what only tests call in testkit.cc (its own target). Every policy decision lives in TypeScript.
//
// Conventions: arguments are checked against a usage string (TypeError); every failing syscall throws one JS
// error class carrying {errno (positive), code ('EINVAL'), syscall} (setErrorConstructor, else a plain Error with
// those properties); fds and threads are owned by RAII objects; the only blocking work on a JS thread is a short
// synchronous syscall the caller asked for (munmap of a registered range blocks until the reader thread reads).
#include "addon.h"

namespace vgn {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// userfaultfd and UFFDIO_*
// ---------------------------------------------------------------------------------------------------------------

Napi::Value Userfaultfd(const Napi::CallbackInfo& info) {
  Args a(info, "userfaultfd(flags: number)", 1, 1);
  int flags = a.I32(0, "flags");
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd >= 0) return Num(info.Env(), fd);
  int sysErr = errno;
  // Fallback: /dev/userfaultfd (kernel >= 6.1) when the syscall is refused (vm.unprivileged_userfaultfd=0).
  Fd dev(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
  if (dev.Get() < 0) {
    int devErr = errno;
    ThrowSys(info.Env(), "userfaultfd", sysErr, "fallback open(/dev/userfaultfd): " + ErrnoName(devErr));
  }
  fd = ioctl(dev.Get(), USERFAULTFD_IOC_NEW, flags);
  if (fd < 0) {
    int devErr = errno;
    ThrowSys(info.Env(), "userfaultfd", sysErr, "fallback ioctl(USERFAULTFD_IOC_NEW): " + ErrnoName(devErr));
  }
  return Num(info.Env(), fd);
}

Napi::Value UffdApi(const Napi::CallbackInfo& info) {
  Args a(info, "uffdApi(fd: number, features: bigint)", 2, 2);
  struct uffdio_api api {};
  api.api = UFFD_API;
  api.features = a.U64(1, "features");
  int fd = a.Fd(0);
  if (ioctl(fd, UFFDIO_API, &api) < 0) ThrowSys(info.Env(), "ioctl(UFFDIO_API)", errno, "features " + Hex(api.features));
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("features", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(api.features)));
  r.Set("ioctls", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(api.ioctls)));
  return r;
}

Napi::Value UffdRegister(const Napi::CallbackInfo& info) {
  Args a(info, "uffdRegister(fd: number, start: number, len: number, mode: number | bigint)", 4, 4);
  struct uffdio_register reg {};
  int fd = a.Fd(0);
  reg.range = RangeArgs(a, 1);
  reg.mode = a.U64(3, "mode");
  if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
    ThrowSys(info.Env(), "ioctl(UFFDIO_REGISTER)", errno, Hex(reg.range.start) + "+" + Hex(reg.range.len));
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reg.ioctls));
}

// UFFDIO_UNREGISTER of args (fd, start, len): 0 or the positive errno.
int UnregisterErrno(const Args& a) {
  struct uffdio_range range {};
  int fd = a.Fd(0);
  range.start = a.U64(1, "start");
  range.len = a.U64(2, "len");
  return ioctl(fd, UFFDIO_UNREGISTER, &range) < 0 ? errno : 0;
}

Napi::Value UffdUnregister(const Napi::CallbackInfo& info) {
  Args a(info, "uffdUnregister(fd: number, start: number, len: number)", 3, 3);
  if (int err = UnregisterErrno(a))
    ThrowSys(info.Env(), "ioctl(UFFDIO_UNREGISTER)", err, Hex(a.U64(1, "start")) + "+" + Hex(a.U64(2, "len")));
  return info.Env().Undefined();
}

// Same ioctl, for callers that expect a failure (the range may be gone): returns 0 or the positive errno, no throw.
Napi::Value UffdUnregisterErrno(const Napi::CallbackInfo& info) {
  Args a(info, "uffdUnregisterErrno(fd: number, start: number, len: number)", 3, 3);
  return Num(info.Env(), UnregisterErrno(a));
}

// PROCMAP_QUERY (kernel >= 6.11) on an fd of /proc/PID/maps: the VMA covering addr (or, with next, the first one
// at or above it). Writes start, end, query flags (r/w/x/shared bits) into out[0..2]; false when there is none.
// With a name buffer (5th argument) the VMA's name is written there as /proc/PID/maps shows it ("" for anonymous,
// "[heap]", a path) and out[3] = its length (the buffer's size at most; longer names are cut).
struct ProcmapQuery {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, struct ProcmapQuery);
constexpr uint64_t kProcmapCoveringOrNext = 0x10;

Napi::Value ProcmapQueryFn(const Napi::CallbackInfo& info) {
  Args a(info, "procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array, name?: Uint8Array)", 4, 5);
  int fd = a.Fd(0);
  struct ProcmapQuery q {};
  q.size = sizeof q;
  q.query_addr = a.U64(1, "addr");
  q.query_flags = a.Bool(2, "next") ? kProcmapCoveringOrNext : 0;
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::Float64Array>().ElementLength() < 3)
    throw Napi::TypeError::New(info.Env(), "out: Float64Array(3) expected; usage: procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array, name?: Uint8Array)");
  bool want_name = info.Length() > 4 && !info[4].IsUndefined();
  if (want_name) {
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        info[3].As<Napi::Float64Array>().ElementLength() < 4)
      throw Napi::TypeError::New(info.Env(), "name: Uint8Array expected (and out: Float64Array(4)); usage: procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array, name?: Uint8Array)");
    auto name = info[4].As<Napi::Uint8Array>();
    q.vma_name_addr = reinterpret_cast<uint64_t>(name.Data());
    q.vma_name_size = static_cast<uint32_t>(name.ElementLength());
  }
  if (ioctl(fd, kProcmapQuery, &q) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowSys(info.Env(), "ioctl(PROCMAP_QUERY)", errno, Hex(q.query_addr));
  }
  auto out = info[3].As<Napi::Float64Array>();
  out[0] = static_cast<double>(q.vma_start);
  out[1] = static_cast<double>(q.vma_end);
  out[2] = static_cast<double>(q.vma_flags);
  // vma_name_size: bytes written including the NUL, 0 for a VMA without a name.
  if (want_name) out[3] = q.vma_name_size > 0 ? static_cast<double>(q.vma_name_size - 1) : 0;
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value UffdWriteProtect(const Napi::CallbackInfo& info) {
  Args a(info, "uffdWriteProtect(fd: number, start: number, len: number, wp: boolean, dontWake?: boolean)", 4, 5);
  struct uffdio_writeprotect w {};
  int fd = a.Fd(0);
  w.range = RangeArgs(a, 1);
  w.mode = (a.Bool(3, "wp") ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
           (a.Has(4) && a.Bool(4, "dontWake") ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
  // EAGAIN (mmap_changing, e.g. right after a FORK event) is reported, not retried: the retry policy is TS's.
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) < 0)
    ThrowSys(info.Env(), "ioctl(UFFDIO_WRITEPROTECT)", errno, Hex(w.range.start) + "+" + Hex(w.range.len));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------------------------
// pidfd, close
// ---------------------------------------------------------------------------------------------------------------

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Args a(info, "pidfdOpen(pid: number, flags?: number)", 1, 2);
  int pid = a.Pid(0);
  unsigned flags = a.Has(1) ? a.U32(1, "flags") : 0;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, flags));
  if (fd < 0) ThrowSys(info.Env(), "pidfd_open", errno, "pid " + std::to_string(pid));
  return Num(info.Env(), fd);
}

Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  Args a(info, "pidfdGetfd(pidfd: number, targetfd: number)", 2, 2);
  int pidfd = a.Fd(0, "pidfd");
  int target = a.Fd(1, "targetfd");
  int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, target, 0));  // result is O_CLOEXEC
  if (fd < 0) ThrowSys(info.Env(), "pidfd_getfd", errno, "target fd " + std::to_string(target));
  return Num(info.Env(), fd);
}

Napi::Value PidfdExited(const Napi::CallbackInfo& info) {
  Args a(info, "pidfdExited(pidfd: number)", 1, 1);
  struct pollfd p = {a.Fd(0, "pidfd"), POLLIN, 0};
  int n;
  do n = poll(&p, 1, 0); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(info.Env(), "poll", errno);
  if (p.revents & POLLNVAL) ThrowSys(info.Env(), "poll", EBADF, "pidfd " + std::to_string(p.fd));
  return Napi::Boolean::New(info.Env(), (p.revents & (POLLIN | POLLHUP)) != 0);
}

Napi::Value Eventfd(const Napi::CallbackInfo& info) {
  Args a(info, "eventfd(flags?: number, count?: number)", 0, 2);
  int flags = a.Has(0) ? a.I32(0, "flags") : (EFD_CLOEXEC | EFD_NONBLOCK);
  unsigned count = a.Has(1) ? static_cast<unsigned>(a.Int(1, "count", 0, UINT32_MAX)) : 0;
  int fd = eventfd(count, flags);
  if (fd < 0) ThrowSys(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// Reads (and so resets) a non-blocking eventfd: the count, 0 when nothing was signalled.
Napi::Value EventfdDrain(const Napi::CallbackInfo& info) {
  Args a(info, "eventfdDrain(fd: number)", 1, 1);
  uint64_t v = 0;
  ssize_t n;
  do n = read(a.Fd(0), &v, sizeof v); while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) ThrowSys(info.Env(), "read(eventfd)", errno);
  return Napi::Number::New(info.Env(), n < 0 ? 0 : static_cast<double>(v));
}

// poll(2) for POLLIN on up to 8 fds; returns a bitmask (bit i: fds[i] readable or hung up). Blocks the calling
// JS thread: meant for a worker whose only job is to wait (the serving loop), never for the main thread.
Napi::Value PollReadable(const Napi::CallbackInfo& info) {
  Args a(info, "pollReadable(fds: number[], timeoutMs: number)", 2, 2);
  if (!info[0].IsArray()) a.Fail("fds must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 8) a.Fail("fds must hold 1 to 8 fds");
  struct pollfd p[8];
  for (uint32_t i = 0; i < arr.Length(); i++) p[i] = {static_cast<int>(a.U64Of(arr.Get(i), "fd")), POLLIN, 0};
  int timeout = a.I32(1, "timeoutMs");
  int n;
  do n = poll(p, arr.Length(), timeout); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(info.Env(), "poll", errno);
  uint32_t mask = 0;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (p[i].revents & POLLNVAL) ThrowSys(info.Env(), "poll", EBADF, "fd " + std::to_string(p[i].fd));
    if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) mask |= 1u << i;
  }
  return Napi::Number::New(info.Env(), mask);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// A read(2) that a wake queue's readers interrupt with a signal (no poll(2) in front of every request)
// ---------------------------------------------------------------------------------------------------------------
//
// The serving thread publishes its tid in the queue (`sleeper`), then enters a window of its own instructions:
// load `pending`, leave if set, else the read syscall. A reader queues its token, sets `pending`, and sends
// kWakeSignal to the sleeper. Whatever the signal hits, the wake-up is kept: before the window the load sees
// `pending` (seq_cst store, then load, on both sides); inside the window, before or at the syscall instruction,
// the handler moves the thread to the window's exit (the read never starts, or is not restarted: with SA_RESTART
// the kernel rewinds to the syscall instruction before the handler runs); during the read, read(2) is interrupted
// the same way; after it, the request stands and `pending` is seen at the next read. SA_RESTART keeps every other
// syscall a late signal could hit unchanged. x86-64 only; elsewhere, and when the signal is taken, poll(2) as before.
#if defined(__x86_64__)
#define VGN_WAKEABLE_READ 1
extern "C" {
// long vgn_wakeable_read(int fd, void* buf, size_t len, const int32_t* pending): the raw syscall result (-errno),
// -EINTR without reading when *pending was set (or the handler cancelled the window).
long vgn_wakeable_read(long fd, void* buf, size_t len, const int32_t* pending);
extern const char vgn_wr_begin[], vgn_wr_end[], vgn_wr_cancel[];
}
asm(R"(
  .text
  .globl vgn_wakeable_read
  .hidden vgn_wakeable_read
  .type vgn_wakeable_read, @function
vgn_wakeable_read:
  .globl vgn_wr_begin
  .hidden vgn_wr_begin
vgn_wr_begin:
  movl (%rcx), %eax
  testl %eax, %eax
  jnz vgn_wr_cancel
  xorl %eax, %eax
  syscall
  .globl vgn_wr_end
  .hidden vgn_wr_end
vgn_wr_end:
  ret
  .globl vgn_wr_cancel
  .hidden vgn_wr_cancel
vgn_wr_cancel:
  movq $-4, %rax
  ret
  .size vgn_wakeable_read, .-vgn_wakeable_read
)");
static_assert(SYS_read == 0 && EINTR == 4, "the window's constants");
static_assert(sizeof(std::atomic<int32_t>) == sizeof(int32_t), "pending is a plain int32 to the window");
#else
#define VGN_WAKEABLE_READ 0
#endif

namespace {

int WakeSignal() { return SIGRTMIN + 6; }

#if VGN_WAKEABLE_READ
void WakeHandler(int, siginfo_t*, void* ctx) {
  greg_t* ip = &static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs[REG_RIP];
  if (*ip >= reinterpret_cast<greg_t>(vgn_wr_begin) && *ip < reinterpret_cast<greg_t>(vgn_wr_end)) *ip = reinterpret_cast<greg_t>(vgn_wr_cancel);
}
#endif

/** The handler, installed once for the process; false (poll is used) where the signal already has another owner. */
bool WakeSignalReady() {
#if VGN_WAKEABLE_READ
  static const bool ok = [] {
    struct sigaction old {};
    if (sigaction(WakeSignal(), nullptr, &old) != 0 || old.sa_handler != SIG_DFL) return false;
    struct sigaction sa {};
    sa.sa_sigaction = WakeHandler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(WakeSignal(), &sa, nullptr) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

/** The calling thread's tid, with the wake signal unblocked for it (Node's threads may start with signals blocked). */
int32_t WakeableThread() {
  thread_local int32_t tid = [] {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, WakeSignal());
    pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
    return static_cast<int32_t>(syscall(SYS_gettid));
  }();
  return tid;
}

}  // namespace

void WakeQueueKick(WakeQueue& q) {
  q.pending.store(1);
  int32_t t = q.sleeper.load();
  if (t != 0) syscall(SYS_tgkill, getpid(), t, WakeSignal());
}

namespace {

// The serving loop's read: with wakeFd >= 0, wait for a request or a wake-up. A wake queue's fd: read(2) alone,
// interrupted by its readers' signal (above); any other fd: poll both fds first. On a wake-up with no request,
// wakeFd is drained and -1 returned. Otherwise one read(2) of the next request into buf.
Napi::Value PollThenRead(Napi::Env env, int fd, uint8_t* data, size_t len, int wakeFd) {
#if VGN_WAKEABLE_READ
  std::shared_ptr<WakeQueue> q = wakeFd >= 0 && WakeSignalReady() ? WakeQueues::Of().Get(wakeFd) : nullptr;
  if (q) {
    int32_t tid = WakeableThread();
    for (;;) {
      q->sleeper.store(tid);
      long got = vgn_wakeable_read(fd, data, len, reinterpret_cast<const int32_t*>(&q->pending));
      q->sleeper.store(0, std::memory_order_release);
      if (got >= 0) return Napi::Number::New(env, static_cast<double>(got));
      if (got != -EINTR) ThrowSys(env, "read", static_cast<int>(-got));
      if (q->pending.load()) {
        uint64_t v;
        (void)!read(wakeFd, &v, sizeof v);  // the bump that came with the tokens: a later poll(2) sees none
        return Napi::Number::New(env, -1);
      }
    }
  }
#endif
  if (wakeFd >= 0) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {wakeFd, POLLIN, 0}};
    int n;
    do n = poll(p, 2, -1); while (n < 0 && errno == EINTR);
    if (n < 0) ThrowSys(env, "poll", errno);
    if ((p[1].revents & POLLIN) && !(p[0].revents & (POLLIN | POLLERR | POLLHUP))) {
      uint64_t v;
      (void)!read(wakeFd, &v, sizeof v);
      return Napi::Number::New(env, -1);
    }
  }
  ssize_t got;
  do got = read(fd, data, len); while (got < 0 && errno == EINTR);
  if (got < 0) ThrowSys(env, "read", errno);
  return Napi::Number::New(env, static_cast<double>(got));
}

// read(2) of one request (cheaper than fs.readSync's request machinery), woken early by wakeFd.
Napi::Value ReadOrWake(const Napi::CallbackInfo& info) {
  Args a(info, "readOrWake(fd: number, buf: Buffer, wakeFd: number)", 3, 3);
  if (!info[1].IsTypedArray()) a.Fail("buf must be a Buffer/Uint8Array");
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  return PollThenRead(info.Env(), a.Fd(0), buf.Data(), buf.ByteLength(), a.I32(2, "wakeFd"));
}

// loopBind(fd, buf) → binding: the serving loop's device fd and read buffer, kept for loopNext (per env); the
// number names this binding (a later loopBind replaces it, and loopNext of the old number then throws).
Napi::Value LoopBind(const Napi::CallbackInfo& info) {
  Args a(info, "loopBind(fd: number, buf: Uint8Array)", 2, 2);
  int fd = a.Fd(0);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) a.Fail("buf must be a Uint8Array");
  AddonData* d = info.Env().GetInstanceData<AddonData>();
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  d->loopBuf = Napi::Persistent(buf);
  d->loopData = buf.Data();
  d->loopLen = buf.ByteLength();
  d->loopFd = fd;
  d->loopGen = d->loopGen == INT32_MAX ? 1 : d->loopGen + 1;
  return Napi::Number::New(info.Env(), d->loopGen);
}

// loopNext(binding, reply, wakeFd): the steady state of the serving loop in ONE call, on what loopBind bound. Write the
// reply unless it is null (one write(2); ENOENT = the request was interrupted meanwhile, ignored), then read the
// next request into the bound buffer as readOrWake does. Errors name the failing syscall. Per request, so the
// arguments are taken with one N-API call each (no type probe before the conversion).
Napi::Value LoopNext(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  AddonData* d = info.Env().GetInstanceData<AddonData>();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "usage: loopNext(binding: number, reply: Uint8Array | null, wakeFd: number)");
  int32_t gen, wakeFd;
  if (napi_get_value_int32(env, info[0], &gen) != napi_ok || napi_get_value_int32(env, info[2], &wakeFd) != napi_ok)
    throw Napi::TypeError::New(env, "loopNext: binding and wakeFd must be numbers");
  if (d == nullptr || d->loopFd < 0 || gen != d->loopGen) throw Napi::Error::New(env, "loopNext: not the current loopBind of this thread");
  napi_value reply = info[1];
  napi_valuetype t;
  napi_typeof(env, reply, &t);
  if (t != napi_null) {
    napi_typedarray_type type;
    size_t len;
    void* data;
    if (napi_get_typedarray_info(env, reply, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array)
      throw Napi::TypeError::New(env, "loopNext: reply must be a Uint8Array or null");
    ssize_t w;
    do w = write(d->loopFd, data, len); while (w < 0 && errno == EINTR);
    if (w < 0 && errno != ENOENT) ThrowSys(env, "write", errno);
  }
  return PollThenRead(env, d->loopFd, d->loopData, d->loopLen, wakeFd);
}

// One write(2) of the whole reply (a FUSE reply must be a single write); returns bytes written.
Napi::Value WriteFd(const Napi::CallbackInfo& info) {
  Args a(info, "writeFd(fd: number, buf: Buffer)", 2, 2);
  int fd = a.Fd(0);
  if (!info[1].IsTypedArray()) a.Fail("buf must be a Buffer/Uint8Array");
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  ssize_t n;
  do n = write(fd, buf.Data(), buf.ByteLength()); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(info.Env(), "write", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Args a(info, "close(fd: number)", 1, 1);
  int fd = a.Fd(0);
  if (::close(fd) < 0 && errno != EINTR) ThrowSys(info.Env(), "close", errno, "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------------------------
// ptrace, waitpid, process_vm_*
// ---------------------------------------------------------------------------------------------------------------

Napi::Value Ptrace(const Napi::CallbackInfo& info) {
  Args a(info, "ptrace(request: number, pid: number, addr: number | bigint, data: number | bigint)", 4, 4);
  long req = static_cast<long>(a.Int(0, "request", 0, INT_MAX));
  int pid = a.Pid(1);
  uint64_t addr = a.U64(2, "addr");
  uint64_t data = a.U64(3, "data");
  errno = 0;
  // glibc returns the peeked word for PTRACE_PEEK*; -1 is then only an error when errno is set.
  long r = ptrace(static_cast<enum __ptrace_request>(req), pid, reinterpret_cast<void*>(addr), reinterpret_cast<void*>(data));
  if (r == -1 && errno != 0)
    ThrowSys(info.Env(), "ptrace", errno, "request " + std::to_string(req) + " pid " + std::to_string(pid));
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(r));
}

Napi::Value PtraceGetRegs(const Napi::CallbackInfo& info) {
  Args a(info, "ptraceGetRegs(pid: number)", 1, 1);
#if defined(__x86_64__)
  struct user_regs_struct regs {};
  int pid = a.Pid(0);
  if (ptrace(PTRACE_GETREGS, pid, nullptr, &regs) < 0) ThrowSys(info.Env(), "ptrace(PTRACE_GETREGS)", errno);
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(&regs), sizeof regs);
#else
  ThrowSys(info.Env(), "ptrace(PTRACE_GETREGS)", ENOSYS, "x86-64 only");
#endif
}

Napi::Value PtraceSetRegs(const Napi::CallbackInfo& info) {
  Args a(info, "ptraceSetRegs(pid: number, regs: Buffer /* 216 bytes, struct user_regs_struct */)", 2, 2);
#if defined(__x86_64__)
  int pid = a.Pid(0);
  auto bytes = a.Bytes(1, "regs");
  struct user_regs_struct regs {};
  if (bytes.second != sizeof regs) a.Fail("regs must be exactly " + std::to_string(sizeof regs) + " bytes");
  memcpy(&regs, bytes.first, sizeof regs);
  if (ptrace(PTRACE_SETREGS, pid, nullptr, &regs) < 0) ThrowSys(info.Env(), "ptrace(PTRACE_SETREGS)", errno);
  return info.Env().Undefined();
#else
  ThrowSys(info.Env(), "ptrace(PTRACE_SETREGS)", ENOSYS, "x86-64 only");
#endif
}

Napi::Value Waitpid(const Napi::CallbackInfo& info) {
  Args a(info, "waitpid(pid: number, options: number)", 2, 2);
  int pid = a.Pid(0);
  int options = a.I32(1, "options");
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, options); while (r < 0 && errno == EINTR);
  if (r < 0) ThrowSys(info.Env(), "waitpid", errno, "pid " + std::to_string(pid));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("pid", Num(info.Env(), r));
  o.Set("status", Num(info.Env(), status));
  return o;
}

// Moves bytes between one local buffer and remote iovecs: IOV_MAX remote iovecs per syscall, resuming after a
// partial transfer; the call that starts at a bad remote address fails, so a fault surfaces as EFAULT.
void VmTransfer(Napi::Env env, bool write, int pid, uint8_t* local, const std::vector<struct iovec>& remote) {
  const char* name = write ? "process_vm_writev" : "process_vm_readv";
  size_t total = 0;
  for (auto& v : remote) total += v.iov_len;
  size_t ri = 0, roff = 0, done = 0;
  std::vector<struct iovec> batch;
  batch.reserve(IOV_MAX);
  while (done < total) {
    while (ri < remote.size() && remote[ri].iov_len == roff) { ri++; roff = 0; }
    batch.clear();
    size_t chunk = 0;
    for (size_t k = ri; k < remote.size() && batch.size() < IOV_MAX; k++) {
      size_t off = (k == ri) ? roff : 0;
      if (remote[k].iov_len == off) continue;
      batch.push_back({static_cast<uint8_t*>(remote[k].iov_base) + off, remote[k].iov_len - off});
      chunk += remote[k].iov_len - off;
    }
    struct iovec lv = {local + done, chunk};
    ssize_t n = write ? process_vm_writev(pid, &lv, 1, batch.data(), batch.size(), 0)
                      : process_vm_readv(pid, &lv, 1, batch.data(), batch.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EFAULT;
      ThrowSys(env, name, err,
               "pid " + std::to_string(pid) + " at remote " + Hex(reinterpret_cast<uint64_t>(batch[0].iov_base)) +
                   " after " + std::to_string(done) + " of " + std::to_string(total) + " bytes");
    }
    done += static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      size_t avail = remote[ri].iov_len - roff;
      if (left < avail) { roff += left; left = 0; }
      else { left -= avail; ri++; roff = 0; }
    }
  }
}

Napi::Value ProcessVmRead(const Napi::CallbackInfo& info) {
  Args a(info, "processVmRead(pid: number, iovs: {addr: number, len: number}[])", 2, 2);
  int pid = a.Pid(0);
  auto iovs = a.Iovs(1, "iovs");
  size_t total = 0;
  for (auto& v : iovs) total += v.iov_len;
  if (total > static_cast<size_t>(INT32_MAX)) a.Fail("total length must be < 2^31");
  Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(info.Env(), total);
  VmTransfer(info.Env(), false, pid, buf.Data(), iovs);
  return buf;
}

Napi::Value ProcessVmWrite(const Napi::CallbackInfo& info) {
  Args a(info, "processVmWrite(pid: number, addr: number, data: Buffer | Uint8Array)", 3, 3);
  int pid = a.Pid(0);
  uint64_t addr = a.U64(1, "addr");
  auto bytes = a.Bytes(2, "data");
  std::vector<struct iovec> remote = {{reinterpret_cast<void*>(addr), bytes.second}};
  VmTransfer(info.Env(), true, pid, bytes.first, remote);
  return info.Env().Undefined();
}

Napi::Value ProcessVmWritev(const Napi::CallbackInfo& info) {
  Args a(info, "processVmWritev(pid: number, remote: {addr: number, len: number}[], data: Buffer | Uint8Array)", 3, 3);
  int pid = a.Pid(0);
  auto iovs = a.Iovs(1, "remote");
  auto bytes = a.Bytes(2, "data");
  size_t total = 0;
  for (auto& v : iovs) total += v.iov_len;
  if (total != bytes.second) a.Fail("data length must equal the sum of remote lengths");
  VmTransfer(info.Env(), true, pid, bytes.first, iovs);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------------------------
// madvise on our own address space and process_madvise on a client's, Buffer addresses
// ---------------------------------------------------------------------------------------------------------------

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  return RangeCall(info, "madvise(addr: number, len: number, advice: number)", "madvise", 3,
                   [](void* p, size_t l, int advice) { return madvise(p, l, advice); });
}

Napi::Value ProcessMadvise(const Napi::CallbackInfo& info) {
  Args a(info, "processMadvise(pidfd: number, iovs: {addr: number, len: number}[], advice: number)", 3, 3);
  int pidfd = a.Fd(0, "pidfd");
  auto iovs = a.Iovs(1, "iovs");
  if (iovs.size() > IOV_MAX) a.Fail("at most IOV_MAX iovecs");
  long r = syscall(SYS_process_madvise, pidfd, iovs.data(), iovs.size(), a.I32(2, "advice"), 0u);
  if (r < 0) ThrowSys(info.Env(), "process_madvise", errno);
  return Num(info.Env(), static_cast<double>(r));  // bytes advised (may be partial)
}

Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  Args a(info, "bufferAddress(buf: Buffer | Uint8Array)", 1, 1);
  return Addr(info.Env(), reinterpret_cast<uint64_t>(a.Bytes(0, "buf").first));
}

// ---------------------------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------------------------

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  auto b = [&](const char* k, uint64_t v) { c.Set(k, Napi::BigInt::New(env, v)); };
#define N(x) n(#x, static_cast<double>(x))
#define B(x) b(#x, static_cast<uint64_t>(x))
  N(O_CLOEXEC); N(O_NONBLOCK); N(O_RDONLY); N(O_RDWR);
  N(UFFD_USER_MODE_ONLY); N(USERFAULTFD_IOC_NEW);
  B(UFFD_API);
  B(UFFD_FEATURE_PAGEFAULT_FLAG_WP); B(UFFD_FEATURE_EVENT_FORK); B(UFFD_FEATURE_EVENT_REMAP);
  B(UFFD_FEATURE_EVENT_REMOVE); B(UFFD_FEATURE_MISSING_HUGETLBFS); B(UFFD_FEATURE_MISSING_SHMEM);
  B(UFFD_FEATURE_EVENT_UNMAP); B(UFFD_FEATURE_SIGBUS); B(UFFD_FEATURE_THREAD_ID); B(UFFD_FEATURE_MINOR_HUGETLBFS);
  B(UFFD_FEATURE_MINOR_SHMEM); B(UFFD_FEATURE_EXACT_ADDRESS); B(UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
  B(UFFD_FEATURE_WP_UNPOPULATED); B(UFFD_FEATURE_POISON); B(UFFD_FEATURE_WP_ASYNC); B(UFFD_FEATURE_MOVE);
  N(UFFDIO_REGISTER_MODE_MISSING); N(UFFDIO_REGISTER_MODE_WP); N(UFFDIO_REGISTER_MODE_MINOR);
  N(UFFDIO_WRITEPROTECT_MODE_WP); N(UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
  N(UFFD_EVENT_PAGEFAULT); N(UFFD_EVENT_FORK); N(UFFD_EVENT_REMAP); N(UFFD_EVENT_REMOVE); N(UFFD_EVENT_UNMAP);
  N(UFFD_PAGEFAULT_FLAG_WRITE); N(UFFD_PAGEFAULT_FLAG_WP); N(UFFD_PAGEFAULT_FLAG_MINOR);
  N(_UFFDIO_REGISTER); N(_UFFDIO_UNREGISTER); N(_UFFDIO_WAKE); N(_UFFDIO_COPY); N(_UFFDIO_ZEROPAGE);
  N(_UFFDIO_MOVE); N(_UFFDIO_WRITEPROTECT); N(_UFFDIO_CONTINUE); N(_UFFDIO_POISON); N(_UFFDIO_API);
  N(UFFDIO_API); N(UFFDIO_REGISTER); N(UFFDIO_UNREGISTER); N(UFFDIO_WAKE); N(UFFDIO_COPY); N(UFFDIO_ZEROPAGE);
  N(UFFDIO_MOVE); N(UFFDIO_WRITEPROTECT); N(UFFDIO_CONTINUE); N(UFFDIO_POISON);
  N(MADV_NORMAL); N(MADV_RANDOM); N(MADV_SEQUENTIAL); N(MADV_WILLNEED); N(MADV_DONTNEED); N(MADV_FREE);
  N(MADV_REMOVE); N(MADV_DONTFORK); N(MADV_DOFORK); N(MADV_MERGEABLE); N(MADV_UNMERGEABLE); N(MADV_HUGEPAGE);
  N(MADV_NOHUGEPAGE); N(MADV_DONTDUMP); N(MADV_DODUMP); N(MADV_WIPEONFORK); N(MADV_KEEPONFORK); N(MADV_COLD);
  N(MADV_PAGEOUT); N(MADV_POPULATE_READ); N(MADV_POPULATE_WRITE); N(MADV_DONTNEED_LOCKED); N(MADV_COLLAPSE);
  N(PROT_NONE); N(PROT_READ); N(PROT_WRITE); N(PROT_EXEC);
  N(MAP_SHARED); N(MAP_PRIVATE); N(MAP_FIXED); N(MAP_ANONYMOUS); N(MAP_NORESERVE); N(MAP_POPULATE);
  N(MAP_FIXED_NOREPLACE); N(MAP_HUGETLB); N(MAP_GROWSDOWN); N(MAP_LOCKED);
  N(MREMAP_MAYMOVE); N(MREMAP_FIXED); N(MREMAP_DONTUNMAP);
  N(MFD_CLOEXEC); N(MFD_ALLOW_SEALING); N(MFD_HUGETLB);
  N(EFD_CLOEXEC); N(EFD_NONBLOCK); N(EFD_SEMAPHORE);
  N(WNOHANG); N(WUNTRACED); N(WCONTINUED); N(__WALL); N(__WCLONE); N(__WNOTHREAD);
  N(PTRACE_TRACEME); N(PTRACE_PEEKTEXT); N(PTRACE_PEEKDATA); N(PTRACE_PEEKUSER); N(PTRACE_POKETEXT);
  N(PTRACE_POKEDATA); N(PTRACE_POKEUSER); N(PTRACE_CONT); N(PTRACE_KILL); N(PTRACE_SINGLESTEP);
  N(PTRACE_GETREGS); N(PTRACE_SETREGS); N(PTRACE_ATTACH); N(PTRACE_DETACH); N(PTRACE_SYSCALL);
  N(PTRACE_SETOPTIONS); N(PTRACE_GETEVENTMSG); N(PTRACE_GETSIGINFO); N(PTRACE_SEIZE); N(PTRACE_INTERRUPT);
  N(PTRACE_LISTEN);
  N(PTRACE_O_TRACESYSGOOD); N(PTRACE_O_EXITKILL); N(PTRACE_O_TRACEEXEC); N(PTRACE_O_TRACEFORK);
  N(PTRACE_EVENT_STOP);
  N(PIDFD_NONBLOCK);
  N(FIONREAD); N(FIONBIO);
  N(IOV_MAX);
  N(SYS_read); N(SYS_write); N(SYS_close); N(SYS_mmap); N(SYS_munmap); N(SYS_mprotect); N(SYS_madvise);
  N(SYS_mremap); N(SYS_ioctl); N(SYS_getpid); N(SYS_gettid); N(SYS_clock_nanosleep); N(SYS_nanosleep);
  N(SYS_userfaultfd); N(SYS_pidfd_open); N(SYS_pidfd_getfd); N(SYS_process_madvise); N(SYS_exit_group);
#undef N
#undef B
  n("UFFD_MSG_SIZE", kUffdMsgSize);
  n("READER_RECORD_HEADER_SIZE", kRecordHeaderSize);
  n("READER_HINT_READING", kHintReading);
  n("READER_HINT_QUEUED", kHintQueued);
  n("PAGE_SIZE", static_cast<double>(sysconf(_SC_PAGESIZE)));
#if defined(__x86_64__)
  n("USER_REGS_SIZE", sizeof(struct user_regs_struct));
  Napi::Object off = Napi::Object::New(env);
#define R(f) off.Set(#f, Napi::Number::New(env, offsetof(struct user_regs_struct, f)))
  R(r15); R(r14); R(r13); R(r12); R(rbp); R(rbx); R(r11); R(r10); R(r9); R(r8); R(rax); R(rcx); R(rdx);
  R(rsi); R(rdi); R(orig_rax); R(rip); R(cs); R(eflags); R(rsp); R(ss); R(fs_base); R(gs_base); R(ds);
  R(es); R(fs); R(gs);
#undef R
  c.Set("USER_REGS_OFFSETS", off);
#endif
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  auto fn = [&](const char* name, Napi::Function::Callback cb) { Export(env, exports, name, cb); };
  fn("setErrorConstructor", SetErrorConstructor);
  fn("userfaultfd", Userfaultfd);
  fn("uffdApi", UffdApi);
  fn("uffdRegister", UffdRegister);
  fn("uffdUnregister", UffdUnregister);
  fn("uffdUnregisterErrno", UffdUnregisterErrno);
  fn("procmapQuery", ProcmapQueryFn);
  fn("uffdWriteProtect", UffdWriteProtect);
  fn("readerStart", ReaderStart);
  fn("readerDrain", ReaderDrain);
  fn("readerDrainInto", ReaderDrainInto);
  fn("readerStop", ReaderStop);
  fn("readerPendingView", ReaderPendingView);
  fn("readerStats", ReaderStats);
  fn("wakeQueueCreate", WakeQueueCreate);
  fn("wakeQueueDrain", WakeQueueDrain);
  fn("wakeQueueClose", WakeQueueClose);
  fn("pidfdOpen", PidfdOpen);
  fn("pidfdGetfd", PidfdGetfd);
  fn("pidfdExited", PidfdExited);
  fn("close", Close);
  fn("eventfd", Eventfd);
  fn("eventfdDrain", EventfdDrain);
  fn("pollReadable", PollReadable);
  fn("readOrWake", ReadOrWake);
  fn("writeFd", WriteFd);
  fn("loopBind", LoopBind);
  fn("loopNext", LoopNext);
  fn("ptrace", Ptrace);
  fn("ptraceGetRegs", PtraceGetRegs);
  fn("ptraceSetRegs", PtraceSetRegs);
  fn("waitpid", Waitpid);
  fn("processVmRead", ProcessVmRead);
  fn("processVmWrite", ProcessVmWrite);
  fn("processVmWritev", ProcessVmWritev);
  fn("madvise", Madvise);
  fn("processMadvise", ProcessMadvise);
  fn("bufferAddress", BufferAddress);
  fn("sharedMemCreate", SharedMemCreate);
  fn("sharedMemRelease", SharedMemRelease);
  fn("dupFd", DupFd);
  RegisterChannel(env, exports);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace
}  // namespace vgn

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  vgn::Init(env, exports);
  vgn::InitPidWatch(env, exports);  // pidwatch.cc
  return exports;
}

NODE_API_MODULE(virtgpu_uffd, InitModule)
