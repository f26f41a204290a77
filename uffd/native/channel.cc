// virtgpu_uffd: the syscalls of the client channel (uffd/channel.ts): a unix SOCK_SEQPACKET listener with
// SO_PASSCRED, accept4 with the peer's kernel credentials (SO_PEERCRED, SO_PEERPIDFD), recvmsg of one message with
// its SCM_RIGHTS fds and SCM_CREDENTIALS, a non-blocking send; fdWatch, a libuv poll handle that calls back on
// the calling JS thread when an fd becomes readable (the event loop stays free); and closeOffThread for fds a
// client chose. No policy: limits, timeouts and credential checks are TypeScript's.
#include "addon.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <uv.h>

#include <condition_variable>
#include <deque>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace vgn {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------------------------------------------

Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Args a(info, "unixListen(path: string, backlog: number)", 2, 2);
  std::string path = a.Str(0, "path");
  int backlog = static_cast<int>(a.Int(1, "backlog", 1, 65535));
  struct sockaddr_un sa {};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path || path[0] != '/') a.Fail("path must be absolute and shorter than sun_path");
  memcpy(sa.sun_path, path.data(), path.size());
  Fd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.Get() < 0) ThrowSys(info.Env(), "socket", errno);
  int one = 1;
  // Set before listen(): accepted sockets inherit it, so every message carries the sender's credentials.
  if (setsockopt(s.Get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) ThrowSys(info.Env(), "setsockopt(SO_PASSCRED)", errno);
  if (bind(s.Get(), reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0) ThrowSys(info.Env(), "bind", errno, path);
  if (listen(s.Get(), backlog) < 0) ThrowSys(info.Env(), "listen", errno);
  return Num(info.Env(), s.Release());
}

// accept4 (non-blocking, close-on-exec): {fd, pid, uid, gid, pidfd} from SO_PEERCRED / SO_PEERPIDFD (pidfd -1 on
// kernels before 6.5), or null when no connection is pending. The credentials are the peer's at connect().
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  Args a(info, "unixAccept(listenFd: number)", 1, 1);
  Napi::Env env = info.Env();
  int c;
  do c = accept4(a.Fd(0), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC); while (c < 0 && errno == EINTR);
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return env.Null();
    ThrowSys(env, "accept4", errno);
  }
  Fd conn(c);
  struct ucred cr {};
  socklen_t len = sizeof cr;
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) ThrowSys(env, "getsockopt(SO_PEERCRED)", errno);
  int pidfd = -1;
  len = sizeof pidfd;
  if (getsockopt(c, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) pidfd = -1;
  int one = 1;
  (void)setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Num(env, conn.Release()));
  o.Set("pid", Num(env, cr.pid));
  o.Set("uid", Num(env, cr.uid));
  o.Set("gid", Num(env, cr.gid));
  o.Set("pidfd", Num(env, pidfd));
  return o;
}

// One message as recvmsg gave it: its fds (close-on-exec), the sender's credentials, whether it was cut short.
struct Received {
  ssize_t n = -1;  // bytes; -1: nothing was queued
  int fds[64];
  size_t nfds = 0;
  bool hasCred = false;
  struct ucred cred {};
  bool truncated = false;
};

// One recvmsg (MSG_DONTWAIT) into buf: at most maxFds (<= 64) fds fit in the control buffer (the kernel closes the
// rest and sets MSG_CTRUNC). Throws on an error other than EAGAIN.
void RecvOne(Napi::Env env, int fd, uint8_t* buf, size_t len, size_t maxFds, Received& r) {
  if (maxFds > 64) maxFds = 64;
  union { char b[CMSG_SPACE(sizeof(int) * 64) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } control;
  struct iovec iov = {buf, len};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.b;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * (maxFds ? maxFds : 1)) + CMSG_SPACE(sizeof(struct ucred));
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) { r.n = -1; return; }
    ThrowSys(env, "recvmsg", errno);
  }
  r.n = n;
  r.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        if (r.nfds < maxFds) r.fds[r.nfds++] = got; else { close(got); r.truncated = true; }
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
      memcpy(&r.cred, CMSG_DATA(c), sizeof r.cred);
      r.hasCred = true;
    }
  }
}

