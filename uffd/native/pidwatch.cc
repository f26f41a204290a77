// virtgpu_uffd: thread pidfds watched for exit by one native thread per watch (process-global registry keyed by
// id), and PIDFD_GET_INFO. The watch thread closes an exited task's pidfd at once and publishes the exit in one
// 32-bit word per slot that JS reads with a plain load (the caller cache of cuse-dev/session/tgid.ts). No policy:
// which slot holds which pidfd, and when it is emptied, is the caller's.
#include "addon.h"

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>

// include/uapi/linux/pidfd.h (kernel >= 6.9 for PIDFD_THREAD, >= 6.13 for PIDFD_GET_INFO); Debian 12's headers lack both.
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#define VGN_PIDFS_IOCTL_MAGIC 0xFF
#define VGN_PIDFD_INFO_PID (1UL << 0)
#define VGN_PIDFD_INFO_CREDS (1UL << 1)

namespace vgn {

namespace {

// struct pidfd_info, PIDFD_INFO_SIZE_VER0 = 64 bytes (the kernel copies min(its size, ours) and sets `mask`).
struct VgnPidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
static_assert(sizeof(VgnPidfdInfo) == 64, "struct pidfd_info v0 is 64 bytes");
#define VGN_PIDFD_GET_INFO _IOWR(VGN_PIDFS_IOCTL_MAGIC, 11, VgnPidfdInfo)

// epoll data of the stop eventfd: no slot has this key (slots are < 2^31, keys are slot | generation << 32).
constexpr uint64_t kStopKey = ~uint64_t(0);

struct PidWatch {
  int id = 0;
  Fd ep;
  Fd stop;  // eventfd: pidWatchStop writes it to end the thread
  std::thread thread;
  bool realtime = false;
  // One word per slot, read by JS without a lock: 1 once the slot's task exited (its pidfd is then already
  // closed), 0 from pidWatchAdd on. Never resized: the JS view points into it.
  std::unique_ptr<int32_t[]> exited;
  size_t slots = 0;

  std::mutex mu;  // guards everything below
  std::vector<int> fds;         // the slot's pidfd, -1 when empty
  std::vector<uint32_t> gen;    // bumped at every add/remove: an event read before a remove is recognised as stale
  uint64_t added = 0, exits = 0, removed = 0;

  ~PidWatch() {
    if (thread.joinable()) {
      uint64_t one = 1;
      (void)!write(stop.Get(), &one, sizeof one);
      thread.join();
    }
    for (int& fd : fds) if (fd >= 0) { ::close(fd); fd = -1; }
  }

