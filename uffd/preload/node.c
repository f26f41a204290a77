// virtgpu-emu-preload.so, node.c: the render node without a kernel device (--transport preload; the wire format is
// docs/preload-protocol.md, its C tables wire.h). open() of the node's path returns a socket the server made;
// ioctl() on such a socket is carried to the server on this thread's lane. No ioctl knowledge here beyond
// _IOC_SIZE/_IOC_DIR: which bytes to send and what to write back is the server's answer.
//
// - Off unless $VIRTGPU_EMU_SOCK names the server's node channel: then every symbol below passes straight through.
// - A node fd is recognised by the kernel's word, never by a table of ours (dup/dup2/fcntl/fork/SCM_RIGHTS copies
//   stay node fds): a unix socket whose SO_PEERCRED is the server's pid and that is not one of our lanes.
// - Memory of ours is read and written with process_vm_readv/writev on ourselves: a bad pointer is EFAULT, never
//   SIGSEGV, and no ptrace right is involved (same thread group).
// - errno is left as it was on success; a failure sets the kernel's (the server's) errno.
// - fork: a pthread_atfork child handler re-initialises the lock, closes the lanes inherited from the parent's
//   threads (the child opens its own), hands the child's userfaultfd over (handoff.c) and reports the fork.
// Both the plain and the 64-bit names are defined here: without this (node-gyp defines it) glibc would alias them.
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "preload.h"
#include "wire.h"

#define LANE_HANDSHAKE_TIMEOUT_S 5

static int g_debug;
#define DBG(...) do { if (g_debug) { fprintf(stderr, "virtgpu-emu-preload[%d]: ", (int)getpid()); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static const char *g_sock;     // VIRTGPU_EMU_SOCK; NULL: the node is not served (everything passes through)
static pid_t g_server;         // the server's pid (SO_PEERCRED of our first lane); 0 until known
static int g_opened;           // this process (or its parent before a fork) opened the node
static int g_unreachable;      // no lane could be opened to find the server's pid (vge_node_fd asks no more)

// One lane per thread: a connection of its own, so replies reach the thread that asked.
struct lane {
  int fd;
  uint32_t seq;
  uint64_t last_cookie; // SO_COOKIE of the node fd this lane's last IOCTL carried (0: none): the server knows its file
  uint8_t *buf; // VGE_MAX_FRAME bytes: the frame being built, then the reply
  struct lane *next, *prev;
};
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; // guards g_lanes (never held across a syscall that blocks)
static struct lane *g_lanes;
static pthread_key_t g_key;

// ---- the functions we wrap ----

#define REAL(name) ({ if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); real_##name; })
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);

// ---- lanes ----

static void lane_free(struct lane *l) {
  if (l->fd >= 0) close(l->fd);
  free(l->buf);
  free(l);
}

static void unlink_lane(struct lane *l) {
  if (l->prev) l->prev->next = l->next; else g_lanes = l->next;
  if (l->next) l->next->prev = l->prev;
  l->next = l->prev = NULL;
}

// Thread exit: the lane goes with its thread.
static void lane_destructor(void *p) {
  struct lane *l = p;
  pthread_mutex_lock(&g_lock);
  unlink_lane(l);
  pthread_mutex_unlock(&g_lock);
  lane_free(l);
}

static int is_lane_fd(int fd) {
  int found = 0;
  pthread_mutex_lock(&g_lock);
  for (struct lane *l = g_lanes; l && !found; l = l->next) found = l->fd == fd;
  pthread_mutex_unlock(&g_lock);
  return found;
}

static int connect_lane(void) {
  int s = vge_connect(g_sock, LANE_HANDSHAKE_TIMEOUT_S);
  if (s < 0) { DBG("lane to %s: %s", g_sock, strerror(errno)); errno = ENODEV; return -1; }
  char line[64];
  int len = snprintf(line, sizeof line, "VGECHAN1 lane %d %d", (int)getpid(), (int)syscall(SYS_gettid));
  ssize_t w, got = -1;
  do w = send(s, line, (size_t)len, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  if (w == len) { do got = recv(s, line, sizeof line - 1, 0); while (got < 0 && errno == EINTR); }
  if (got < 3 || memcmp(line, "OK", 2) != 0) {
    if (got > 0) { line[got] = '\0'; DBG("lane refused: %s", line); } else DBG("lane handshake on %s: %s", g_sock, strerror(errno));
    close(s);
    errno = ENODEV;
    return -1;
  }
  struct timeval none = {0, 0}; // replies come when the server is done: no timeout from here on
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  if (!__atomic_load_n(&g_server, __ATOMIC_ACQUIRE)) {
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) __atomic_store_n(&g_server, cr.pid, __ATOMIC_RELEASE);
  }
  return s;
}

