// virtgpu_testkit: what only tests and bench call, kept out of the production addon: mmap & co. on our own address
// space, peek/poke, ioctl (sync and on the libuv pool), getpid/gettid, and forkChild's raw-syscall op interpreter.
// Loaded through loadTestkit() (uffd/load.ts), which merges it with the virtgpu_uffd binding.
#include "addon.h"

namespace vgn {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Memory syscalls on our own address space, ioctl
// ---------------------------------------------------------------------------------------------------------------

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Args a(info, "mmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number)", 6, 6);
  void* p = mmap(reinterpret_cast<void*>(a.U64(0, "addr")), a.U64(1, "len"), a.I32(2, "prot"), a.I32(3, "flags"),
                 a.I32(4, "fd"), static_cast<off_t>(a.U64(5, "offset")));
  if (p == MAP_FAILED) ThrowSys(info.Env(), "mmap", errno);
  return Addr(info.Env(), reinterpret_cast<uint64_t>(p));
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  return RangeCall(info, "munmap(addr: number, len: number)", "munmap", 2, [](void* p, size_t l, int) { return munmap(p, l); });
}

Napi::Value Mprotect(const Napi::CallbackInfo& info) {
  return RangeCall(info, "mprotect(addr: number, len: number, prot: number)", "mprotect", 3,
                   [](void* p, size_t l, int prot) { return mprotect(p, l, prot); });
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  auto fn = [&](const char* name, Napi::Function::Callback cb) { Export(env, exports, name, cb); };
  fn("setErrorConstructor", SetErrorConstructor);
  fn("mmap", Mmap);
  fn("munmap", Munmap);
  fn("mprotect", Mprotect);
  fn("mremap", Mremap);
  fn("memfdCreate", MemfdCreate);
  fn("peek", Peek);
  fn("poke", Poke);
  fn("getpid", Getpid);
  fn("gettid", Gettid);
  fn("ioctl", Ioctl);
  fn("ioctlAsync", IoctlAsync);
  fn("forkChild", ForkChild);
  Napi::Object c = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
#define N(x) n(#x, static_cast<double>(x))
  N(FORK_OP_EXIT); N(FORK_OP_SLEEP_MS); N(FORK_OP_WRITE_U8); N(FORK_OP_READ_U8); N(FORK_OP_MUNMAP);
  N(FORK_OP_MADVISE); N(FORK_OP_MPROTECT); N(FORK_OP_WRITE_FD); N(FORK_OP_CLOSE);
#undef N
  n("FORK_OP_WIDTH", kForkOpWidth);
  n("FORK_FAIL_BASE", kForkFailBase);
  exports.Set("constants", c);
  return exports;
}

}  // namespace
}  // namespace vgn

Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vgn::Init(env, exports); }

NODE_API_MODULE(virtgpu_testkit, InitModule)
