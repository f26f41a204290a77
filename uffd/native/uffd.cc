// virtgpu_uffd: syscall wrappers, the uffd reader thread, the serving loop's read/write calls and a test kit
// (forkChild's op list, peek/poke). Every policy decision lives in TypeScript (uffd/*.ts).
// Surface and record formats are documented in uffd/native-types.ts; keep the two in sync.
//
// Conventions: arguments are checked against a usage string (TypeError); every failing syscall throws one JS
// error class carrying {errno (positive), code ('EINVAL'), syscall} (setErrorConstructor, else a plain Error with
// those properties); fds and threads are owned by RAII objects; the only blocking work on a JS thread is a short
// synchronous syscall the caller asked for (munmap of a registered range blocks until the reader thread reads).

#include <napi.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// ---- constants newer than the build host's uapi headers (Debian 12 ships 6.1 headers; the kernel is 6.18) ----
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif
#ifndef UFFDIO_MOVE
// struct uffdio_move { u64 dst, src, len, mode; s64 move; } = 40 bytes
#define UFFDIO_MOVE _IOC(_IOC_READ | _IOC_WRITE, UFFDIO, _UFFDIO_MOVE, 40)
#endif
#ifndef UFFDIO_POISON
// struct uffdio_poison { struct uffdio_range range; u64 mode; s64 updated; } = 32 bytes
#define UFFDIO_POISON _IOC(_IOC_READ | _IOC_WRITE, UFFDIO, _UFFDIO_POISON, 32)
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

namespace {

constexpr size_t kUffdMsgSize = sizeof(struct uffd_msg);  // 32
static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg is 32 bytes");
// readerDrain record header: u32 recordSize, u32 snapshotLen, u64 batchSeq, u64 readNs (see native-types.ts)
constexpr size_t kRecordHeaderSize = 24;
constexpr size_t kMaxSafeInteger = (size_t(1) << 53) - 1;

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference errorCtor;  // set by setErrorConstructor(SyscallError); per env (main or worker)
};

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : ("E" + std::to_string(err));
}

Napi::Value MakeSyscallError(Napi::Env env, const std::string& syscall, int err, const std::string& detail = "") {
  std::string code = ErrnoName(err);
  std::string msg = syscall + ": " + code + " (" + strerror(err) + ")";
  if (!detail.empty()) msg += ", " + detail;
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorCtor.IsEmpty()) {
    return data->errorCtor.New({Napi::String::New(env, msg), Napi::Number::New(env, err), Napi::String::New(env, code),
                                Napi::String::New(env, syscall)});
  }
  Napi::Object e = Napi::Error::New(env, msg).Value();
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

[[noreturn]] void ThrowSys(Napi::Env env, const std::string& syscall, int err, const std::string& detail = "") {
  throw Napi::Error(env, MakeSyscallError(env, syscall, err, detail));
}

std::string Hex(uint64_t v) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// ---------------------------------------------------------------------------------------------------------------
// RAII
// ---------------------------------------------------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  int Get() const { return fd_; }
  int Release() { int f = fd_; fd_ = -1; return f; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// ---------------------------------------------------------------------------------------------------------------
// Argument checks: one usage string per function, TypeError on any mismatch
// ---------------------------------------------------------------------------------------------------------------

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* usage, size_t minArgs, size_t maxArgs)
      : info_(info), env_(info.Env()), usage_(usage) {
    if (info.Length() < minArgs || info.Length() > maxArgs)
      Fail("expected " + std::to_string(minArgs) + (minArgs == maxArgs ? "" : ".." + std::to_string(maxArgs)) +
           " arguments, got " + std::to_string(info.Length()));
  }
  Napi::Env Env() const { return env_; }
  size_t Length() const { return info_.Length(); }
  bool Has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined(); }
  Napi::Value At(size_t i) const { return info_[i]; }

  [[noreturn]] void Fail(const std::string& why) const {
    throw Napi::TypeError::New(env_, why + "; usage: " + usage_);
  }

  // Non-negative integer given as number (<= 2^53-1) or bigint (< 2^64).
  uint64_t U64(size_t i, const char* name) const { return U64Of(info_[i], name); }
  uint64_t U64Of(Napi::Value v, const char* name) const {
    if (v.IsNumber()) {
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0) || d != static_cast<double>(static_cast<uint64_t>(d)) || d > static_cast<double>(kMaxSafeInteger))
        Fail(std::string(name) + " must be a non-negative safe integer");
      return static_cast<uint64_t>(d);
    }
    if (v.IsBigInt()) {
      bool lossless = false;
      uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) Fail(std::string(name) + " must fit in u64");
      return r;
    }
    Fail(std::string(name) + " must be a number or bigint");
  }
  // Integer in [lo, hi] given as number.
  int64_t Int(size_t i, const char* name, int64_t lo, int64_t hi) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) Fail(std::string(name) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
      Fail(std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int64_t>(d);
  }
  int Fd(size_t i, const char* name = "fd") const { return static_cast<int>(Int(i, name, 0, INT_MAX)); }
  int I32(size_t i, const char* name) const { return static_cast<int>(Int(i, name, INT_MIN, INT_MAX)); }
  uint32_t U32(size_t i, const char* name) const { return static_cast<uint32_t>(Int(i, name, 0, UINT32_MAX)); }
  int Pid(size_t i, const char* name = "pid") const { return static_cast<int>(Int(i, name, INT_MIN, INT_MAX)); }
  bool Bool(size_t i, const char* name) const {
    if (!info_[i].IsBoolean()) Fail(std::string(name) + " must be a boolean");
    return info_[i].As<Napi::Boolean>().Value();
  }
  std::string Str(size_t i, const char* name) const {
    if (!info_[i].IsString()) Fail(std::string(name) + " must be a string");
    return info_[i].As<Napi::String>().Utf8Value();
  }
  // Bytes of a Buffer / Uint8Array / any TypedArray view.
  std::pair<uint8_t*, size_t> Bytes(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray()) Fail(std::string(name) + " must be a Buffer or Uint8Array");
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    uint8_t* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
    return {base == nullptr ? nullptr : base + ta.ByteOffset(), ta.ByteLength()};
  }
  // Array of {addr, len}.
  std::vector<struct iovec> Iovs(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsArray()) Fail(std::string(name) + " must be an array of {addr, len}");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<struct iovec> out(a.Length());
    for (uint32_t k = 0; k < a.Length(); k++) {
      Napi::Value e = a.Get(k);
      if (!e.IsObject()) Fail(std::string(name) + "[" + std::to_string(k) + "] must be {addr, len}");
      Napi::Object o = e.As<Napi::Object>();
      out[k].iov_base = reinterpret_cast<void*>(U64Of(o.Get("addr"), "iov.addr"));
      out[k].iov_len = static_cast<size_t>(U64Of(o.Get("len"), "iov.len"));
    }
    return out;
  }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* usage_;
};