/** This thread's lane (opened on first use), or NULL with errno set. */
static struct lane *lane_get(void) {
  struct lane *l = pthread_getspecific(g_key);
  if (l) return l;
  l = calloc(1, sizeof *l);
  if (!l) { errno = ENOMEM; return NULL; }
  l->buf = malloc(VGE_MAX_FRAME);
  if (!l->buf) { free(l); errno = ENOMEM; return NULL; }
  l->fd = connect_lane();
  if (l->fd < 0) { int e = errno; free(l->buf); free(l); errno = e; return NULL; }
  pthread_mutex_lock(&g_lock);
  l->next = g_lanes;
  if (g_lanes) g_lanes->prev = l;
  g_lanes = l;
  pthread_mutex_unlock(&g_lock);
  pthread_setspecific(g_key, l);
  return l;
}

// ---- node identity (preload.h) ----

// Opens this library serves: the node's path (discovery.c names it) while the preload transport is on.
static int served(const char *p) { return g_sock && vge_node_path(p); }

VGE_EXPORT int vge_node_fd(int fd) {
  if (!g_sock || fd < 0) return 0;
  int saved = errno;
  struct ucred cr;
  socklen_t n = sizeof cr;
  int r = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &n); // ENOTSOCK for everything but sockets: one syscall
  if (r < 0 || cr.pid <= 0) { errno = saved; return 0; }
  pid_t srv = __atomic_load_n(&g_server, __ATOMIC_ACQUIRE);
  // The server's pid comes with our first lane; a server that cannot be reached is not asked again for every socket.
  if (!srv && !__atomic_load_n(&g_unreachable, __ATOMIC_RELAXED)) {
    if (lane_get()) srv = __atomic_load_n(&g_server, __ATOMIC_ACQUIRE);
    else __atomic_store_n(&g_unreachable, 1, __ATOMIC_RELAXED);
  }
  int yes = srv > 0 && cr.pid == srv && !is_lane_fd(fd);
  errno = saved;
  return yes;
}

// ---- one exchange ----

// Receives one reply into l->buf; its fds (close-on-exec) into rfds. Returns its length, or -errno.
static ssize_t recv_frame(struct lane *l, int *rfds, int *nrfds) {
  struct iovec iov = {l->buf, VGE_MAX_FRAME};
  union { char b[CMSG_SPACE(sizeof(int) * VGE_MAX_FDS)]; struct cmsghdr align; } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.b;
  msg.msg_controllen = sizeof control.b;
  ssize_t n;
  do n = recvmsg(l->fd, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  *nrfds = 0;
  if (n < 0) return errno == ECONNRESET ? -ENODEV : -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof fd);
      if (*nrfds < VGE_MAX_FDS) rfds[(*nrfds)++] = fd; else close(fd);
    }
  }
  if (n == 0) return -ENODEV; // the server is gone: as an unplugged device
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) { for (int i = 0; i < *nrfds; i++) close(rfds[i]); *nrfds = 0; return -EIO; }
  return n;
}

static void close_all(const int *fds, int n) { for (int i = 0; i < n; i++) close(fds[i]); }