// recvmsg of one message (MSG_DONTWAIT, received fds close-on-exec): {data, fds, cred: {pid, uid, gid} | null,
// truncated}, or null when nothing is queued. data.length 0 with no fds: the peer closed. Fds that do not fit in
// maxFds are closed by the kernel (truncated is then true).
Napi::Value UnixRecv(const Napi::CallbackInfo& info) {
  Args a(info, "unixRecv(fd: number, maxBytes: number, maxFds: number)", 3, 3);
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  size_t maxBytes = static_cast<size_t>(a.Int(1, "maxBytes", 1, 1 << 20));
  size_t maxFds = static_cast<size_t>(a.Int(2, "maxFds", 0, 64));
  // One receive buffer per thread, grown on demand: a frame buffer per call (zeroed, up to 1 MiB) would cost more
  // than the receive itself; the message is copied out into its own Buffer.
  thread_local std::vector<uint8_t> data;
  if (data.size() < maxBytes) data.resize(maxBytes);
  Received r;
  RecvOne(env, fd, data.data(), maxBytes, maxFds, r);
  if (r.n < 0) return env.Null();
  Napi::Array fds = Napi::Array::New(env);
  for (size_t i = 0; i < r.nfds; i++) fds.Set(static_cast<uint32_t>(i), Num(env, r.fds[i]));
  Napi::Value cred = env.Null();
  if (r.hasCred) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Num(env, r.cred.pid));
    o.Set("uid", Num(env, r.cred.uid));
    o.Set("gid", Num(env, r.cred.gid));
    cred = o;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(r.n)));
  o.Set("fds", fds);
  o.Set("cred", cred);
  o.Set("truncated", Napi::Boolean::New(env, r.truncated));
  return o;
}

// unixRecvInto(fd, buf, meta): unixRecv without building objects, for a serving loop's hot path. One message into
// buf; meta (Int32Array of 5 + maxFds slots) gets [truncated, cred pid, cred uid, cred gid (-1 without
// credentials), nfds, fds...]. Returns the byte count, -1 when nothing is queued.
Napi::Value UnixRecvInto(const Napi::CallbackInfo& info) {
  Args a(info, "unixRecvInto(fd: number, buf: Uint8Array, meta: Int32Array)", 3, 3);
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  auto buf = a.Bytes(1, "buf");
  auto meta = a.Bytes(2, "meta");
  if (meta.second < 5 * sizeof(int32_t) || meta.second % sizeof(int32_t)) a.Fail("meta must be an Int32Array of at least 5");
  int32_t* m = reinterpret_cast<int32_t*>(meta.first);
  Received r;
  RecvOne(env, fd, buf.first, buf.second, meta.second / sizeof(int32_t) - 5, r);
  if (r.n < 0) return Num(env, -1);
  m[0] = r.truncated;
  m[1] = r.hasCred ? r.cred.pid : -1;
  m[2] = r.hasCred ? static_cast<int32_t>(r.cred.uid) : -1;
  m[3] = r.hasCred ? static_cast<int32_t>(r.cred.gid) : -1;
  m[4] = static_cast<int32_t>(r.nfds);
  for (size_t i = 0; i < r.nfds; i++) m[5 + i] = r.fds[i];
  return Num(env, static_cast<double>(r.n));
}

// One non-blocking send (MSG_NOSIGNAL): bytes sent, or -1 when the socket buffer is full.
Napi::Value UnixSend(const Napi::CallbackInfo& info) {
  Args a(info, "unixSend(fd: number, data: Uint8Array)", 2, 2);
  int fd = a.Fd(0);
  auto bytes = a.Bytes(1, "data");
  ssize_t n;
  do n = send(fd, bytes.first, bytes.second, MSG_NOSIGNAL | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Num(info.Env(), -1);
    ThrowSys(info.Env(), "send", errno);
  }
  return Num(info.Env(), static_cast<double>(n));
}

