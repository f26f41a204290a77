// Shared by both addon targets (virtgpu_uffd: syscalls.cc + reader.cc; virtgpu_testkit: testkit.cc): headers,
// uapi constants newer than the build host's, the one error shape, RAII fds and usage-string argument checks.
// Surface and record formats are documented in uffd/native-types.ts and uffd/abi.ts; keep them in sync.
#pragma once

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

#include "uapi-compat.h"

namespace vgn {

constexpr size_t kUffdMsgSize = sizeof(struct uffd_msg);  // 32
static_assert(sizeof(struct uffd_msg) == 32, "uffd_msg is 32 bytes");
constexpr size_t kMaxSafeInteger = (size_t(1) << 53) - 1;

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

struct AddonData {
  Napi::FunctionReference errorCtor;  // set by setErrorConstructor(SyscallError); per env (main or worker)
  // The serving loop's device fd and read buffer (loopBind), per env: each worker runs its own loop. The reference
  // keeps the buffer alive (its bytes never move) until the next loopBind or the env's end.
  Napi::Reference<Napi::Uint8Array> loopBuf;
  uint8_t* loopData = nullptr;
  size_t loopLen = 0;
  int loopFd = -1;
  int32_t loopGen = 0;  // bumped by every loopBind; loopNext names the one it means
};

inline std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : ("E" + std::to_string(err));
}

inline Napi::Value MakeSyscallError(Napi::Env env, const std::string& syscall, int err, const std::string& detail = "") {
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

[[noreturn]] inline void ThrowSys(Napi::Env env, const std::string& syscall, int err, const std::string& detail = "") {
  throw Napi::Error(env, MakeSyscallError(env, syscall, err, detail));
}

inline std::string Hex(uint64_t v) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

/** Throws the syscall's errno (detail "addr+len") when a call on an address range returned < 0. */
inline void CheckRange(Napi::Env env, long rc, const char* syscall, uint64_t addr, uint64_t len) {
  if (rc < 0) ThrowSys(env, syscall, errno, Hex(addr) + "+" + Hex(len));
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

/**
 * A call on our own address range, `usage` naming its arguments (addr, len[, one int]): call(addr, len, int) < 0
 * throws its errno with "addr+len".
 */
template <typename F>
Napi::Value RangeCall(const Napi::CallbackInfo& info, const char* usage, const char* syscall, size_t nargs, F call) {
  Args a(info, usage, nargs, nargs);
  uint64_t addr = a.U64(0, "addr"), len = a.U64(1, "len");
  int arg = nargs > 2 ? a.I32(2, "arg") : 0;
  CheckRange(info.Env(), call(reinterpret_cast<void*>(addr), static_cast<size_t>(len), arg), syscall, addr, len);
  return info.Env().Undefined();
}

/**
 * Process-global objects shared with native threads, by id (readers, pid watches) or by the fd they own (wake queues).
 * Never destroyed (Of() leaks it on purpose): native threads may outlive every env.
 */
template <typename T>
class IdRegistry {
 public:
  static IdRegistry& Of() {
    static auto* r = new IdRegistry;
    return *r;
  }
  /** Stores v under a new id (1, 2, ...) and returns the id. */
  int Add(std::shared_ptr<T> v) {
    std::lock_guard<std::mutex> g(mu_);
    int id = next_++;
    map_[id] = std::move(v);
    return id;
  }
  /** Stores v under a key of the caller's (e.g. an fd it owns). */
  void Put(int key, std::shared_ptr<T> v) {
    std::lock_guard<std::mutex> g(mu_);
    map_[key] = std::move(v);
  }
  /** The object, or null. */
  std::shared_ptr<T> Get(int key) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second;
  }
  /** The object (`erase`: also removed); throws ENOENT "no <what> <key>" for `op` when there is none. */
  std::shared_ptr<T> Find(Napi::Env env, int key, const char* op, const char* what, bool erase = false) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) ThrowSys(env, op, ENOENT, std::string("no ") + what + " " + std::to_string(key));
    std::shared_ptr<T> v = it->second;
    if (erase) map_.erase(it);
    return v;
  }
  void Erase(int key) {
    std::lock_guard<std::mutex> g(mu_);
    map_.erase(key);
  }

 private:
  std::mutex mu_;
  std::map<int, std::shared_ptr<T>> map_;
  int next_ = 1;
};

