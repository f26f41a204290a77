// virtgpu-emu-preload.so: hands a userfaultfd of this process to the virtgpu-emu daemon, at load time, so the daemon
// can watch this process's userptr memory (munmap/madvise/mremap/fork events) without ptrace.
//
// Protocol (uffd/acquire.ts, UffdHandoff): if $VIRTGPU_EMU_UFFD_SOCK names a unix stream socket ("@name" = abstract),
// create uffd = userfaultfd(O_CLOEXEC|O_NONBLOCK) (then with UFFD_USER_MODE_ONLY, then /dev/userfaultfd), connect,
// send "VGEUFFD1 <pid> <fd>\n", wait (5 s at most) for one line ("OK\n" once the daemon took its own copy with
// pidfd_getfd, or "ERR <why>\n"), then ALWAYS close our copy: a client that keeps its copy would stay blocked in
// munmap forever if the daemon died without reading (the uffd is only released when its last copy is closed).
// Nothing else: no UFFDIO_API (the daemon does it, with EVENT_FORK if it is privileged), no symbol interposition.
// Set VIRTGPU_EMU_PRELOAD_DEBUG=1 to see what happened on stderr.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../native/uapi-compat.h"

#define HANDOFF_TIMEOUT_S 5

static int debug_on(void) {
  const char *d = getenv("VIRTGPU_EMU_PRELOAD_DEBUG");
  return d && *d && *d != '0';
}

#define DBG(...) do { if (debug_on()) { fprintf(stderr, "virtgpu-emu-preload[%d]: ", (int)getpid()); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static int make_uffd(void) {
  const int flags = O_CLOEXEC | O_NONBLOCK;
  int fd = (int)syscall(SYS_userfaultfd, flags);
  if (fd >= 0) return fd;
  fd = (int)syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);  // vm.unprivileged_userfaultfd=0, no CAP_SYS_PTRACE
  if (fd >= 0) return fd;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) return -1;
  fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
  close(dev);
  return fd;
}

static int connect_len(const struct sockaddr_un *sa, socklen_t len) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct timeval tv = {HANDOFF_TIMEOUT_S, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int r;
  do r = connect(s, (const struct sockaddr *)sa, len); while (r < 0 && errno == EINTR);
  if (r < 0) { int e = errno; close(s); errno = e; return -1; }
  return s;
}

static int connect_to(const char *name) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n == 0 || n >= sizeof sa.sun_path) { errno = ENAMETOOLONG; return -1; }
  memcpy(sa.sun_path, name, n);
  if (name[0] != '@') return connect_len(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1));
  // Abstract namespace ("@name": no file to clean up). The name's length is part of the address: libuv before
  // uv_pipe_bind2 (Node 20) binds the whole zero-padded sun_path, newer ones the exact length; try both.
  sa.sun_path[0] = '\0';
  int s = connect_len(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
  if (s < 0 && errno == ECONNREFUSED) s = connect_len(&sa, (socklen_t)sizeof sa);
  return s;
}

__attribute__((constructor)) static void virtgpu_emu_preload_init(void) {
  const char *sock = getenv("VIRTGPU_EMU_UFFD_SOCK");
  if (!sock || !*sock) return;
  int saved = errno;
  int fd = make_uffd();
  if (fd < 0) { DBG("no userfaultfd: %s", strerror(errno)); errno = saved; return; }
  int s = connect_to(sock);
  if (s < 0) { DBG("connect(%s): %s", sock, strerror(errno)); close(fd); errno = saved; return; }
  char msg[64];
  int n = snprintf(msg, sizeof msg, "VGEUFFD1 %d %d\n", (int)getpid(), fd);
  ssize_t w;
  do w = send(s, msg, (size_t)n, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  char reply[128];
  size_t got = 0;
  while (w == n && got < sizeof reply - 1) {
    ssize_t r = recv(s, reply + got, sizeof reply - 1 - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (memchr(reply, '\n', got)) break;
  }
  reply[got] = '\0';
  DBG("uffd %d handed to %s: %s", fd, sock, got ? reply : "(no reply)\n");
  close(s);
  close(fd);  // the daemon holds its own copy now (or none): never keep ours
  errno = saved;
}