// unixPair(): a connected SOCK_SEQPACKET pair [ours, theirs], both close-on-exec, ours non-blocking and with
// SO_PASSCRED (what arrives on it carries the sender's credentials, as on the channel's sockets). The preload
// transport's node fd is `theirs`, handed to the client; `ours` is watched for its hang-up.
Napi::Value UnixPair(const Napi::CallbackInfo& info) {
  Args a(info, "unixPair()", 0, 0);
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) ThrowSys(env, "socketpair", errno);
  Fd ours(sv[0]), theirs(sv[1]);
  int fl = fcntl(ours.Get(), F_GETFL);
  if (fl < 0 || fcntl(ours.Get(), F_SETFL, fl | O_NONBLOCK) < 0) ThrowSys(env, "fcntl(O_NONBLOCK)", errno);
  int one = 1;
  if (setsockopt(ours.Get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0) ThrowSys(env, "setsockopt(SO_PASSCRED)", errno);
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Num(env, ours.Release()));
  r.Set(1u, Num(env, theirs.Release()));
  return r;
}

// sockCookie(fd): the socket's SO_COOKIE (64 bits, unique for the boot), or null when fd is not a socket.
Napi::Value SockCookie(const Napi::CallbackInfo& info) {
  Args a(info, "sockCookie(fd: number)", 1, 1);
  Napi::Env env = info.Env();
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (getsockopt(a.Fd(0), SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0) {
    if (errno == ENOTSOCK || errno == EBADF) return env.Null();
    ThrowSys(env, "getsockopt(SO_COOKIE)", errno);
  }
  return Napi::BigInt::New(env, cookie);
}

// unixSendFds(fd, data, fds): one non-blocking sendmsg (MSG_NOSIGNAL) with fds as SCM_RIGHTS: bytes sent, or -1
// when the socket buffer is full.
Napi::Value UnixSendFds(const Napi::CallbackInfo& info) {
  Args a(info, "unixSendFds(fd: number, data: Uint8Array, fds: number[])", 3, 3);
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  auto bytes = a.Bytes(1, "data");
  if (!info[2].IsArray()) a.Fail("fds must be an array");
  Napi::Array arr = info[2].As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n > 64) a.Fail("at most 64 fds");
  std::vector<int> fds(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNumber()) a.Fail("fds must be numbers");
    fds[i] = v.As<Napi::Number>().Int32Value();
  }
  struct iovec iov = {const_cast<uint8_t*>(bytes.first), bytes.second};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * (n ? n : 1)));
  if (n > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Num(env, -1);
    ThrowSys(env, "sendmsg", errno);
  }
  return Num(env, static_cast<double>(r));
}

// ---------------------------------------------------------------------------------------------------------------
// closeOffThread: close(2) of an fd a client chose, on a thread of its own. close() runs the file's flush, which a
// client can make wait for ever (a file on a FUSE mount whose daemon never answers FLUSH); no JS thread may wait
// on that. One closer thread, started on first use, never joined; a hung close delays the ones queued behind it.
// ---------------------------------------------------------------------------------------------------------------

struct Closer {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> queue;
  bool started = false;
  std::atomic<int> pending{0};
};

Closer& TheCloser() {
  static Closer* c = new Closer();  // never destroyed: the thread may outlive every env
  return *c;
}

void CloserLoop(Closer* c) {
  for (;;) {
    int fd;
    {
      std::unique_lock<std::mutex> lock(c->mu);
      c->cv.wait(lock, [c] { return !c->queue.empty(); });
      fd = c->queue.front();
      c->queue.pop_front();
    }
    ::close(fd);
    c->pending--;
  }
}

// closeOffThread(fd): queue fd for the closer thread; returns how many closes are still pending (this one included).
Napi::Value CloseOffThread(const Napi::CallbackInfo& info) {
  Args a(info, "closeOffThread(fd: number)", 1, 1);
  int fd = a.Fd(0);
  Closer& c = TheCloser();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (!c.started) {
      std::thread(CloserLoop, &c).detach();
      c.started = true;
    }
    c.queue.push_back(fd);
    c.pending++;
  }
  c.cv.notify_one();
  return Num(info.Env(), c.pending.load());
}