Napi::Number Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
Napi::Number Addr(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

// ---------------------------------------------------------------------------------------------------------------
// Error constructor
// ---------------------------------------------------------------------------------------------------------------

Napi::Value SetErrorConstructor(const Napi::CallbackInfo& info) {
  Args a(info, "setErrorConstructor(ctor: new (message, errno, code, syscall) => Error)", 1, 1);
  if (!info[0].IsFunction()) a.Fail("ctor must be a function");
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

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
  reg.range.start = a.U64(1, "start");
  reg.range.len = a.U64(2, "len");
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
struct ProcmapQuery {
  uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  uint64_t vma_name_addr, build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, struct ProcmapQuery);
constexpr uint64_t kProcmapCoveringOrNext = 0x10;

Napi::Value ProcmapQueryFn(const Napi::CallbackInfo& info) {
  Args a(info, "procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array)", 4, 4);
  int fd = a.Fd(0);
  struct ProcmapQuery q {};
  q.size = sizeof q;
  q.query_addr = a.U64(1, "addr");
  q.query_flags = a.Bool(2, "next") ? kProcmapCoveringOrNext : 0;
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[3].As<Napi::Float64Array>().ElementLength() < 3)
    throw Napi::TypeError::New(info.Env(), "out: Float64Array(3) expected; usage: procmapQuery(mapsFd: number, addr: number, next: boolean, out: Float64Array)");
  if (ioctl(fd, kProcmapQuery, &q) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowSys(info.Env(), "ioctl(PROCMAP_QUERY)", errno, Hex(q.query_addr));
  }
  auto out = info[3].As<Napi::Float64Array>();
  out[0] = static_cast<double>(q.vma_start);
  out[1] = static_cast<double>(q.vma_end);
  out[2] = static_cast<double>(q.vma_flags);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value UffdWriteProtect(const Napi::CallbackInfo& info) {
  Args a(info, "uffdWriteProtect(fd: number, start: number, len: number, wp: boolean, dontWake?: boolean)", 4, 5);
  struct uffdio_writeprotect w {};
  int fd = a.Fd(0);
  w.range.start = a.U64(1, "start");
  w.range.len = a.U64(2, "len");
  w.mode = (a.Bool(3, "wp") ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
           (a.Has(4) && a.Bool(4, "dontWake") ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
  // EAGAIN (mmap_changing, e.g. right after a FORK event) is reported, not retried: the retry policy is TS's.
  if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) < 0)
    ThrowSys(info.Env(), "ioctl(UFFDIO_WRITEPROTECT)", errno, Hex(w.range.start) + "+" + Hex(w.range.len));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------------------------
// Event reader: one native thread per uffd, process-global registry keyed by id
// ---------------------------------------------------------------------------------------------------------------

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Raw /proc/<pid>/task/*/syscall: "<tid> <file contents>" per task, contents end in '\n'. No parsing here.
bool SnapshotTaskSyscalls(int pid, std::string& out) {
  out.clear();
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
  char buf[512];
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string path = dir + "/" + e->d_name + "/syscall";
    Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.Get() < 0) continue;  // task exited meanwhile
    ssize_t n;
    do n = read(f.Get(), buf, sizeof buf); while (n < 0 && errno == EINTR);
    if (n <= 0) continue;
    out += e->d_name;
    out += ' ';
    out.append(buf, static_cast<size_t>(n));
    if (buf[n - 1] != '\n') out += '\n';
  }
  return true;
}

struct Reader {
  int id = 0;
  Fd uffd;
  Fd wake;  // eventfd: readerStop writes it to end the poll loop
  int notifyFd = -1;  // caller's eventfd (not owned): bumped with every onPending, for a JS thread blocked elsewhere
  // Lock-free hint for JS (readerPendingView): [0] = a read() may be in progress, [1] = records queued. JS reads
  // [0] then [1]; both 0 means every event already read has been drained, so drain() can skip the native call.
  int32_t hint[2] = {0, 0};
  int snapshotPid = 0;
  bool nonblocking = false;
  std::thread thread;

  std::mutex mu;  // guards everything below until cbMu; held across read() so drain() never misses a read event
  std::vector<uint8_t> queue;
  uint64_t queuedRecords = 0;
  bool notified = false;  // an onPending call is outstanding since the last drain
  bool running = true;
  int error = 0;
  uint64_t events = 0, reads = 0, batches = 0, snapshots = 0, snapshotErrors = 0, notifications = 0;
  uint64_t batchSeq = 0;

  std::mutex cbMu;  // guards hasCb/tsfn: the owning env's finalizer may run on env teardown
  bool hasCb = false;
  Napi::ThreadSafeFunction tsfn;

  ~Reader() {
    if (thread.joinable()) {
      uint64_t one = 1;
      (void)!write(wake.Get(), &one, sizeof one);
      thread.join();
    }
  }

  void Notify() {
    if (notifyFd >= 0) {
      uint64_t one = 1;
      (void)!write(notifyFd, &one, sizeof one);  // EAGAIN only at a saturated counter: the waiter is awake anyway
    }
    std::lock_guard<std::mutex> g(cbMu);
    // napi_closing after env teardown is fine to ignore. The call must never let a C++ exception escape: during
    // env teardown Function::Call fails (napi_cannot_run_js) and an uncaught Napi::Error would abort the process.
    if (hasCb) tsfn.NonBlockingCall([](Napi::Env env, Napi::Function cb) {
      try {
        cb.Call({});
      } catch (const Napi::Error& e) {
        if (!e.Message().empty()) fprintf(stderr, "virtgpu_uffd: reader onPending threw: %s\n", e.Message().c_str());
      }
    });
  }

  void Fail(int err) {
    {
      std::lock_guard<std::mutex> g(mu);
      running = false;
      error = err;
      notified = true;
      notifications++;
    }
    Notify();
  }

  void Run() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals go to Node's threads, not here
    constexpr size_t kBatch = 128;
    std::vector<struct uffd_msg> msgs(kBatch);
    std::string snap;
    for (;;) {
      struct pollfd p[2] = {{uffd.Get(), POLLIN, 0}, {wake.Get(), POLLIN, 0}};
      int n = poll(p, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail(errno);
      }
      if (p[1].revents != 0) return;
      if (p[0].revents & POLLNVAL) return Fail(EBADF);
      if (p[0].revents & POLLERR) return Fail(EINVAL);  // uffd not yet initialized by UFFDIO_API
      if (!(p[0].revents & POLLIN)) continue;

      // Snapshot BEFORE read(): a client thread in madvise() stays blocked until we read its REMOVE.
      bool haveSnap = false;
      if (snapshotPid > 0) {
        haveSnap = SnapshotTaskSyscalls(snapshotPid, snap);
      }
      bool notify = false;
      int readErr = 0;
      __atomic_store_n(&hint[0], 1, __ATOMIC_SEQ_CST);  // before read(): the client is released by the read
      {
        std::lock_guard<std::mutex> g(mu);
        if (snapshotPid > 0) (haveSnap ? snapshots : snapshotErrors)++;
        batches++;
        for (bool first = true;; first = false) {
          if (!first) {
            // Only keep reading if more is pending; never block while holding mu (a blocking uffd is read once).
            if (!nonblocking) break;
            struct pollfd q = {uffd.Get(), POLLIN, 0};
            if (poll(&q, 1, 0) <= 0 || !(q.revents & POLLIN)) break;
          }
          ssize_t got = read(uffd.Get(), msgs.data(), kBatch * kUffdMsgSize);
          if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            readErr = errno;
            break;
          }
          reads++;
          uint64_t now = MonotonicNs();
          uint64_t seq = ++batchSeq;
          size_t count = static_cast<size_t>(got) / kUffdMsgSize;
          for (size_t k = 0; k < count; k++) {
            const struct uffd_msg& m = msgs[k];
            uint32_t textLen = (haveSnap && m.event == UFFD_EVENT_REMOVE) ? static_cast<uint32_t>(snap.size()) : 0;
            uint32_t size = static_cast<uint32_t>((kRecordHeaderSize + kUffdMsgSize + textLen + 7) & ~size_t(7));
            size_t at = queue.size();
            queue.resize(at + size, 0);
            uint8_t* r = queue.data() + at;
            memcpy(r + 0, &size, 4);
            memcpy(r + 4, &textLen, 4);
            memcpy(r + 8, &seq, 8);
            memcpy(r + 16, &now, 8);
            memcpy(r + kRecordHeaderSize, &m, kUffdMsgSize);
            if (textLen > 0) memcpy(r + kRecordHeaderSize + kUffdMsgSize, snap.data(), textLen);
          }
          events += count;
          queuedRecords += count;
          if (queuedRecords > 0) __atomic_store_n(&hint[1], 1, __ATOMIC_SEQ_CST);
          if (count > 0 && !notified) {
            notified = true;
            notifications++;
            notify = true;
          }
          if (count < kBatch) break;
        }
      }
      __atomic_store_n(&hint[0], 0, __ATOMIC_SEQ_CST);
      if (notify) Notify();
      if (readErr != 0) return Fail(readErr);
    }
  }
};

std::mutex& RegistryMutex() {
  static std::mutex* m = new std::mutex;  // never destroyed: readers may outlive every env
  return *m;
}
std::map<int, std::shared_ptr<Reader>>& Registry() {
  static auto* m = new std::map<int, std::shared_ptr<Reader>>;
  return *m;
}
int gNextReaderId = 1;

std::shared_ptr<Reader> FindReader(Napi::Env env, int id, const char* op) {
  std::lock_guard<std::mutex> g(RegistryMutex());
  auto it = Registry().find(id);
  if (it == Registry().end()) ThrowSys(env, op, ENOENT, "no reader with id " + std::to_string(id));
  return it->second;
}

Napi::Value DrainQueue(Napi::Env env, Reader& r) {
  std::vector<uint8_t> out;
  {
    std::lock_guard<std::mutex> g(r.mu);
    out.swap(r.queue);
    r.queuedRecords = 0;
    r.notified = false;
    __atomic_store_n(&r.hint[1], 0, __ATOMIC_SEQ_CST);
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

Napi::Value ReaderStart(const Napi::CallbackInfo& info) {
  Args a(info, "readerStart(uffd: number, opts: {taskSyscallsPid?: number, notifyFd?: number}, onPending?: () => void)", 2, 3);
  Napi::Env env = info.Env();
  int fd = a.Fd(0, "uffd");
  if (!info[1].IsObject()) a.Fail("opts must be an object");
  Napi::Value pidV = info[1].As<Napi::Object>().Get("taskSyscallsPid");
  int snapPid = 0;
  if (!pidV.IsUndefined()) {
    uint64_t p = a.U64Of(pidV, "opts.taskSyscallsPid");
    if (p == 0 || p > INT_MAX) a.Fail("opts.taskSyscallsPid must be a pid");
    snapPid = static_cast<int>(p);
  }
  Napi::Value nfdV = info[1].As<Napi::Object>().Get("notifyFd");
  int notifyFd = -1;
  if (!nfdV.IsUndefined()) {
    uint64_t n = a.U64Of(nfdV, "opts.notifyFd");
    if (n > INT_MAX) a.Fail("opts.notifyFd must be an fd");
    notifyFd = static_cast<int>(n);
  }
  bool hasCb = a.Has(2);
  if (hasCb && !info[2].IsFunction()) a.Fail("onPending must be a function");

  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) ThrowSys(env, "fcntl(F_GETFL)", errno, "uffd " + std::to_string(fd));
  Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake.Get() < 0) ThrowSys(env, "eventfd", errno);

  auto r = std::make_shared<Reader>();
  r->wake = std::move(wake);
  r->snapshotPid = snapPid;
  r->notifyFd = notifyFd;
  r->nonblocking = (fl & O_NONBLOCK) != 0;
  if (hasCb) {
    r->tsfn = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "virtgpu_uffd.reader", 0, 1,
                                            new std::shared_ptr<Reader>(r),
                                            [](Napi::Env, std::shared_ptr<Reader>* ctx) {
                                              {
                                                std::lock_guard<std::mutex> g((*ctx)->cbMu);
                                                (*ctx)->hasCb = false;
                                              }
                                              delete ctx;
                                            });
    r->tsfn.Unref(env);  // a reader alone does not keep the process alive
    r->hasCb = true;
  }
  {
    std::lock_guard<std::mutex> g(RegistryMutex());
    r->id = gNextReaderId++;
    Registry()[r->id] = r;
  }
  r->uffd.Reset(fd);  // ownership moves to the reader; readerStop closes it
  try {
    Reader* raw = r.get();
    r->thread = std::thread([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    r->uffd.Release();  // on failure the caller keeps its fd
    {
      std::lock_guard<std::mutex> g(RegistryMutex());
      Registry().erase(r->id);
    }
    {
      std::lock_guard<std::mutex> g(r->cbMu);
      if (r->hasCb) { r->hasCb = false; r->tsfn.Release(); }
    }
    ThrowSys(env, "pthread_create", e.code().value() ? e.code().value() : EAGAIN);
  }
  return Num(env, r->id);
}

Napi::Value ReaderDrain(const Napi::CallbackInfo& info) {
  Args a(info, "readerDrain(id: number)", 1, 1);
  auto r = FindReader(info.Env(), a.I32(0, "id"), "readerDrain");
  return DrainQueue(info.Env(), *r);
}

// An Int32Array(2) over the reader's hint words (see Reader::hint); the ArrayBuffer keeps the Reader alive.
Napi::Value ReaderPendingView(const Napi::CallbackInfo& info) {
  Args a(info, "readerPendingView(id: number)", 1, 1);
  Napi::Env env = info.Env();
  auto r = FindReader(env, a.I32(0, "id"), "readerPendingView");
  auto* keep = new std::shared_ptr<Reader>(r);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, r->hint, sizeof r->hint,
                                                [](Napi::Env, void*, std::shared_ptr<Reader>* k) { delete k; }, keep);
  return Napi::Int32Array::New(env, 2, ab, 0);
}

Napi::Value ReaderStop(const Napi::CallbackInfo& info) {
  Args a(info, "readerStop(id: number)", 1, 1);
  Napi::Env env = info.Env();
  int id = a.I32(0, "id");
  std::shared_ptr<Reader> r;
  {
    std::lock_guard<std::mutex> g(RegistryMutex());
    auto it = Registry().find(id);
    if (it == Registry().end()) ThrowSys(env, "readerStop", ENOENT, "no reader with id " + std::to_string(id));
    r = it->second;
    Registry().erase(it);
  }
  uint64_t one = 1;
  if (write(r->wake.Get(), &one, sizeof one) < 0) { /* eventfd counter cannot overflow here */ }
  if (r->thread.joinable()) r->thread.join();  // short: the thread only ever blocks in poll()
  r->wake.Reset();  // now, not when the tsfn finalizer drops the last reference (a later loop turn): fd counts settle
  r->uffd.Reset();  // dropping our reference releases clients blocked on unread events (if we held the last one)
  {
    std::lock_guard<std::mutex> g(r->cbMu);
    if (r->hasCb) {
      r->hasCb = false;
      r->tsfn.Release();
    }
  }
  return DrainQueue(env, *r);  // records read but never drained (FORK records carry fds now owned by the caller)
}

Napi::Value ReaderStats(const Napi::CallbackInfo& info) {
  Args a(info, "readerStats(id: number)", 1, 1);
  Napi::Env env = info.Env();
  auto r = FindReader(env, a.I32(0, "id"), "readerStats");
  Napi::Object o = Napi::Object::New(env);
  std::lock_guard<std::mutex> g(r->mu);
  o.Set("id", Num(env, r->id));
  o.Set("uffd", Num(env, r->uffd.Get()));
  o.Set("running", Napi::Boolean::New(env, r->running));
  o.Set("errno", Num(env, r->error));
  o.Set("code", r->error ? Napi::String::New(env, ErrnoName(r->error)) : env.Null());
  o.Set("nonblocking", Napi::Boolean::New(env, r->nonblocking));
  o.Set("events", Num(env, static_cast<double>(r->events)));
  o.Set("reads", Num(env, static_cast<double>(r->reads)));
  o.Set("batches", Num(env, static_cast<double>(r->batches)));
  o.Set("queuedRecords", Num(env, static_cast<double>(r->queuedRecords)));
  o.Set("queuedBytes", Num(env, static_cast<double>(r->queue.size())));
  o.Set("notifications", Num(env, static_cast<double>(r->notifications)));
  o.Set("snapshots", Num(env, static_cast<double>(r->snapshots)));
  o.Set("snapshotErrors", Num(env, static_cast<double>(r->snapshotErrors)));
  return o;
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
  Args a(info, "eventfd(flags?: number)", 0, 1);
  int flags = a.Has(0) ? a.I32(0, "flags") : (EFD_CLOEXEC | EFD_NONBLOCK);
  int fd = eventfd(0, flags);
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

// The serving loop's read: with wakeFd >= 0, poll both fds first; a readable wakeFd (and no request) is drained and
// -1 returned instead of a request. Otherwise one read(2) of the next request into buf.
Napi::Value PollThenRead(Napi::Env env, int fd, Napi::Uint8Array buf, int wakeFd) {
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
  do got = read(fd, buf.Data(), buf.ByteLength()); while (got < 0 && errno == EINTR);
  if (got < 0) ThrowSys(env, "read", errno);
  return Napi::Number::New(env, static_cast<double>(got));
}

// read(2) of one request (cheaper than fs.readSync's request machinery), woken early by wakeFd.
Napi::Value ReadOrWake(const Napi::CallbackInfo& info) {
  Args a(info, "readOrWake(fd: number, buf: Buffer, wakeFd: number)", 3, 3);
  if (!info[1].IsTypedArray()) a.Fail("buf must be a Buffer/Uint8Array");
  return PollThenRead(info.Env(), a.Fd(0), info[1].As<Napi::Uint8Array>(), a.I32(2, "wakeFd"));
}

// The steady state of the serving loop in ONE call: write the reply (one write(2); ENOENT = the request was
// interrupted meanwhile, ignored), then read the next request as readOrWake does. Errors name the failing syscall.
Napi::Value WriteThenRead(const Napi::CallbackInfo& info) {
  Args a(info, "writeThenRead(fd: number, reply: Uint8Array, buf: Buffer, wakeFd: number)", 4, 4);
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  if (!info[1].IsTypedArray() || !info[2].IsTypedArray()) a.Fail("reply and buf must be Uint8Arrays");
  Napi::Uint8Array reply = info[1].As<Napi::Uint8Array>();
  ssize_t w;
  do w = write(fd, reply.Data(), reply.ByteLength()); while (w < 0 && errno == EINTR);
  if (w < 0 && errno != ENOENT) ThrowSys(env, "write", errno);
  return PollThenRead(env, fd, info[2].As<Napi::Uint8Array>(), a.I32(3, "wakeFd"));
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
// Memory syscalls on our own address space (tests), ioctl
// ---------------------------------------------------------------------------------------------------------------

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Args a(info, "mmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number)", 6, 6);
  void* p = mmap(reinterpret_cast<void*>(a.U64(0, "addr")), a.U64(1, "len"), a.I32(2, "prot"), a.I32(3, "flags"),
                 a.I32(4, "fd"), static_cast<off_t>(a.U64(5, "offset")));
  if (p == MAP_FAILED) ThrowSys(info.Env(), "mmap", errno);
  return Addr(info.Env(), reinterpret_cast<uint64_t>(p));
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Args a(info, "munmap(addr: number, len: number)", 2, 2);
  uint64_t addr = a.U64(0, "addr"), len = a.U64(1, "len");
  if (munmap(reinterpret_cast<void*>(addr), len) < 0) ThrowSys(info.Env(), "munmap", errno, Hex(addr) + "+" + Hex(len));
  return info.Env().Undefined();
}

Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  Args a(info, "mprotect(addr: number, len: number, prot: number)", 3, 3);
  uint64_t addr = a.U64(0, "addr"), len = a.U64(1, "len");
  if (mprotect(reinterpret_cast<void*>(addr), len, a.I32(2, "prot")) < 0)
    ThrowSys(info.Env(), "mprotect", errno, Hex(addr) + "+" + Hex(len));
  return info.Env().Undefined();
}

Napi::Value Madvise(const Napi::CallbackInfo& info) {
  Args a(info, "madvise(addr: number, len: number, advice: number)", 3, 3);
  uint64_t addr = a.U64(0, "addr"), len = a.U64(1, "len");
  if (madvise(reinterpret_cast<void*>(addr), len, a.I32(2, "advice")) < 0)
    ThrowSys(info.Env(), "madvise", errno, Hex(addr) + "+" + Hex(len));
  return info.Env().Undefined();
}

Napi::Value Mremap(const Napi::CallbackInfo& info) {
  Args a(info, "mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr?: number)", 4, 5);
  uint64_t oldAddr = a.U64(0, "oldAddr");
  uint64_t newAddr = a.Has(4) ? a.U64(4, "newAddr") : 0;
  void* p = mremap(reinterpret_cast<void*>(oldAddr), a.U64(1, "oldLen"), a.U64(2, "newLen"), a.I32(3, "flags"),
                   reinterpret_cast<void*>(newAddr));
  if (p == MAP_FAILED) ThrowSys(info.Env(), "mremap", errno, Hex(oldAddr));
  return Addr(info.Env(), reinterpret_cast<uint64_t>(p));
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Args a(info, "memfdCreate(name: string, flags: number)", 2, 2);
  std::string name = a.Str(0, "name");
  int fd = memfd_create(name.c_str(), a.U32(1, "flags"));
  if (fd < 0) ThrowSys(info.Env(), "memfd_create", errno);
  return Num(info.Env(), fd);
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

Napi::Value Peek(const Napi::CallbackInfo& info) {
  Args a(info, "peek(addr: number, len: number)  /* own memory; crashes on unmapped addresses */", 2, 2);
  uint64_t addr = a.U64(0, "addr"), len = a.U64(1, "len");
  if (len > static_cast<uint64_t>(INT32_MAX)) a.Fail("len must be < 2^31");
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(addr), len);
}

Napi::Value Poke(const Napi::CallbackInfo& info) {
  Args a(info, "poke(addr: number, data: Buffer | Uint8Array)  /* own memory; crashes on unmapped addresses */", 2, 2);
  uint64_t addr = a.U64(0, "addr");
  auto bytes = a.Bytes(1, "data");
  if (bytes.second > 0) memcpy(reinterpret_cast<void*>(addr), bytes.first, bytes.second);
  return info.Env().Undefined();
}

Napi::Value BufferAddress(const Napi::CallbackInfo& info) {
  Args a(info, "bufferAddress(buf: Buffer | Uint8Array)", 1, 1);
  return Addr(info.Env(), reinterpret_cast<uint64_t>(a.Bytes(0, "buf").first));
}

Napi::Value Getpid(const Napi::CallbackInfo& info) { return Num(info.Env(), getpid()); }
Napi::Value Gettid(const Napi::CallbackInfo& info) { return Num(info.Env(), static_cast<double>(syscall(SYS_gettid))); }

// ioctl arg: Buffer/TypedArray -> pointer to its bytes; number/bigint -> raw value.
uintptr_t IoctlArg(const Args& a, size_t i) {
  if (a.At(i).IsTypedArray()) return reinterpret_cast<uintptr_t>(a.Bytes(i, "arg").first);
  return static_cast<uintptr_t>(a.U64(i, "arg"));
}

Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  Args a(info, "ioctl(fd: number, cmd: number, arg: Buffer | number | bigint)", 3, 3);
  int fd = a.Fd(0);
  unsigned long cmd = static_cast<unsigned long>(a.Int(1, "cmd", 0, UINT32_MAX));
  uintptr_t arg = IoctlArg(a, 2);
  int r = ioctl(fd, cmd, arg);
  if (r < 0) ThrowSys(info.Env(), "ioctl", errno, "fd " + std::to_string(fd) + " cmd " + Hex(cmd));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("result", Num(info.Env(), r));
  return o;
}