/** exports[name] = a JS function calling cb (each module's Init lists its functions with it). */
inline void Export(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback cb) {
  exports.Set(name, Napi::Function::New(env, cb, name));
}

/** struct uffdio_range from the arguments i (start) and i + 1 (len). */
inline struct uffdio_range RangeArgs(Args& a, size_t i) {
  struct uffdio_range r {};
  r.start = a.U64(i, "start");
  r.len = a.U64(i + 1, "len");
  return r;
}

inline Napi::Number Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
inline Napi::Number Addr(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

// ---------------------------------------------------------------------------------------------------------------
// Error constructor
// ---------------------------------------------------------------------------------------------------------------

inline Napi::Value SetErrorConstructor(const Napi::CallbackInfo& info) {
  Args a(info, "setErrorConstructor(ctor: new (message, errno, code, syscall) => Error)", 1, 1);
  if (!info[0].IsFunction()) a.Fail("ctor must be a function");
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// ---- the uffd reader (reader.cc) ----

/** Bytes of the header in front of each uffd_msg in readerDrain() buffers (struct RecordHeader). */
extern const size_t kRecordHeaderSize;
// The bits of a reader's hint word (readerPendingView): a read() may be in progress; records are queued.
constexpr int32_t kHintReading = 1, kHintQueued = 2;
Napi::Value ReaderStart(const Napi::CallbackInfo& info);
Napi::Value ReaderDrain(const Napi::CallbackInfo& info);
Napi::Value ReaderDrainInto(const Napi::CallbackInfo& info);
Napi::Value ReaderStop(const Napi::CallbackInfo& info);
Napi::Value ReaderPendingView(const Napi::CallbackInfo& info);
Napi::Value ReaderStats(const Napi::CallbackInfo& info);
Napi::Value WakeQueueCreate(const Napi::CallbackInfo& info);
Napi::Value WakeQueueDrain(const Napi::CallbackInfo& info);
Napi::Value WakeQueueClose(const Napi::CallbackInfo& info);

/**
 * A wake queue: one eventfd for a serving thread blocked in poll(2), and the tokens (client pids) of the readers
 * that bumped it since its last drain, so the thread services only the clients whose memory changed. A thread
 * blocked in a plain read(2) of its device instead (WakeableRead, syscalls.cc) is woken by a signal: `pending` is
 * set with the tokens, and `sleeper` names the thread that may be between its last look at `pending` and the end
 * of its read (one such thread per queue).
 */
struct WakeQueue {
  Fd fd;
  std::mutex mu;
  std::vector<int32_t> tokens;
  std::atomic<int32_t> pending{0};
  std::atomic<int32_t> sleeper{0};
  // Bumps in progress outside mu (Reader::Notify): wakeQueueClose waits for them before closing fd.
  std::atomic<int> bumping{0};
};

using WakeQueues = IdRegistry<WakeQueue>;  // keyed by the queue's own eventfd

/** After a token was queued (under q.mu): mark the queue pending and signal a thread sleeping in WakeableRead. */
void WakeQueueKick(WakeQueue& q);

// ---- thread pidfds watched for exit (pidwatch.cc): adds its functions (and constants.PIDFD_THREAD) to the exports ----

void InitPidWatch(Napi::Env env, Napi::Object exports);

// ---- the client channel's sockets and fdWatch (channel.cc) ----

void RegisterChannel(Napi::Env env, Napi::Object exports);

// ---- shared memory of mappable blobs, dupFd (shared-mem.cc) ----

Napi::Value SharedMemCreate(const Napi::CallbackInfo& info);
Napi::Value SharedMemRelease(const Napi::CallbackInfo& info);
Napi::Value DupFd(const Napi::CallbackInfo& info);

}  // namespace vgn