// ---------------------------------------------------------------------------------------------------------------
// fdWatch: readable notifications on the calling thread's event loop
// ---------------------------------------------------------------------------------------------------------------

struct Watch {
  uv_poll_t poll;
  napi_env env;
  int id;
  Napi::FunctionReference cb;
  std::unique_ptr<Napi::AsyncContext> ctx;
};

struct Watches {
  std::map<int, Watch*> byId;
  int next = 1;
};

// Per JS thread (each env has its own loop); created on first use, closed by the env's cleanup hook.
Watches* WatchesOf(Napi::Env env);

void FreeWatch(uv_handle_t* h) { delete static_cast<Watch*>(h->data); }

void CloseWatch(Watch* w) {
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), FreeWatch);
}

void CleanupWatches(void* arg) {
  Watches* ws = static_cast<Watches*>(arg);
  for (auto& [id, w] : ws->byId) {
    w->cb.SuppressDestruct();  // the env is going away: its references go with it
    (void)w->ctx.release();
    CloseWatch(w);
  }
  delete ws;
}

std::map<napi_env, Watches*>& AllWatches() {
  static std::map<napi_env, Watches*> m;  // touched only under WatchMutex()
  return m;
}
std::mutex& WatchMutex() {
  static std::mutex m;
  return m;
}

void CleanupEnv(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  Watches* ws;
  {
    std::lock_guard<std::mutex> lock(WatchMutex());
    auto it = AllWatches().find(env);
    if (it == AllWatches().end()) return;
    ws = it->second;
    AllWatches().erase(it);
  }
  CleanupWatches(ws);
}

Watches* WatchesOf(Napi::Env env) {
  std::lock_guard<std::mutex> lock(WatchMutex());
  auto& m = AllWatches();
  auto it = m.find(env);
  if (it != m.end()) return it->second;
  Watches* ws = new Watches();
  m[env] = ws;
  napi_add_env_cleanup_hook(env, CleanupEnv, static_cast<napi_env>(env));
  return ws;
}

void OnReadable(uv_poll_t* h, int status, int events) {
  Watch* w = static_cast<Watch*>(h->data);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  try {
    w->cb.MakeCallback(env.Global(), {Num(env, w->id), Num(env, status < 0 ? -status : 0)}, *w->ctx);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());  // as an exception thrown from any event-loop callback
  }
}

// fdWatch(fd, cb): cb(id, errno) runs on this thread whenever fd is readable or hung up (level-triggered: read
// until EAGAIN or unwatch). Unwatch before closing the fd.
Napi::Value FdWatch(const Napi::CallbackInfo& info) {
  Args a(info, "fdWatch(fd: number, cb: (id: number, errno: number) => void)", 2, 2);
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  if (!info[1].IsFunction()) a.Fail("cb must be a function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowSys(env, "napi_get_uv_event_loop", EINVAL);
  Watches* ws = WatchesOf(env);
  auto w = std::make_unique<Watch>();
  w->env = env;
  w->id = ws->next++;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) ThrowSys(env, "uv_poll_init", -r, "fd " + std::to_string(fd));
  w->poll.data = w.get();
  w->cb = Napi::Persistent(info[1].As<Napi::Function>());
  w->ctx = std::make_unique<Napi::AsyncContext>(env, "virtgpu-emu:fdWatch");
  r = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, OnReadable);
  if (r < 0) {
    Watch* raw = w.release();
    raw->cb.Reset();
    raw->ctx.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&raw->poll), FreeWatch);
    ThrowSys(env, "uv_poll_start", -r, "fd " + std::to_string(fd));
  }
  // A watch does not keep the process alive by itself (as an unref'd server).
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  int id = w->id;
  ws->byId[id] = w.release();
  return Num(env, id);
}