  void Run() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals go to Node's threads, not here
    struct epoll_event evs[64];
    for (;;) {
      int n = epoll_wait(ep.Get(), evs, 64, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // EBADF/EINVAL: the watch is being torn down
      }
      std::lock_guard<std::mutex> g(mu);
      for (int k = 0; k < n; k++) {
        uint64_t key = evs[k].data.u64;
        if (key == kStopKey) return;
        size_t slot = static_cast<size_t>(key & 0xffffffffu);
        uint32_t g32 = static_cast<uint32_t>(key >> 32);
        if (slot >= slots || gen[slot] != g32 || fds[slot] < 0) continue;  // removed meanwhile
        epoll_ctl(ep.Get(), EPOLL_CTL_DEL, fds[slot], nullptr);
        ::close(fds[slot]);
        fds[slot] = -1;
        exits++;
        __atomic_store_n(&exited[slot], 1, __ATOMIC_RELEASE);
      }
    }
  }
};

using Watches = IdRegistry<PidWatch>;

std::shared_ptr<PidWatch> Find(Napi::Env env, int id, const char* op) { return Watches::Of().Find(env, id, op, "pid watch with id"); }

size_t SlotArg(const Args& a, size_t i, const PidWatch& w) {
  int64_t s = a.Int(i, "slot", 0, INT32_MAX);
  if (static_cast<size_t>(s) >= w.slots) a.Fail("slot must be < " + std::to_string(w.slots));
  return static_cast<size_t>(s);
}

// pidWatchStart(slots, opts?) → {id, exited}: `exited` is an Int32Array over the watch's slot words.
Napi::Value PidWatchStart(const Napi::CallbackInfo& info) {
  Args a(info, "pidWatchStart(slots: number, opts?: {realtime?: boolean})", 1, 2);
  Napi::Env env = info.Env();
  size_t slots = static_cast<size_t>(a.Int(0, "slots", 1, 1 << 20));
  bool wantRt = false;
  if (a.Has(1)) {
    if (!info[1].IsObject()) a.Fail("opts must be an object");
    Napi::Value rt = info[1].As<Napi::Object>().Get("realtime");
    if (!rt.IsUndefined()) {
      if (!rt.IsBoolean()) a.Fail("opts.realtime must be a boolean");
      wantRt = rt.As<Napi::Boolean>().Value();
    }
  }
  auto w = std::make_shared<PidWatch>();
  w->ep.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (w->ep.Get() < 0) ThrowSys(env, "epoll_create1", errno);
  w->stop.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (w->stop.Get() < 0) ThrowSys(env, "eventfd", errno);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kStopKey;
  if (epoll_ctl(w->ep.Get(), EPOLL_CTL_ADD, w->stop.Get(), &ev) < 0) ThrowSys(env, "epoll_ctl(ADD)", errno, "stop eventfd");
  w->slots = slots;
  w->exited.reset(new int32_t[slots]());
  w->fds.assign(slots, -1);
  w->gen.assign(slots, 0);
  try {
    PidWatch* raw = w.get();
    w->thread = std::thread([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    ThrowSys(env, "pthread_create", e.code().value() ? e.code().value() : EAGAIN);
  }
  if (wantRt) {
    // Best effort (needs CAP_SYS_NICE and RT runtime in this cgroup): woken by an exit, the thread then preempts
    // ordinary threads and publishes within microseconds even on a loaded machine.
    struct sched_param sp = {};
    sp.sched_priority = 1;
    w->realtime = pthread_setschedparam(w->thread.native_handle(), SCHED_FIFO, &sp) == 0;
  }
  w->id = Watches::Of().Add(w);
  auto* keep = new std::shared_ptr<PidWatch>(w);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, w->exited.get(), slots * sizeof(int32_t),
                                                [](Napi::Env, void*, std::shared_ptr<PidWatch>* k) { delete k; }, keep);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Num(env, w->id));
  o.Set("exited", Napi::Int32Array::New(env, slots, ab, 0));
  return o;
}

// pidWatchAdd(id, slot, pidfd): the watch takes the pidfd (on failure the caller keeps it); exited[slot] = 0 until
// its task exits. An already exited task is reported by the thread right away (epoll reports a ready fd at once).
Napi::Value PidWatchAdd(const Napi::CallbackInfo& info) {
  Args a(info, "pidWatchAdd(id: number, slot: number, pidfd: number)", 3, 3);
  Napi::Env env = info.Env();
  auto w = Find(env, a.I32(0, "id"), "pidWatchAdd");
  size_t slot = SlotArg(a, 1, *w);
  int fd = a.Fd(2, "pidfd");
  std::lock_guard<std::mutex> g(w->mu);
  if (w->fds[slot] >= 0) ThrowSys(env, "pidWatchAdd", EBUSY, "slot " + std::to_string(slot) + " holds a pidfd");
  uint32_t g32 = ++w->gen[slot];
  __atomic_store_n(&w->exited[slot], 0, __ATOMIC_RELEASE);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(slot) | (static_cast<uint64_t>(g32) << 32);
  if (epoll_ctl(w->ep.Get(), EPOLL_CTL_ADD, fd, &ev) < 0) ThrowSys(env, "epoll_ctl(ADD)", errno, "pidfd " + std::to_string(fd));
  w->fds[slot] = fd;
  w->added++;
  return env.Undefined();
}

// pidWatchRemove(id, slot) → true when the slot's pidfd was still open (closed now), false when its exit had
// already closed it (or the slot was empty).
Napi::Value PidWatchRemove(const Napi::CallbackInfo& info) {
  Args a(info, "pidWatchRemove(id: number, slot: number)", 2, 2);
  Napi::Env env = info.Env();
  auto w = Find(env, a.I32(0, "id"), "pidWatchRemove");
  size_t slot = SlotArg(a, 1, *w);
  std::lock_guard<std::mutex> g(w->mu);
  w->gen[slot]++;
  int fd = w->fds[slot];
  if (fd < 0) return Napi::Boolean::New(env, false);
  epoll_ctl(w->ep.Get(), EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  w->fds[slot] = -1;
  w->removed++;
  return Napi::Boolean::New(env, true);
}

Napi::Value PidWatchStop(const Napi::CallbackInfo& info) {
  Args a(info, "pidWatchStop(id: number)", 1, 1);
  Napi::Env env = info.Env();
  int id = a.I32(0, "id");
  std::shared_ptr<PidWatch> w = Watches::Of().Find(env, id, "pidWatchStop", "pid watch with id", true);
  uint64_t one = 1;
  (void)!write(w->stop.Get(), &one, sizeof one);
  if (w->thread.joinable()) w->thread.join();  // short: the thread only ever blocks in epoll_wait()
  std::lock_guard<std::mutex> g(w->mu);
  for (size_t s = 0; s < w->slots; s++) {
    w->gen[s]++;
    if (w->fds[s] >= 0) { ::close(w->fds[s]); w->fds[s] = -1; w->removed++; }
  }
  w->ep.Reset();  // now, not when the JS view's finalizer drops the last reference: fd counts settle at stop
  w->stop.Reset();
  return env.Undefined();
}

Napi::Value PidWatchStats(const Napi::CallbackInfo& info) {
  Args a(info, "pidWatchStats(id: number)", 1, 1);
  Napi::Env env = info.Env();
  auto w = Find(env, a.I32(0, "id"), "pidWatchStats");
  std::lock_guard<std::mutex> g(w->mu);
  size_t open = 0;
  for (int fd : w->fds) if (fd >= 0) open++;
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Num(env, w->id));
  o.Set("slots", Num(env, static_cast<double>(w->slots)));
  o.Set("open", Num(env, static_cast<double>(open)));
  o.Set("added", Num(env, static_cast<double>(w->added)));
  o.Set("exits", Num(env, static_cast<double>(w->exits)));
  o.Set("removed", Num(env, static_cast<double>(w->removed)));
  o.Set("realtime", Napi::Boolean::New(env, w->realtime));
  return o;
}

// pidfdGetInfo(pidfd) → the task's ids (PIDFD_GET_INFO, kernel >= 6.13): ESRCH once it exited, ENOTTY/EINVAL before 6.13.
Napi::Value PidfdGetInfo(const Napi::CallbackInfo& info) {
  Args a(info, "pidfdGetInfo(pidfd: number)", 1, 1);
  Napi::Env env = info.Env();
  int fd = a.Fd(0, "pidfd");
  VgnPidfdInfo pi = {};
  pi.mask = VGN_PIDFD_INFO_PID | VGN_PIDFD_INFO_CREDS;
  if (ioctl(fd, VGN_PIDFD_GET_INFO, &pi) < 0) ThrowSys(env, "ioctl(PIDFD_GET_INFO)", errno, "pidfd " + std::to_string(fd));
  if ((pi.mask & VGN_PIDFD_INFO_PID) == 0) ThrowSys(env, "ioctl(PIDFD_GET_INFO)", ENOTTY, "no PIDFD_INFO_PID in the answer");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Num(env, pi.pid));
  o.Set("tgid", Num(env, pi.tgid));
  o.Set("ppid", Num(env, pi.ppid));
  if (pi.mask & VGN_PIDFD_INFO_CREDS) {
    o.Set("ruid", Num(env, pi.ruid));
    o.Set("euid", Num(env, pi.euid));
    o.Set("fsuid", Num(env, pi.fsuid));
    o.Set("rgid", Num(env, pi.rgid));
    o.Set("egid", Num(env, pi.egid));
    o.Set("fsgid", Num(env, pi.fsgid));
  }
  return o;
}

}  // namespace

void InitPidWatch(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) { Export(env, exports, name, cb); };
  fn("pidWatchStart", PidWatchStart);
  fn("pidWatchAdd", PidWatchAdd);
  fn("pidWatchRemove", PidWatchRemove);
  fn("pidWatchStop", PidWatchStop);
  fn("pidWatchStats", PidWatchStats);
  fn("pidfdGetInfo", PidfdGetInfo);
  Napi::Value c = exports.Get("constants");
  if (c.IsObject()) c.As<Napi::Object>().Set("PIDFD_THREAD", Num(env, PIDFD_THREAD));
}

}  // namespace vgn
