// virtgpu-emu-preload.so, map.c: mmap of a node fd (docs/preload-protocol.md, MAP). The server decides everything
// (which object the offset names, whether this file may map it, whether the range fits: the kernel's errnos); the
// library asks on this thread's lane, receives the object's memfd and maps it at the caller's address with the
// caller's prot and flags (MAP_FIXED included), then closes the memfd: the mapping keeps the memory, as a driver's
// pages stay until munmap. munmap needs nothing from the server.
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload.h"
#include "wire.h"

#define MAP_PAGE 4096u

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

VGE_EXPORT void *vge_map(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  int saved = errno;
  if (!real_mmap) real_mmap = dlsym(RTLD_NEXT, "mmap");
  // The length travels in pages (a u32); a larger one names more than any object: the server refuses it.
  uint64_t pages = ((uint64_t)len + MAP_PAGE - 1) / MAP_PAGE;
  struct vge_req req = {.op = VGE_OP_MAP, .flags = (uint32_t)prot, .cmd = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages,
                        .arg = (uint64_t)off};
  struct vge_reply rep;
  const uint8_t *body;
  size_t blen;
  int rfds[VGE_MAX_FDS], nr = 0;
  int r = vge_request(fd, &req, NULL, 0, NULL, 0, &rep, &body, &blen, rfds, &nr);
  if (r < 0) { errno = -r; return MAP_FAILED; }
  if (rep.kind != VGE_DONE || rep.err != 0 || nr != 1) {
    for (int i = 0; i < nr; i++) close(rfds[i]);
    errno = rep.kind == VGE_DONE && rep.err ? (int)rep.err : EIO;
    return MAP_FAILED;
  }
  void *p = real_mmap(addr, len, prot, flags, rfds[0], (off_t)rep.aux);
  int err = errno;
  close(rfds[0]);
  errno = p == MAP_FAILED ? err : saved;
  return p;
}