Napi::Value FdUnwatch(const Napi::CallbackInfo& info) {
  Args a(info, "fdUnwatch(id: number)", 1, 1);
  Watches* ws = WatchesOf(info.Env());
  int id = static_cast<int>(a.Int(0, "id", 0, INT_MAX));
  auto it = ws->byId.find(id);
  if (it == ws->byId.end()) return Napi::Boolean::New(info.Env(), false);
  Watch* w = it->second;
  ws->byId.erase(it);
  w->cb.Reset();
  w->ctx.reset();
  CloseWatch(w);
  return Napi::Boolean::New(info.Env(), true);
}

// ---------------------------------------------------------------------------------------------------------------
// fdSet: many fds on one epoll, watched as one fd, served in a blocking phase
// ---------------------------------------------------------------------------------------------------------------
// The preload transport's lanes: one epoll holds them all and one fdWatch watches it. When it fires, the caller may
// stop returning to the event loop between requests: fdSetBurstBegin takes the epoll out of the loop's own epoll and
// puts the loop's epoll into it instead, so fdSetWait blocks in one epoll_wait(2) for the next ready member *or*
// anything the loop has to do (a message, a timer due, another watched fd: then it answers -1 and fdSetBurstEnd gives
// the loop its watch back). The loop's epoll never contains ours while ours contains it (that would be ELOOP).

// The data word of the loop's own epoll inside a set (no member fd is negative).
constexpr uint64_t kLoopToken = ~0ull;

Watch* WatchById(Napi::Env env, int id) {
  Watches* ws = WatchesOf(env);
  auto it = ws->byId.find(id);
  return it == ws->byId.end() ? nullptr : it->second;
}

uv_loop_t* LoopOf(Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowSys(env, "napi_get_uv_event_loop", EINVAL);
  return loop;
}

// fdSetCreate(): a new set (an epoll fd, close-on-exec; close() it when done).
Napi::Value FdSetCreate(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetCreate()", 0, 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) ThrowSys(info.Env(), "epoll_create1", errno);
  return Num(info.Env(), ep);
}

// fdSetAdd(set, fd) / fdSetDel(set, fd): a member, readable (or hung up) level-triggered.
Napi::Value FdSetAdd(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetAdd(set: number, fd: number)", 2, 2);
  int ep = a.Fd(0), fd = a.Fd(1);
  struct epoll_event e {};
  e.events = EPOLLIN | EPOLLRDHUP;
  e.data.u64 = static_cast<uint64_t>(fd);
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) ThrowSys(info.Env(), "epoll_ctl(ADD)", errno, "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

Napi::Value FdSetDel(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetDel(set: number, fd: number)", 2, 2);
  int ep = a.Fd(0), fd = a.Fd(1);
  struct epoll_event e {};
  return Napi::Boolean::New(info.Env(), epoll_ctl(ep, EPOLL_CTL_DEL, fd, &e) == 0);
}

// fdSetReady(set): the members ready now (no wait), at most 64.
Napi::Value FdSetReady(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetReady(set: number)", 1, 1);
  Napi::Env env = info.Env();
  struct epoll_event ev[64];
  int n;
  do n = epoll_wait(a.Fd(0), ev, 64, 0); while (n < 0 && errno == EINTR);
  if (n < 0) ThrowSys(env, "epoll_wait", errno);
  Napi::Array r = Napi::Array::New(env);
  uint32_t k = 0;
  for (int i = 0; i < n; i++) if (ev[i].data.u64 != kLoopToken) r.Set(k++, Num(env, static_cast<double>(ev[i].data.u64)));
  return r;
}

// fdSetBurstBegin(set, watchId): the set's watch (fdWatch(set, …)) leaves the event loop and the loop's epoll joins
// the set. false: not begun (the loop has work now, or the kernel refused): the watch is as it was.
Napi::Value FdSetBurstBegin(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetBurstBegin(set: number, watchId: number)", 2, 2);
  Napi::Env env = info.Env();
  int ep = a.Fd(0);
  Watch* w = WatchById(env, static_cast<int>(a.Int(1, "watchId", 0, INT_MAX)));
  if (!w) a.Fail("no such watch");
  uv_loop_t* loop = LoopOf(env);
  uv_update_time(loop);
  if (uv_backend_timeout(loop) == 0) return Napi::Boolean::New(env, false);
  uv_poll_stop(&w->poll);  // takes the set out of the loop's epoll now (uv__platform_invalidate_fd)
  struct epoll_event e {};
  e.events = EPOLLIN;
  e.data.u64 = kLoopToken;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, uv_backend_fd(loop), &e) == 0) return Napi::Boolean::New(env, true);
  int err = errno;
  if (uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, OnReadable) < 0) ThrowSys(env, "uv_poll_start", EINVAL);
  if (err != ELOOP && err != EEXIST) ThrowSys(env, "epoll_ctl(ADD loop)", err);
  return Napi::Boolean::New(env, false);
}