class IoctlWorker : public Napi::AsyncWorker {
 public:
  IoctlWorker(Napi::Env env, int fd, unsigned long cmd, uintptr_t arg, Napi::Value keep)
      : Napi::AsyncWorker(env, "virtgpu_uffd.ioctlAsync"), deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fd), cmd_(cmd), arg_(arg) {
    keep_ = Napi::Persistent(keep);  // the Buffer stays alive (and at the same address) until we settle
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    result_ = ioctl(fd_, cmd_, arg_);
    err_ = result_ < 0 ? errno : 0;
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (err_ != 0)
      deferred_.Reject(MakeSyscallError(Env(), "ioctl", err_, "fd " + std::to_string(fd_) + " cmd " + Hex(cmd_)));
    else
      deferred_.Resolve(Num(Env(), result_));
    keep_.Reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> keep_;
  int fd_;
  unsigned long cmd_;
  uintptr_t arg_;
  int result_ = 0;
  int err_ = 0;
};

Napi::Value IoctlAsync(const Napi::CallbackInfo& info) {
  Args a(info, "ioctlAsync(fd: number, cmd: number, arg: Buffer | number | bigint): Promise<number>", 3, 3);
  int fd = a.Fd(0);
  unsigned long cmd = static_cast<unsigned long>(a.Int(1, "cmd", 0, UINT32_MAX));
  uintptr_t arg = IoctlArg(a, 2);
  auto* w = new IoctlWorker(info.Env(), fd, cmd, arg, info[2]);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// forkChild: the child runs a pre-parsed op list with raw syscalls only (no JS, no malloc, no locks), then exits
// ---------------------------------------------------------------------------------------------------------------

enum ForkOp : int {
  FORK_OP_EXIT = 0,      // [0, code]
  FORK_OP_SLEEP_MS = 1,  // [1, ms]
  FORK_OP_WRITE_U8 = 2,  // [2, addr, value]
  FORK_OP_READ_U8 = 3,   // [3, addr]           (touch)
  FORK_OP_MUNMAP = 4,    // [4, addr, len]
  FORK_OP_MADVISE = 5,   // [5, addr, len, advice]
  FORK_OP_MPROTECT = 6,  // [6, addr, len, prot]
  FORK_OP_WRITE_FD = 7,  // [7, fd, byte]       (e.g. signal the parent through a pipe)
  FORK_OP_CLOSE = 8,     // [8, fd]
};
constexpr int kForkOpWidth = 4;
constexpr int kForkFailBase = 100;  // op i failed -> exit status 100 + min(i, 99)

struct ForkStep {
  int op;
  uint64_t a, b, c;
};

[[noreturn]] void ChildExit(int code) {
  syscall(SYS_exit_group, code);
  for (;;) {}
}

[[noreturn]] void RunChild(const ForkStep* steps, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const ForkStep& s = steps[i];
    int fail = kForkFailBase + static_cast<int>(i < 99 ? i : 99);
    long r = 0;
    switch (s.op) {
      case FORK_OP_EXIT: ChildExit(static_cast<int>(s.a));
      case FORK_OP_SLEEP_MS: {
        struct timespec ts = {static_cast<time_t>(s.a / 1000), static_cast<long>((s.a % 1000) * 1000000)};
        while (syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, &ts) != 0) {}
        break;
      }
      case FORK_OP_WRITE_U8: *reinterpret_cast<volatile uint8_t*>(s.a) = static_cast<uint8_t>(s.b); break;
      case FORK_OP_READ_U8: (void)*reinterpret_cast<volatile uint8_t*>(s.a); break;
      case FORK_OP_MUNMAP: r = syscall(SYS_munmap, s.a, s.b); break;
      case FORK_OP_MADVISE: r = syscall(SYS_madvise, s.a, s.b, s.c); break;
      case FORK_OP_MPROTECT: r = syscall(SYS_mprotect, s.a, s.b, s.c); break;
      case FORK_OP_WRITE_FD: {
        uint8_t byte = static_cast<uint8_t>(s.b);
        r = syscall(SYS_write, s.a, &byte, 1) == 1 ? 0 : -1;
        break;
      }
      case FORK_OP_CLOSE: r = syscall(SYS_close, s.a); break;
      default: r = -1;
    }
    if (r < 0) ChildExit(fail);
  }
  ChildExit(0);
}

