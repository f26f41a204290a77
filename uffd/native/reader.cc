// virtgpu_uffd: the uffd reader, one native thread per uffd (process-global registry keyed by id), and the record
// framing of what it read; drained from JS by readerDrain(). No policy: events are queued as read.
#include "addon.h"

#include <sys/stat.h>

namespace vgn {

// readerDrain() record header, little-endian, in front of each uffd_msg (uffd/abi.ts reader_record).
struct RecordHeader {
  uint32_t recordSize;   // header + msg + snapshot text + zero padding, a multiple of 8
  uint32_t snapshotLen;  // bytes of /proc/PID/task/*/syscall text after the msg (REMOVE records only)
  uint64_t batchSeq;     // one per read(); records of one read() share it
  uint64_t readNs;       // CLOCK_MONOTONIC right after that read()
};
static_assert(sizeof(RecordHeader) == 24 && offsetof(RecordHeader, batchSeq) == 8 && offsetof(RecordHeader, readNs) == 16,
              "reader record header is u32 u32 u64 u64, 24 bytes");
const size_t kRecordHeaderSize = sizeof(RecordHeader);

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Event reader: one native thread per uffd, process-global registry keyed by id
// ---------------------------------------------------------------------------------------------------------------

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Raw /proc/<pid>/task/*/syscall: "<tid> <file contents>" per task, contents end in '\n'. No parsing here. The files
// stay open and are pread() per snapshot (an opendir + open per task per event cost ~4x more); the task directory's
// st_nlink is 2 + the thread count (proc_task_getattr), so a changed count rescans it, and so does a kept file that
// fails (its task exited: a new task with an unchanged count always comes with such a failure). A client with more
// than kMaxKeptTasks threads gets no kept files (the server's fds stay bounded per client): each snapshot opens them.
constexpr nlink_t kMaxKeptTasks = 32;

class TaskSyscalls {
 public:
  explicit TaskSyscalls(int pid) : pid_(pid) {}

  bool Snapshot(std::string& out) {
    out.clear();
    if (dir_.Get() < 0) {
      std::string path = "/proc/" + std::to_string(pid_) + "/task";
      dir_.Reset(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir_.Get() < 0) return false;
    }
    struct stat st;
    if (fstat(dir_.Get(), &st) != 0) return false;
    if (st.st_nlink != nlink_ && !Rescan(st.st_nlink)) return false;
    for (int pass = 0; pass < 2; pass++) {
      if (!keep_) return Scan(&out);
      bool stale = false;
      for (Task& t : tasks_) {
        ssize_t n;
        do n = pread(t.fd.Get(), buf_, sizeof buf_, 0); while (n < 0 && errno == EINTR);
        if (n <= 0) { stale = true; continue; }  // task exited since the scan
        out += t.tid;
        out += ' ';
        out.append(buf_, static_cast<size_t>(n));
        if (buf_[n - 1] != '\n') out += '\n';
      }
      if (!stale || pass == 1) return true;
      out.clear();
      if (fstat(dir_.Get(), &st) != 0 || !Rescan(st.st_nlink)) return false;
    }
    return true;
  }

  uint64_t rescans = 0;

 private:
  struct Task {
    std::string tid;
    Fd fd;
  };

  bool Rescan(nlink_t nlink) {
    rescans++;
    tasks_.clear();
    nlink_ = nlink;
    keep_ = nlink <= kMaxKeptTasks + 2;
    return keep_ ? Scan(nullptr) : true;
  }

  // Every task of the directory: its file kept (out null), or read into out and closed (too many to keep).
  bool Scan(std::string* out) {
    int dfd = dup(dir_.Get());  // fdopendir takes the fd over; the kept one stays for fstat
    if (dfd < 0) return false;
    DIR* d = fdopendir(dfd);
    if (d == nullptr) { close(dfd); return false; }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, closedir);
    rewinddir(d);
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::string path = std::string(e->d_name) + "/syscall";
      Fd f(openat(dir_.Get(), path.c_str(), O_RDONLY | O_CLOEXEC));
      if (f.Get() < 0) continue;  // task exited meanwhile
      if (out == nullptr) {
        tasks_.push_back(Task{e->d_name, std::move(f)});
        continue;
      }
      ssize_t n;
      do n = read(f.Get(), buf_, sizeof buf_); while (n < 0 && errno == EINTR);
      if (n <= 0) continue;
      *out += e->d_name;
      *out += ' ';
      out->append(buf_, static_cast<size_t>(n));
      if (buf_[n - 1] != '\n') *out += '\n';
    }
    return true;
  }

  int pid_;
  Fd dir_;
  nlink_t nlink_ = 0;
  bool keep_ = true;
  std::vector<Task> tasks_;
  char buf_[512];
};

struct Reader {
  int id = 0;
  Fd uffd;
  Fd wake;  // eventfd: readerStop writes it to end the poll loop
  int notifyFd = -1;  // caller's eventfd (not owned): bumped with every onPending, for a JS thread blocked elsewhere
  std::shared_ptr<WakeQueue> wakeQueue;  // when notifyFd is a wake queue's: notifyToken is queued before the bump
  int32_t notifyToken = 0;
  // Lock-free hint for JS (readerPendingView), one word: kHintReading = a read() may be in progress, kHintQueued =
  // records queued. 0 means every event already read has been drained, so drain() can skip the native call; one
  // word, so one load sees both (no order between two loads to get right).
  int32_t hint = 0;
  int snapshotPid = 0;
  std::unique_ptr<TaskSyscalls> taskSyscalls;  // made and used by the reader thread only (while snapshotPid > 0)
  bool nonblocking = false;
  std::thread thread;

  std::mutex mu;  // guards everything below until cbMu; held across read() so drain() never misses a read event
  std::vector<uint8_t> queue;
  uint64_t queuedRecords = 0;
  bool notified = false;  // an onPending call is outstanding since the last drain
  bool running = true;
  int error = 0;
  uint64_t events = 0, reads = 0, batches = 0, snapshots = 0, snapshotErrors = 0, snapshotRescans = 0, notifications = 0;
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
    if (wakeQueue) {
      // The token is queued under the lock, the eventfd bumped after it is released: the woken thread drains the
      // queue at once, and must not find the lock still held by this thread (on two CPUs it may have preempted it).
      // `bumping` is raised under the lock: once wakeQueueClose() took the fd, no new bump starts, and it waits for
      // the ones in progress before closing, so nothing is written to a reused number.
      int fd = -1;
      {
        std::lock_guard<std::mutex> g(wakeQueue->mu);
        fd = wakeQueue->fd.Get();
        if (fd >= 0) {
          wakeQueue->tokens.push_back(notifyToken);  // at most one per drain of this reader (Reader::notified)
          wakeQueue->bumping.fetch_add(1, std::memory_order_acq_rel);
        }
      }
      if (fd >= 0) {
        uint64_t one = 1;
        (void)!write(fd, &one, sizeof one);
        WakeQueueKick(*wakeQueue);
        wakeQueue->bumping.fetch_sub(1, std::memory_order_acq_rel);
      }
    } else if (notifyFd >= 0) {
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

  // The thread: the loop, then the kept task files closed (before readerStop's join returns: fd counts settle).
  void Run() {
    Loop();
    taskSyscalls.reset();
  }

  void Loop() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals go to Node's threads, not here
    constexpr size_t kBatch = 128;
    std::vector<struct uffd_msg> msgs(kBatch);
    std::string snap;
    if (snapshotPid > 0) taskSyscalls = std::make_unique<TaskSyscalls>(snapshotPid);
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
      if (taskSyscalls) haveSnap = taskSyscalls->Snapshot(snap);
      bool notify = false;
      int readErr = 0;
      __atomic_or_fetch(&hint, kHintReading, __ATOMIC_SEQ_CST);  // before read(): the client is released by the read
      {
        std::lock_guard<std::mutex> g(mu);
        if (taskSyscalls) {
          (haveSnap ? snapshots : snapshotErrors)++;
          snapshotRescans = taskSyscalls->rescans;
        }
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
            const RecordHeader h = {size, textLen, seq, now};
            memcpy(r, &h, sizeof h);
            memcpy(r + kRecordHeaderSize, &m, kUffdMsgSize);
            if (textLen > 0) memcpy(r + kRecordHeaderSize + kUffdMsgSize, snap.data(), textLen);
          }
          events += count;
          queuedRecords += count;
          if (queuedRecords > 0) __atomic_or_fetch(&hint, kHintQueued, __ATOMIC_SEQ_CST);
          if (count > 0 && !notified) {
            notified = true;
            notifications++;
            notify = true;
          }
          if (count < kBatch) break;
        }
      }
      __atomic_and_fetch(&hint, ~kHintReading, __ATOMIC_SEQ_CST);
      if (notify) Notify();
      if (readErr != 0) return Fail(readErr);
    }
  }
};

using Readers = IdRegistry<Reader>;

// readerDrainInto keeps the queue's buffer up to this size between drains.
constexpr size_t kKeptQueueBytes = 64 * 1024;

std::shared_ptr<Reader> FindReader(Napi::Env env, int id, const char* op) {
  return Readers::Of().Find(env, id, op, "reader with id");
}

// The drain's bookkeeping, under r.mu: nothing queued any more, the next read notifies again.
void Drained(Reader& r) {
  r.queuedRecords = 0;
  r.notified = false;
  __atomic_and_fetch(&r.hint, ~kHintQueued, __ATOMIC_SEQ_CST);
}

Napi::Value DrainQueue(Napi::Env env, Reader& r) {
  std::vector<uint8_t> out;
  {
    std::lock_guard<std::mutex> g(r.mu);
    out.swap(r.queue);
    Drained(r);
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

}  // namespace

Napi::Value ReaderStart(const Napi::CallbackInfo& info) {
  Args a(info, "readerStart(uffd: number, opts: {taskSyscallsPid?: number, notifyFd?: number, notifyToken?: number}, onPending?: () => void)", 2, 3);
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
  Napi::Value tokV = info[1].As<Napi::Object>().Get("notifyToken");
  int32_t notifyToken = 0;
  if (!tokV.IsUndefined()) {
    uint64_t t = a.U64Of(tokV, "opts.notifyToken");
    if (t > INT32_MAX) a.Fail("opts.notifyToken must be a non-negative int32");
    notifyToken = static_cast<int32_t>(t);
  }
  std::shared_ptr<WakeQueue> queue;
  if (notifyFd >= 0) queue = WakeQueues::Of().Get(notifyFd);
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
  r->wakeQueue = std::move(queue);
  r->notifyToken = notifyToken;
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
  r->id = Readers::Of().Add(r);
  r->uffd.Reset(fd);  // ownership moves to the reader; readerStop closes it
  try {
    Reader* raw = r.get();
    r->thread = std::thread([raw] { raw->Run(); });
  } catch (const std::system_error& e) {
    r->uffd.Release();  // on failure the caller keeps its fd
    Readers::Of().Erase(r->id);
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

// The queued records copied into the caller's buffer, when they all fit: the byte count (the queue emptied, as
// readerDrain does, its capacity kept for the reader's next records: no allocation on either side per event).
// When they do not fit, nothing is taken and minus the bytes queued is returned (the caller grows its buffer).
Napi::Value ReaderDrainInto(const Napi::CallbackInfo& info) {
  Args a(info, "readerDrainInto(id: number, buf: Uint8Array)", 2, 2);
  Napi::Env env = info.Env();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) a.Fail("buf must be a Uint8Array");
  auto r = FindReader(env, a.I32(0, "id"), "readerDrainInto");
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  std::lock_guard<std::mutex> g(r->mu);
  size_t n = r->queue.size();
  if (n > buf.ByteLength()) return Num(env, -static_cast<double>(n));
  if (n > 0) memcpy(buf.Data(), r->queue.data(), n);
  r->queue.clear();
  if (r->queue.capacity() > kKeptQueueBytes) r->queue.shrink_to_fit();  // a burst's buffer is not kept for ever
  Drained(*r);
  return Num(env, static_cast<double>(n));
}

// An Int32Array(1) over the reader's hint word (see Reader::hint); the ArrayBuffer keeps the Reader alive.
Napi::Value ReaderPendingView(const Napi::CallbackInfo& info) {
  Args a(info, "readerPendingView(id: number)", 1, 1);
  Napi::Env env = info.Env();
  auto r = FindReader(env, a.I32(0, "id"), "readerPendingView");
  auto* keep = new std::shared_ptr<Reader>(r);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, &r->hint, sizeof r->hint,
                                                [](Napi::Env, void*, std::shared_ptr<Reader>* k) { delete k; }, keep);
  return Napi::Int32Array::New(env, 1, ab, 0);
}

Napi::Value ReaderStop(const Napi::CallbackInfo& info) {
  Args a(info, "readerStop(id: number)", 1, 1);
  Napi::Env env = info.Env();
  int id = a.I32(0, "id");
  std::shared_ptr<Reader> r = Readers::Of().Find(env, id, "readerStop", "reader with id", true);
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

Napi::Value WakeQueueCreate(const Napi::CallbackInfo& info) {
  Args a(info, "wakeQueueCreate()", 0, 0);
  Napi::Env env = info.Env();
  auto q = std::make_shared<WakeQueue>();
  q->fd.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (q->fd.Get() < 0) ThrowSys(env, "eventfd", errno);
  int fd = q->fd.Get();
  WakeQueues::Of().Put(fd, std::move(q));
  return Num(env, fd);
}

Napi::Value WakeQueueDrain(const Napi::CallbackInfo& info) {
  Args a(info, "wakeQueueDrain(fd: number)", 1, 1);
  Napi::Env env = info.Env();
  std::shared_ptr<WakeQueue> q = WakeQueues::Of().Find(env, a.I32(0, "fd"), "wakeQueueDrain", "wake queue on fd");
  std::vector<int32_t> out;
  {
    std::lock_guard<std::mutex> g(q->mu);
    q->pending.store(0);
    out.swap(q->tokens);
  }
  Napi::Int32Array arr = Napi::Int32Array::New(env, out.size());
  if (!out.empty()) memcpy(arr.Data(), out.data(), out.size() * sizeof(int32_t));
  return arr;
}

Napi::Value WakeQueueClose(const Napi::CallbackInfo& info) {
  Args a(info, "wakeQueueClose(fd: number)", 1, 1);
  Napi::Env env = info.Env();
  std::shared_ptr<WakeQueue> q = WakeQueues::Of().Find(env, a.I32(0, "fd"), "wakeQueueClose", "wake queue on fd", true);
  Fd fd;
  {
    std::lock_guard<std::mutex> g(q->mu);  // readers still holding the queue see fd -1 from now on (Reader::Notify)
    fd.Reset(q->fd.Release());
    q->tokens.clear();
  }
  while (q->bumping.load(std::memory_order_acquire) > 0) std::this_thread::yield();  // one write(2) each at most
  return env.Undefined();  // fd closed here
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
  o.Set("snapshotRescans", Num(env, static_cast<double>(r->snapshotRescans)));
  return o;
}

}  // namespace vgn
