// virtgpu-emu-preload.so, handoff.c: hands a userfaultfd of this process to the virtgpu-emu daemon, at load time, so the daemon
// can watch this process's userptr memory (munmap/madvise/mremap/fork events) without ptrace.
//
// Protocol (uffd/channel.ts, uffd/acquire.ts UffdHandoff): if $VIRTGPU_EMU_UFFD_SOCK names the server's client
// channel (a unix SOCK_SEQPACKET socket path), create uffd = userfaultfd(O_CLOEXEC|O_NONBLOCK) (then with
// UFFD_USER_MODE_ONLY, then /dev/userfaultfd), connect, send ONE message "VGECHAN1 uffd <pid>" carrying the uffd
// (SCM_RIGHTS) and our credentials (SCM_CREDENTIALS: the kernel checks them, the server compares them with <pid>),
// wait (5 s at most) for one line ("OK\n" once the server holds its own copy, or "ERR <why>\n"), then ALWAYS
// close our copy: a client that keeps its copy would stay blocked in munmap forever if the daemon died without
// reading (the uffd is only released when its last copy is closed). Nothing else: no UFFDIO_API (the daemon does
// it, with EVENT_FORK if it is privileged), no symbol interposition.
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
#include "preload.h"
#include "wire.h"

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

// A SOCK_SEQPACKET connection to a channel socket, with send and receive timeouts of timeout_s (node.c's lanes too).
VGE_EXPORT int vge_connect(const char *path, int timeout_s) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa.sun_path) { errno = ENAMETOOLONG; return -1; }
  memcpy(sa.sun_path, path, n);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct timeval tv = {timeout_s, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int r;
  do r = connect(s, (const struct sockaddr *)&sa, sizeof sa); while (r < 0 && errno == EINTR);
  if (r < 0) { int e = errno; close(s); errno = e; return -1; }
  return s;
}

// One message on a channel socket (node.c's frames too): buf, then fds as SCM_RIGHTS and, with creds, our credentials
// as SCM_CREDENTIALS (the kernel checks them). 0, or -errno (-ENODEV when the server is gone).
VGE_EXPORT int vge_send(int s, const void *buf, size_t len, const int *fds, int nfds, int creds) {
  if (nfds < 0 || nfds > VGE_MAX_FDS + 1) return -EINVAL;
  struct iovec iov = {(void *)buf, len};
  union { char b[CMSG_SPACE(sizeof(int) * (VGE_MAX_FDS + 1)) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  size_t clen = (nfds > 0 ? CMSG_SPACE(sizeof(int) * (size_t)nfds) : 0) + (creds ? CMSG_SPACE(sizeof(struct ucred)) : 0);
  if (clen) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.b;
    msg.msg_controllen = clen;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (nfds > 0) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
      c = CMSG_NXTHDR(&msg, c);
    }
    if (creds) {
      struct ucred cr = {getpid(), getuid(), getgid()};
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof cr);
      memcpy(CMSG_DATA(c), &cr, sizeof cr);
    }
  }
  ssize_t w;
  do w = sendmsg(s, &msg, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  if (w < 0) return errno == EPIPE || errno == ECONNRESET ? -ENODEV : -errno;
  return w == (ssize_t)len ? 0 : -EIO;
}

// One message: the text, our uffd and our credentials.
static int send_uffd(int s, int fd) {
  char text[64];
  int n = snprintf(text, sizeof text, "VGECHAN1 uffd %d", (int)getpid());
  return vge_send(s, text, (size_t)n, &fd, 1, 1);
}

// At load time, and in a forked child of a process with the node open (node.c): a uffd of the child's own, as an
// unprivileged server gets no UFFD_FEATURE_EVENT_FORK.
VGE_EXPORT void vge_handoff_uffd(void) {
  const char *sock = getenv("VIRTGPU_EMU_UFFD_SOCK");
  if (!sock || !*sock) return;
  int saved = errno;
  int fd = make_uffd();
  if (fd < 0) { DBG("no userfaultfd: %s", strerror(errno)); errno = saved; return; }
  int s = vge_connect(sock, HANDOFF_TIMEOUT_S);
  if (s < 0) { DBG("connect(%s): %s", sock, strerror(errno)); close(fd); errno = saved; return; }
  char reply[128];
  ssize_t got = 0;
  if (send_uffd(s, fd) == 0) {
    do got = recv(s, reply, sizeof reply - 1, 0); while (got < 0 && errno == EINTR);
  }
  if (got < 0) got = 0;
  reply[got] = '\0';
  DBG("uffd %d handed to %s: %s", fd, sock, got ? reply : "(no reply)\n");
  close(s);
  close(fd);  // the daemon holds its own copy now (or none): never keep ours
  errno = saved;
}

__attribute__((constructor)) static void virtgpu_emu_preload_init(void) { vge_handoff_uffd(); }