Napi::Value ForkChild(const Napi::CallbackInfo& info) {
  Args a(info, "forkChild(ops: Float64Array /* [op, a, b, c] per step, see FORK_OP_* */)", 1, 1);
  Napi::Value v = info[0];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    a.Fail("ops must be a Float64Array");
  Napi::Float64Array ops = v.As<Napi::Float64Array>();
  if (ops.ElementLength() % kForkOpWidth != 0) a.Fail("ops length must be a multiple of 4");
  std::vector<ForkStep> steps(ops.ElementLength() / kForkOpWidth);
  for (size_t i = 0; i < steps.size(); i++) {
    double f[kForkOpWidth];
    for (int k = 0; k < kForkOpWidth; k++) {
      f[k] = ops[i * kForkOpWidth + k];
      if (!(f[k] >= 0) || f[k] > static_cast<double>(kMaxSafeInteger) || f[k] != static_cast<double>(static_cast<uint64_t>(f[k])))
        a.Fail("ops values must be non-negative safe integers");
    }
    if (f[0] > FORK_OP_CLOSE) a.Fail("unknown op " + std::to_string(f[0]));
    steps[i] = {static_cast<int>(f[0]), static_cast<uint64_t>(f[1]), static_cast<uint64_t>(f[2]), static_cast<uint64_t>(f[3])};
  }
  // Raw clone (fork semantics) skips pthread_atfork handlers, which could take locks held by other Node threads.
  long pid = syscall(SYS_clone, SIGCHLD, 0, nullptr, nullptr, 0);
  if (pid < 0) ThrowSys(info.Env(), "fork", errno);
  if (pid == 0) RunChild(steps.data(), steps.size());
  return Num(info.Env(), static_cast<double>(pid));
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
  N(FORK_OP_EXIT); N(FORK_OP_SLEEP_MS); N(FORK_OP_WRITE_U8); N(FORK_OP_READ_U8); N(FORK_OP_MUNMAP);
  N(FORK_OP_MADVISE); N(FORK_OP_MPROTECT); N(FORK_OP_WRITE_FD); N(FORK_OP_CLOSE);
#undef N
#undef B
  n("FORK_OP_WIDTH", kForkOpWidth);
  n("FORK_FAIL_BASE", kForkFailBase);
  n("UFFD_MSG_SIZE", kUffdMsgSize);
  n("READER_RECORD_HEADER_SIZE", kRecordHeaderSize);
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
  auto fn = [&](const char* name, Napi::Function::Callback cb) { exports.Set(name, Napi::Function::New(env, cb, name)); };
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
  fn("readerStop", ReaderStop);
  fn("readerPendingView", ReaderPendingView);
  fn("readerStats", ReaderStats);
  fn("pidfdOpen", PidfdOpen);
  fn("pidfdGetfd", PidfdGetfd);
  fn("pidfdExited", PidfdExited);
  fn("close", Close);
  fn("eventfd", Eventfd);
  fn("eventfdDrain", EventfdDrain);
  fn("pollReadable", PollReadable);
  fn("readOrWake", ReadOrWake);
  fn("writeFd", WriteFd);
  fn("writeThenRead", WriteThenRead);
  fn("ptrace", Ptrace);
  fn("ptraceGetRegs", PtraceGetRegs);
  fn("ptraceSetRegs", PtraceSetRegs);
  fn("waitpid", Waitpid);
  fn("processVmRead", ProcessVmRead);
  fn("processVmWrite", ProcessVmWrite);
  fn("processVmWritev", ProcessVmWritev);
  fn("mmap", Mmap);
  fn("munmap", Munmap);
  fn("mprotect", Mprotect);
  fn("madvise", Madvise);
  fn("mremap", Mremap);
  fn("memfdCreate", MemfdCreate);
  fn("processMadvise", ProcessMadvise);
  fn("peek", Peek);
  fn("poke", Poke);
  fn("bufferAddress", BufferAddress);
  fn("getpid", Getpid);
  fn("gettid", Gettid);
  fn("ioctl", Ioctl);
  fn("ioctlAsync", IoctlAsync);
  fn("forkChild", ForkChild);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(virtgpu_uffd, Init)