// fdSetWait(set): blocks until a member is ready (its fd) or the event loop has something to do: a message, a
// watched fd, a timer due, a signal (-1: end the burst). One event per epoll_wait: the kernel puts the member it
// reported at the tail of the ready list and leaves the others at its head, so ready members are served in turn and
// one that is always readable (a client that pipelines) cannot starve the others or the loop.
Napi::Value FdSetWait(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetWait(set: number)", 1, 1);
  Napi::Env env = info.Env();
  int ep = a.Fd(0);
  uv_loop_t* loop = LoopOf(env);
  uv_update_time(loop);
  int timeout = uv_backend_timeout(loop);
  if (timeout == 0) return Num(env, -1);
  struct epoll_event ev;
  int n = epoll_wait(ep, &ev, 1, timeout);
  if (n <= 0) {
    if (n < 0 && errno != EINTR) ThrowSys(env, "epoll_wait", errno);
    return Num(env, -1);  // a timer is due, or a signal: the loop's turn
  }
  return Num(env, ev.data.u64 == kLoopToken ? -1 : static_cast<double>(ev.data.u64));
}

// fdSetBurstEnd(set, watchId): the loop's epoll leaves the set, the set's watch returns to the loop.
Napi::Value FdSetBurstEnd(const Napi::CallbackInfo& info) {
  Args a(info, "fdSetBurstEnd(set: number, watchId: number)", 2, 2);
  Napi::Env env = info.Env();
  int ep = a.Fd(0);
  Watch* w = WatchById(env, static_cast<int>(a.Int(1, "watchId", 0, INT_MAX)));
  uv_loop_t* loop = LoopOf(env);
  struct epoll_event e {};
  if (epoll_ctl(ep, EPOLL_CTL_DEL, uv_backend_fd(loop), &e) < 0 && errno != ENOENT && errno != EBADF) ThrowSys(env, "epoll_ctl(DEL loop)", errno);
  if (w && uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, OnReadable) < 0) ThrowSys(env, "uv_poll_start", EINVAL);
  return env.Undefined();
}

}  // namespace

void RegisterChannel(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) { Export(env, exports, name, cb); };
  fn("unixListen", UnixListen);
  fn("unixAccept", UnixAccept);
  fn("unixRecv", UnixRecv);
  fn("unixRecvInto", UnixRecvInto);
  fn("unixSend", UnixSend);
  fn("unixPair", UnixPair);
  fn("sockCookie", SockCookie);
  fn("unixSendFds", UnixSendFds);
  fn("fdWatch", FdWatch);
  fn("fdUnwatch", FdUnwatch);
  fn("closeOffThread", CloseOffThread);
  fn("fdSetCreate", FdSetCreate);
  fn("fdSetAdd", FdSetAdd);
  fn("fdSetDel", FdSetDel);
  fn("fdSetReady", FdSetReady);
  fn("fdSetBurstBegin", FdSetBurstBegin);
  fn("fdSetWait", FdSetWait);
  fn("fdSetBurstEnd", FdSetBurstEnd);
}

}  // namespace vgn