// vge_request with the node fd's SO_COOKIE when the caller already asked the kernel for it (0: asked here).
static int request(int node_fd, uint64_t cookie, struct vge_req *req, const void *body, size_t body_len, const int *fds, int nfds,
                   struct vge_reply *reply, const uint8_t **reply_body, size_t *reply_len, int *rfds, int *nrfds) {
  *nrfds = 0;
  if (nfds > VGE_MAX_FDS || sizeof *req + body_len > VGE_MAX_FRAME) return -E2BIG;
  struct lane *l = lane_get();
  if (!l) return -ENODEV;
  req->seq = ++l->seq;
  int all[VGE_MAX_FDS + 1];
  int k = 0;
  // An IOCTL on the node fd this lane's last one carried names it by VGE_IOCTL_SAME_FILE instead of attaching it
  // again (an fd passed costs the kernel more than the rest of the round trip): its cookie says it is that socket.
  if (node_fd >= 0 && req->op == VGE_OP_IOCTL) {
    socklen_t cl = sizeof cookie;
    if (!cookie && getsockopt(node_fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl) < 0) cookie = 0;
    if (cookie && cookie == l->last_cookie) { req->flags |= VGE_IOCTL_SAME_FILE; node_fd = -1; }
  }
  if (node_fd >= 0) all[k++] = node_fd;
  for (int i = 0; i < nfds; i++) all[k++] = fds[i];
  if (body_len && body != l->buf + sizeof *req) memmove(l->buf + sizeof *req, body, body_len); // else built in place (vge_frame())
  memcpy(l->buf, req, sizeof *req);
  int r = vge_send(l->fd, l->buf, sizeof *req + body_len, all, k, 0);
  if (r < 0) return r;
  ssize_t n = recv_frame(l, rfds, nrfds);
  if (n < 0) return (int)n;
  if ((size_t)n < sizeof *reply) { close_all(rfds, *nrfds); *nrfds = 0; return -EIO; }
  memcpy(reply, l->buf, sizeof *reply);
  if (reply->seq != req->seq) { close_all(rfds, *nrfds); *nrfds = 0; return -EIO; }
  if (node_fd >= 0 && req->op == VGE_OP_IOCTL) l->last_cookie = reply->kind == VGE_DONE && reply->err == EBADF ? 0 : cookie;
  else if ((req->flags & VGE_IOCTL_SAME_FILE) && reply->kind == VGE_DONE && reply->err == EBADF) l->last_cookie = 0;
  *reply_body = l->buf + sizeof *reply;
  *reply_len = (size_t)n - sizeof *reply;
  return 0;
}

VGE_EXPORT int vge_request(int node_fd, struct vge_req *req, const void *body, size_t body_len, const int *fds, int nfds,
                           struct vge_reply *reply, const uint8_t **reply_body, size_t *reply_len, int *rfds, int *nrfds) {
  return request(node_fd, 0, req, body, body_len, fds, nfds, reply, reply_body, reply_len, rfds, nrfds);
}

VGE_EXPORT uint8_t *vge_frame(size_t *cap) {
  struct lane *l = lane_get();
  if (!l) return NULL;
  *cap = VGE_MAX_FRAME - sizeof(struct vge_req);
  return l->buf + sizeof(struct vge_req);
}

// ---- open ----

static int node_open(int flags) {
  int saved = errno;
  struct vge_req req = {.op = VGE_OP_OPEN, .flags = (uint32_t)flags};
  struct vge_reply rep;
  const uint8_t *body;
  size_t blen;
  int rfds[VGE_MAX_FDS], nr = 0;
  int r = vge_request(-1, &req, NULL, 0, NULL, 0, &rep, &body, &blen, rfds, &nr);
  if (r < 0) { errno = -r; return -1; }
  if (rep.kind != VGE_DONE || rep.err != 0 || nr != 1) {
    close_all(rfds, nr);
    errno = rep.kind == VGE_DONE && rep.err ? (int)rep.err : EIO;
    return -1;
  }
  if (!(flags & O_CLOEXEC)) fcntl(rfds[0], F_SETFD, 0); // received close-on-exec; open(2) without O_CLOEXEC is not
  __atomic_store_n(&g_opened, 1, __ATOMIC_RELAXED);
  DBG("open -> fd %d", rfds[0]);
  errno = saved;
  return rfds[0];
}

static int wants_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

