// virtgpu_uffd: memory and fds the server shares with clients (uffd/blob-memfd.ts, uffd/fence-fd.ts). A blob's
// memory is a sealed memfd mapped MAP_SHARED into the server as an external ArrayBuffer; release detaches the
// buffer (every JS view becomes empty), unmaps and closes the memfd, while client mappings keep the pages. A fence fd
// is an eventfd (eventfd() in syscalls.cc); dupFd gives a caller its own copy of an fd. No policy here.
#include "addon.h"

#include <sys/mman.h>

namespace vgn {
namespace {

/** A mapped memfd, by id: release and the buffer's finalizer both look it up, whichever comes first unmaps. */
struct SharedMem {
  void* ptr;
  size_t len;
  int fd;
};

using SharedMems = IdRegistry<SharedMem>;

void Unmap(const SharedMem& m) {
  munmap(m.ptr, m.len);
  ::close(m.fd);
}

/** The buffer was collected without a release (e.g. its thread ended): nothing must stay mapped or open. */
void Finalize(Napi::Env, void*, int* id) {
  std::shared_ptr<SharedMem> m = SharedMems::Of().Get(*id);
  if (m) {
    SharedMems::Of().Erase(*id);
    Unmap(*m);
  }
  delete id;
}

// Seals a client cannot undo: the size is fixed (a shrink would make the server's own accesses SIGBUS).
constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

}  // namespace

Napi::Value SharedMemCreate(const Napi::CallbackInfo& info) {
  Args a(info, "sharedMemCreate(name: string, size: number)", 2, 2);
  std::string name = a.Str(0, "name");
  uint64_t size = a.U64(1, "size");
  if (size == 0) a.Fail("size must be > 0");
  Napi::Env env = info.Env();
  Fd fd(static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (fd.Get() < 0) ThrowSys(env, "memfd_create", errno, name);
  if (ftruncate(fd.Get(), static_cast<off_t>(size)) < 0) ThrowSys(env, "ftruncate", errno, name);
  if (fcntl(fd.Get(), F_ADD_SEALS, kSeals) < 0) ThrowSys(env, "fcntl(F_ADD_SEALS)", errno, name);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.Get(), 0);
  if (p == MAP_FAILED) ThrowSys(env, "mmap", errno, name);
  auto m = std::make_shared<SharedMem>(SharedMem{p, static_cast<size_t>(size), fd.Release()});
  int id = SharedMems::Of().Add(m);
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, p, size, Finalize, new int(id));
  Napi::Object r = Napi::Object::New(env);
  r.Set("id", Num(env, id));
  r.Set("fd", Num(env, m->fd));
  r.Set("buffer", buf);
  return r;
}

Napi::Value SharedMemRelease(const Napi::CallbackInfo& info) {
  Args a(info, "sharedMemRelease(id: number, buffer: ArrayBuffer)", 2, 2);
  int id = static_cast<int>(a.Int(0, "id", 1, INT_MAX));
  if (!info[1].IsArrayBuffer()) a.Fail("buffer must be the ArrayBuffer sharedMemCreate returned");
  Napi::ArrayBuffer buf = info[1].As<Napi::ArrayBuffer>();
  std::shared_ptr<SharedMem> m = SharedMems::Of().Find(info.Env(), id, "sharedMemRelease", "shared memory");
  if (buf.Data() != m->ptr || buf.ByteLength() != m->len) a.Fail("buffer is not shared memory " + std::to_string(id));
  SharedMems::Of().Erase(id);  // first: a finalizer run by the detach finds nothing to do
  buf.Detach();
  Unmap(*m);
  return info.Env().Undefined();
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Args a(info, "dupFd(fd: number)", 1, 1);
  int fd = fcntl(a.Fd(0), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) ThrowSys(info.Env(), "fcntl(F_DUPFD_CLOEXEC)", errno);
  return Num(info.Env(), fd);
}

}  // namespace vgn
