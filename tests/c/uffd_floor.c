// The cross-process floor of the munmap path, in C, for bench/watch: a client process registers a page on its own
// userfaultfd (mode WP, events UNMAP/REMOVE/REMAP), hands the fd to a server process over SCM_RIGHTS, and munmaps the
// page; the server's reader thread reads the UNMAP and bumps an eventfd; the server's main thread, blocked in poll on
// it, wakes. Per munmap: call → event read, call → main thread woken, and the client's own munmap duration; the same
// munmap of an unregistered page is the baseline of the last. One JSON line per measurement:
//   {"row":"...","median_us":M,"p99_us":P,"n":N}
// Usage: uffd_floor [-n N] [-w WARMUP] [-p PAGES (1): the size of each munmap]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_N 100000

static int pages = 1;

// Shared by both processes (MAP_SHARED before fork): the client's timestamps, the server's, per sample.
struct shared {
  uint64_t call[MAX_N];       // client: before munmap
  uint64_t ret[MAX_N];        // client: after munmap returned
  uint64_t read_at[MAX_N];    // server reader thread: after read() returned the UNMAP
  uint64_t woken[MAX_N];      // server main thread: after poll on the eventfd returned
  uint64_t unreg[MAX_N];      // client: duration of an unregistered munmap (ns)
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "uffd_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static void row(const char* name, uint64_t* ns, int n) {
  qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
  int p99 = (n * 99 + 99) / 100 - 1;
  if (p99 >= n) p99 = n - 1;
  printf("{\"row\":\"%s\",\"median_us\":%.3f,\"p99_us\":%.3f,\"n\":%d}\n", name, ns[(n - 1) / 2] / 1e3, ns[p99] / 1e3, n);
}

static void send_fd(int sock, int fd) {
  char c = 'u';
  struct iovec iov = {&c, 1};
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
  struct cmsghdr* h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) != 1) die("sendmsg");
}

static int recv_fd(int sock) {
  char c;
  struct iovec iov = {&c, 1};
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
  if (recvmsg(sock, &m, 0) != 1) die("recvmsg");
  struct cmsghdr* h = CMSG_FIRSTHDR(&m);
  if (!h || h->cmsg_type != SCM_RIGHTS) { errno = EPROTO; die("no fd received"); }
  int fd;
  memcpy(&fd, CMSG_DATA(h), sizeof fd);
  return fd;
}

struct reader { int uffd; int efd; struct shared* sh; int total; };

// The server's reader thread: one blocking read per event, its time noted, the main thread woken.
static void* reader_main(void* arg) {
  struct reader* r = arg;
  for (int i = 0; i < r->total;) {
    struct uffd_msg msg;
    ssize_t got = read(r->uffd, &msg, sizeof msg);
    if (got < 0 && errno == EINTR) continue;
    if (got != (ssize_t)sizeof msg) die("read uffd");
    if (msg.event != UFFD_EVENT_UNMAP) continue;
    r->sh->read_at[i++] = now_ns();
    uint64_t one = 1;
    if (write(r->efd, &one, sizeof one) != sizeof one) die("write eventfd");
  }
  return NULL;
}

// The client: n + warmup registered munmaps (each acknowledged by the server before the next), then as many
// unregistered ones.
static void client(int sock, int ack, struct shared* sh, int total) {
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
  if (uffd < 0) uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP};
  if (ioctl(uffd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
  send_fd(sock, uffd);
  // One address inside a reservation: each munmap's hole is mapped again at once.
  size_t len = (size_t)pages * PAGE;
  char* res = mmap(NULL, len + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (res == MAP_FAILED) die("mmap reservation");
  char* at = res + PAGE;
  for (int i = 0; i < total; i++) {
    if (mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at) die("mmap");
    for (size_t o = 0; o < len; o += PAGE) at[o] = 1;
    struct uffdio_register reg = {.range = {(uintptr_t)at, len}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) die("UFFDIO_REGISTER");
    sh->call[i] = now_ns();
    if (munmap(at, len) != 0) die("munmap");
    sh->ret[i] = now_ns();
    char c;
    if (read(ack, &c, 1) != 1) die("read ack");
  }
  for (int i = 0; i < total; i++) {
    if (mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at) die("mmap");
    for (size_t o = 0; o < len; o += PAGE) at[o] = 1;
    uint64_t t0 = now_ns();
    if (munmap(at, len) != 0) die("munmap");
    sh->unreg[i] = now_ns() - t0;
  }
  _exit(0);
}

int main(int argc, char** argv) {
  int n = 3000, warm = 200;
  for (int o; (o = getopt(argc, argv, "n:w:p:")) != -1;) {
    if (o == 'n') n = atoi(optarg);
    else if (o == 'p') pages = atoi(optarg);
    else if (o == 'w') warm = atoi(optarg);
    else { fprintf(stderr, "usage: uffd_floor [-n N] [-w WARMUP] [-p PAGES]\n"); return 2; }
  }
  if (n < 1 || warm < 0 || n + warm > MAX_N || pages < 1 || pages > 4096) { fprintf(stderr, "uffd_floor: 1 <= n, n + warmup <= %d\n", MAX_N); return 2; }
  int total = n + warm;
  struct shared* sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) die("mmap shared");
  int sv[2], ackp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  if (pipe(ackp) != 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    close(ackp[1]);
    client(sv[1], ackp[0], sh, total);
  }
  close(sv[1]);
  close(ackp[0]);
  struct reader r = {.uffd = recv_fd(sv[0]), .efd = eventfd(0, EFD_CLOEXEC), .sh = sh, .total = total};
  if (r.efd < 0) die("eventfd");
  pthread_t th;
  if (pthread_create(&th, NULL, reader_main, &r) != 0) die("pthread_create");
  for (int i = 0; i < total; i++) {
    struct pollfd p = {r.efd, POLLIN, 0};
    if (poll(&p, 1, -1) != 1) die("poll");
    sh->woken[i] = now_ns();
    uint64_t v;
    if (read(r.efd, &v, sizeof v) != sizeof v) die("read eventfd");
    if (write(ackp[1], "a", 1) != 1) die("write ack");
  }
  pthread_join(th, NULL);
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "uffd_floor: client failed\n"); return 1; }
  static uint64_t a[MAX_N], b[MAX_N], c[MAX_N], d[MAX_N];
  for (int i = 0; i < n; i++) {
    int k = warm + i;
    a[i] = sh->read_at[k] - sh->call[k];
    b[i] = sh->woken[k] - sh->call[k];
    c[i] = sh->ret[k] - sh->call[k];
    d[i] = sh->unreg[k];
  }
  row("munmap call -> event read (reader thread, other process)", a, n);
  row("munmap call -> server main thread woken", b, n);
  row("client munmap, registered (C reader thread in another process)", c, n);
  row("client munmap, unregistered", d, n);
  printf("{\"pages\":%d}\n", pages);
  return 0;
}