VGE_EXPORT int open(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (wants_mode(flags)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (served(path)) return node_open(flags);
  return REAL(open)(path, flags, mode);
}
VGE_EXPORT int open64(const char *path, int flags, ...) {
  mode_t mode = 0;
  if (wants_mode(flags)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (served(path)) return node_open(flags);
  return REAL(open64)(path, flags, mode);
}
VGE_EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (wants_mode(flags)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (served(path)) return node_open(flags); // absolute paths only: dirfd plays no part
  return REAL(openat)(dirfd, path, flags, mode);
}
VGE_EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  mode_t mode = 0;
  if (wants_mode(flags)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
  if (served(path)) return node_open(flags);
  return REAL(openat64)(dirfd, path, flags, mode);
}
// _FORTIFY_SOURCE's entry points for open without a mode.
VGE_EXPORT int __open_2(const char *path, int flags) { return served(path) ? node_open(flags) : REAL(__open_2)(path, flags); }
VGE_EXPORT int __open64_2(const char *path, int flags) { return served(path) ? node_open(flags) : REAL(__open64_2)(path, flags); }
VGE_EXPORT int __openat_2(int dirfd, const char *path, int flags) { return served(path) ? node_open(flags) : REAL(__openat_2)(dirfd, path, flags); }
VGE_EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return served(path) ? node_open(flags) : REAL(__openat64_2)(dirfd, path, flags); }

// ---- ioctl ----

static size_t sum_ranges(const struct vge_range *r, uint32_t n) {
  size_t s = 0;
  for (uint32_t i = 0; i < n; i++) s += r[i].len;
  return s;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_FLAGS (VGE_RANGE_POPULATE_WRITE | VGE_RANGE_POPULATE_READ)

/** Bytes a request carries for its ranges: a range we faulted in ourselves carries none. */
static size_t data_len(const struct vge_range *r, uint32_t n) {
  size_t s = 0;
  for (uint32_t i = 0; i < n; i++) if (!(r[i].pad & POPULATE_FLAGS)) s += r[i].len;
  return s;
}

// A NEED's populate ranges, faulted in here as the kernel's pin would (a failure is the server's to answer: its pin
// then finds the page missing). No page is touched from outside, where a write could race ours.
static void populate(const struct vge_range *r, uint32_t n) {
  int saved = errno;
  for (uint32_t i = 0; i < n; i++) {
    if (!(r[i].pad & POPULATE_FLAGS)) continue;
    (void)madvise((void *)(uintptr_t)r[i].addr, r[i].len, (r[i].pad & VGE_RANGE_POPULATE_WRITE) ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
  }
  errno = saved;
}

// Our pid for process_vm_readv/writev on ourselves (glibc no longer caches getpid(): a syscall per copy); set at
// load and again in fork's child handler. A clone() without fork's handlers would leave it stale: its copies would
// then fail (ESRCH: EFAULT) or reach the parent, whose memory such a child shares only when it shares the mm.
static pid_t g_self;
static pid_t self_pid(void) {
  pid_t p = __atomic_load_n(&g_self, __ATOMIC_RELAXED);
  if (!p) { p = getpid(); __atomic_store_n(&g_self, p, __ATOMIC_RELAXED); }
  return p;
}

// Reads `n` ranges of our own memory into dst: 0, or -EFAULT (a bad pointer of the caller's).
static int read_self(uint8_t *dst, const struct vge_range *r, uint32_t n, size_t total) {
  if (total == 0) return 0;
  struct iovec local = {dst, total};
  struct iovec remote[VGE_MAX_RANGES];
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) if (r[i].len && !(r[i].pad & POPULATE_FLAGS)) { remote[k].iov_base = (void *)(uintptr_t)r[i].addr; remote[k].iov_len = r[i].len; k++; }
  ssize_t got = process_vm_readv(self_pid(), &local, 1, remote, k, 0);
  return got == (ssize_t)total ? 0 : -EFAULT;
}

static int write_self(const uint8_t *src, const struct vge_range *r, uint32_t n, size_t total) {
  if (total == 0) return 0;
  struct iovec local = {(void *)src, total};
  struct iovec remote[VGE_MAX_RANGES];
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) if (r[i].len) { remote[k].iov_base = (void *)(uintptr_t)r[i].addr; remote[k].iov_len = r[i].len; k++; }
  ssize_t put = process_vm_writev(self_pid(), &local, 1, remote, k, 0);
  return put == (ssize_t)total ? 0 : -EFAULT;
}

// The DONE of an ioctl: the install items' fd numbers into their ranges' bytes, the ranges into our memory.
static int apply_done(const struct vge_reply *rep, const uint8_t *body, size_t blen, int *rfds, int nr) {
  size_t head = (size_t)rep->nranges * sizeof(struct vge_range) + (size_t)rep->nfds * sizeof(struct vge_install);
  if (rep->nranges > VGE_MAX_RANGES || rep->nfds != (uint32_t)nr || head > blen) { close_all(rfds, nr); return -EIO; }
  const struct vge_range *ranges = (const struct vge_range *)body;
  const struct vge_install *inst = (const struct vge_install *)(body + (size_t)rep->nranges * sizeof(struct vge_range));
  uint8_t *data = (uint8_t *)body + head;
  size_t total = sum_ranges(ranges, rep->nranges);
  if (total != blen - head) { close_all(rfds, nr); return -EIO; }
  for (int i = 0; i < nr; i++) {
    if (inst[i].range >= rep->nranges || (size_t)inst[i].at + sizeof(int) > ranges[inst[i].range].len) { close_all(rfds, nr); return -EIO; }
    size_t off = sum_ranges(ranges, inst[i].range) + inst[i].at;
    memcpy(data + off, &rfds[i], sizeof(int));
  }
  int w = write_self(data, ranges, rep->nranges, total);
  if (w < 0) { close_all(rfds, nr); return w; }
  return 0;
}

static int node_ioctl(int fd, uint64_t cookie, unsigned long cmd, void *arg) {
  int saved = errno;
  struct vge_range want[VGE_MAX_RANGES];
  struct vge_fd_item items[VGE_MAX_FDS];
  uint32_t nwant = 0, nitems = 0;
  int resent = 0;
  uint32_t size = _IOC_SIZE(cmd);
  if ((_IOC_DIR(cmd) & _IOC_WRITE) && size) { want[0].addr = (uint64_t)(uintptr_t)arg; want[0].len = size; want[0].pad = 0; nwant = 1; }
  for (int round = 0; round < VGE_MAX_ROUNDS; round++) {
    size_t cap;
    uint8_t *frame = vge_frame(&cap);
    if (!frame) { errno = ENODEV; return -1; }
    size_t total = data_len(want, nwant);
    size_t head = nwant * sizeof(struct vge_range) + nitems * sizeof(struct vge_fd_item);
    if (total > VGE_MAX_BYTES || head + total > cap) { errno = ENOMEM; return -1; }
    memcpy(frame, want, nwant * sizeof(struct vge_range));
    int attach[VGE_MAX_FDS], na = 0;
    for (uint32_t i = 0; i < nitems; i++) {
      items[i].attached = fcntl(items[i].fd, F_GETFD) >= 0; // a closed fd is named, not attached: the server answers
      if (items[i].attached) attach[na++] = items[i].fd;
    }
    memcpy(frame + nwant * sizeof(struct vge_range), items, nitems * sizeof(struct vge_fd_item));
    int r = read_self(frame + head, want, nwant, total);
    if (r < 0) { errno = -r; return -1; }
    struct vge_req req = {.op = VGE_OP_IOCTL, .nranges = nwant, .nfds = nitems, .cmd = (uint32_t)cmd, .arg = (uint64_t)(uintptr_t)arg};
    struct vge_reply rep;
    const uint8_t *body;
    size_t blen;
    int rfds[VGE_MAX_FDS], nr = 0;
    r = request(fd, cookie, &req, frame, head + total, attach, na, &rep, &body, &blen, rfds, &nr);
    if (r < 0) { errno = -r; return -1; }
    if ((req.flags & VGE_IOCTL_SAME_FILE) && rep.kind == VGE_DONE && rep.err == EBADF && !resent) {
      close_all(rfds, nr); // the server no longer names that file for this lane: carry the fd itself once more
      resent = 1;
      round--;
      continue;
    }
    if (rep.kind == VGE_NEED) {
      close_all(rfds, nr);
      size_t need = (size_t)rep.nranges * sizeof(struct vge_range) + (size_t)rep.nfds * sizeof(struct vge_fd_item);
      if (rep.nranges > VGE_MAX_RANGES || rep.nfds > VGE_MAX_FDS || need != blen) { errno = EIO; return -1; }
      memcpy(want, body, (size_t)rep.nranges * sizeof(struct vge_range));
      memcpy(items, body + (size_t)rep.nranges * sizeof(struct vge_range), (size_t)rep.nfds * sizeof(struct vge_fd_item));
      nwant = rep.nranges;
      nitems = rep.nfds;
      populate(want, nwant);
      continue;
    }
    if (rep.kind != VGE_DONE) { close_all(rfds, nr); errno = EIO; return -1; }
    r = apply_done(&rep, body, blen, rfds, nr);
    if (r < 0) { errno = -r; return -1; }
    if (rep.err) { close_all(rfds, nr); errno = (int)rep.err; return -1; }
    errno = saved;
    return rep.result;
  }
  errno = EIO; // the server's plan did not converge (it answers EIO itself first)
  return -1;
}

// The ioctls the kernel answers for every fd before any driver sees them (fs/ioctl.c do_vfs_ioctl): the socket's own.
static int vfs_ioctl(unsigned long cmd) { return cmd == FIOCLEX || cmd == FIONCLEX || cmd == FIONBIO || cmd == FIOASYNC; }

VGE_EXPORT int ioctl(int fd, unsigned long cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (g_sock && !vfs_ioctl(cmd)) {
    // The node fd this thread used last is known by its cookie (one syscall); any other fd is asked the kernel's
    // SO_PEERCRED (vge_node_fd). A non-socket fails the first getsockopt: the real ioctl at once.
    struct lane *l = pthread_getspecific(g_key);
    uint64_t cookie = 0;
    socklen_t cl = sizeof cookie;
    int saved = errno;
    int r = getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &cl);
    errno = saved;
    if (r == 0 && ((l && cookie == l->last_cookie) || vge_node_fd(fd))) return node_ioctl(fd, cookie, cmd, arg);
  }
  return REAL(ioctl)(fd, cmd, arg);
}

// ---- mmap of node fds (map.c's vge_map asks the server for the object's memory) ----

static int node_map(int fd, int flags) { return fd >= 0 && !(flags & MAP_ANONYMOUS) && vge_node_fd(fd); }

VGE_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return node_map(fd, flags) ? vge_map(addr, len, prot, flags, fd, off) : REAL(mmap)(addr, len, prot, flags, fd, off);
}
VGE_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return node_map(fd, flags) ? vge_map(addr, len, prot, flags, fd, off) : REAL(mmap64)(addr, len, prot, flags, fd, off);
}

// ---- fork ----

static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_lock); }

// The child: one thread, the parent's lanes are not its own (a reply to the parent's thread could reach it).
static void atfork_child(void) {
  __atomic_store_n(&g_self, getpid(), __ATOMIC_RELAXED);
  pthread_mutex_init(&g_lock, NULL);
  struct lane *l = g_lanes;
  g_lanes = NULL;
  while (l) { struct lane *next = l->next; lane_free(l); l = next; }
  pthread_setspecific(g_key, NULL);
  if (!g_sock || !__atomic_load_n(&g_opened, __ATOMIC_RELAXED)) return;
  int saved = errno;
  vge_handoff_uffd(); // a uffd of the child's own (no EVENT_FORK needed)
  struct vge_req req = {.op = VGE_OP_FORK, .flags = (uint32_t)getppid()};
  struct vge_reply rep;
  const uint8_t *body;
  size_t blen;
  int rfds[VGE_MAX_FDS], nr = 0;
  if (vge_request(-1, &req, NULL, 0, NULL, 0, &rep, &body, &blen, rfds, &nr) == 0) close_all(rfds, nr);
  errno = saved;
}

__attribute__((constructor)) static void node_init(void) {
  const char *d = getenv("VIRTGPU_EMU_PRELOAD_DEBUG");
  g_debug = d && *d && *d != '0';
  const char *s = getenv("VIRTGPU_EMU_SOCK");
  if (!s || !*s) return;
  if (pthread_key_create(&g_key, lane_destructor) != 0) return;
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  g_sock = s; // last: every interposer checks it
  DBG("serving the node (%s, and $VIRTGPU_EMU_DEVICE) through %s", DEFAULT_NODE, s);
}
