// Attacks on the server's client channel (uffd/channel.ts, the uffd handoff), run as an unprivileged user by
// tests/security/handoff.test.ts. No libdrm. One mode per run; every result is one line on stdout.
//   handoff SOCK [hold]        hand over our own real userfaultfd -> "reply <line>"; hold: then wait for stdin EOF
//   forge SOCK pipe|eventfd|socket|memfd|file:PATH
//                              send that fd as the uffd -> "reply <line> ms <how long the answer took>"
//   claim SOCK PID [FD]        a message claiming pid PID (our own uffd attached, or none with FD=-1); then the same
//                              with SCM_CREDENTIALS forged to PID -> "reply <line>" and "forged <line | sendmsg errno>"
//   oracle SOCK PID FD...      for each FD: the old "VGEUFFD1 <pid> <fd>" line, then a "VGECHAN1 uffd <pid> <fd>"
//                              message -> "fd <FD> <reply>|<reply>"
//   flood SOCK N               N idle connections at once -> "connected C", "refused R" (answered ERR EAGAIN at
//                              once), then "closed K after-ms MIN MAX" (the idle ones the server closed within 5 s)
//   exhaust SOCK N             N children each hand over their own uffd and stay alive -> "ok A enospc B other C",
//                              then waits for stdin EOF (the children die with us: PR_SET_PDEATHSIG)
//   junk SOCK                  malformed messages, one per connection -> "<case> <reply>": long (300 bytes), fds
//                              (8 eventfds), two (two uffds), kind (an unknown kind), magic (no magic), empty
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int conn(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(s); errno = e; return -1; }
  return s;
}

// sendmsg of text with nfds fds (at most 8) and optional explicit credentials; 0 or -errno.
static int send_msg(int s, const char *text, const int *fds, int nfds, const struct ucred *cred) {
  struct iovec iov = {(void *)text, strlen(text)};
  union { char buf[CMSG_SPACE(8 * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0 || cred) {
    size_t len = 0;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (nfds > 0) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
      memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
      len += CMSG_SPACE(sizeof(int) * (size_t)nfds);
      c = CMSG_NXTHDR(&msg, c);
    }
    if (cred) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof *cred);
      memcpy(CMSG_DATA(c), cred, sizeof *cred);
      len += CMSG_SPACE(sizeof *cred);
    }
    msg.msg_controllen = len;
  }
  return sendmsg(s, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

// One exchange on a new connection: "<reply without newline>", "sendmsg <errno>" or "connect <errno>".
static void exchange_fds(const char *sock, const char *text, const int *fds, int nfds, const struct ucred *cred, char *out, size_t n) {
  int s = conn(sock);
  if (s < 0) { snprintf(out, n, "connect %s", strerrorname_np(errno)); return; }
  int r = send_msg(s, text, fds, nfds, cred);
  if (r < 0) { snprintf(out, n, "sendmsg %s", strerrorname_np(-r)); close(s); return; }
  char buf[128];
  ssize_t got = recv(s, buf, sizeof buf - 1, 0);
  if (got <= 0) snprintf(out, n, "(no reply)");
  else { buf[got] = 0; buf[strcspn(buf, "\n")] = 0; snprintf(out, n, "%s", buf); }
  close(s);
}

static void exchange(const char *sock, const char *text, int fd, const struct ucred *cred, char *out, size_t n) {
  exchange_fds(sock, text, &fd, fd >= 0 ? 1 : 0, cred, out, n);
}

static int own_uffd(void) { return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1 /* UFFD_USER_MODE_ONLY */); }

static void wait_stdin_eof(void) {
  char b[64];
  while (read(0, b, sizeof b) > 0) {}
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: see the head of handoff_attack.c\n"); return 2; }
  const char *mode = argv[1], *sock = argv[2];
  char text[128], reply[160];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(mode, "handoff")) {
    int fd = own_uffd();
    if (fd < 0) { printf("reply userfaultfd %s\n", strerrorname_np(errno)); return 1; }
    snprintf(text, sizeof text, "VGECHAN1 uffd %d", (int)getpid());
    exchange(sock, text, fd, NULL, reply, sizeof reply);
    close(fd);
    printf("reply %s\n", reply);
    if (argc > 3 && !strcmp(argv[3], "hold")) wait_stdin_eof();
    return 0;
  }
  if (!strcmp(mode, "forge") && argc > 3) {
    int fd = -1, p[2], sv[2];
    if (!strcmp(argv[3], "pipe") && pipe2(p, O_CLOEXEC) == 0) fd = p[0];
    else if (!strcmp(argv[3], "eventfd")) fd = eventfd(0, EFD_CLOEXEC);
    else if (!strcmp(argv[3], "socket") && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) fd = sv[0];
    else if (!strcmp(argv[3], "memfd")) fd = memfd_create("forged", MFD_CLOEXEC);
    else if (!strncmp(argv[3], "file:", 5)) fd = open(argv[3] + 5, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { printf("reply make %s\n", strerrorname_np(errno)); return 1; }
    snprintf(text, sizeof text, "VGECHAN1 uffd %d", (int)getpid());
    double t0 = now_ms();
    exchange(sock, text, fd, NULL, reply, sizeof reply);
    printf("reply %s ms %.0f\n", reply, now_ms() - t0);
    return 0;
  }
  if (!strcmp(mode, "claim") && argc > 3) {
    int pid = atoi(argv[3]);
    int fd = argc > 4 && atoi(argv[4]) < 0 ? -1 : own_uffd();
    snprintf(text, sizeof text, "VGECHAN1 uffd %d", pid);
    exchange(sock, text, fd, NULL, reply, sizeof reply);
    printf("reply %s\n", reply);
    struct ucred forged = {pid, getuid(), getgid()};
    exchange(sock, text, fd, &forged, reply, sizeof reply);
    printf("forged %s\n", reply);
    if (fd >= 0) close(fd);
    return 0;
  }
  if (!strcmp(mode, "oracle") && argc > 4) {
    int pid = atoi(argv[3]);
    for (int i = 4; i < argc; i++) {
      char old[160];
      snprintf(text, sizeof text, "VGEUFFD1 %d %s\n", pid, argv[i]);
      exchange(sock, text, -1, NULL, old, sizeof old);
      snprintf(text, sizeof text, "VGECHAN1 uffd %d %s", pid, argv[i]);
      exchange(sock, text, -1, NULL, reply, sizeof reply);
      printf("fd %s %s|%s\n", argv[i], old, reply);
    }
    return 0;
  }
  if (!strcmp(mode, "flood") && argc > 3) {
    int n = atoi(argv[3]);
    int *fds = calloc((size_t)n, sizeof(int));
    struct pollfd *pf = calloc((size_t)n, sizeof(struct pollfd));
    int connected = 0, refused = 0;
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
      fds[i] = conn(sock);
      if (fds[i] >= 0) connected++;
    }
    printf("connected %d\n", connected);
    // Answered at once (ERR EAGAIN): readable within 500 ms of the last connect.
    double closedMin = 1e9, closedMax = 0;
    int closed = 0, open = 0;
    for (int i = 0; i < n; i++) pf[i] = (struct pollfd){fds[i], POLLIN, 0};
    double until = now_ms() + 500;
    while (now_ms() < until) {
      if (poll(pf, (nfds_t)n, 50) <= 0) continue;
      for (int i = 0; i < n; i++) {
        if (pf[i].fd < 0 || !pf[i].revents) continue;
        char b[64];
        ssize_t g = recv(pf[i].fd, b, sizeof b - 1, MSG_DONTWAIT);
        if (g > 0 && !strncmp(b, "ERR EAGAIN", 10)) refused++;
        close(pf[i].fd);
        pf[i].fd = -1;
      }
    }
    printf("refused %d\n", refused);
    // The rest are idle: the server must close them (2 s after their accept).
    until = t0 + 5000;
    for (int i = 0; i < n; i++) if (pf[i].fd >= 0) open++;
    while (closed < open && now_ms() < until) {
      if (poll(pf, (nfds_t)n, 100) <= 0) continue;
      double t = now_ms() - t0;
      for (int i = 0; i < n; i++) {
        if (pf[i].fd < 0 || !pf[i].revents) continue;
        closed++;
        if (t < closedMin) closedMin = t;
        if (t > closedMax) closedMax = t;
        close(pf[i].fd);
        pf[i].fd = -1;
      }
    }
    printf("closed %d of %d after-ms %.0f %.0f\n", closed, open, closed ? closedMin : 0, closedMax);
    return 0;
  }
  if (!strcmp(mode, "junk")) {
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    exchange(sock, big, -1, NULL, reply, sizeof reply);
    printf("long %s\n", reply);
    snprintf(text, sizeof text, "VGECHAN1 uffd %d", (int)getpid());
    int evs[8];
    for (int i = 0; i < 8; i++) evs[i] = eventfd(0, EFD_CLOEXEC);
    exchange_fds(sock, text, evs, 8, NULL, reply, sizeof reply);  // more fds than the server takes
    printf("fds %s\n", reply);
    for (int i = 0; i < 8; i++) close(evs[i]);
    int two[2] = {own_uffd(), own_uffd()};
    exchange_fds(sock, text, two, 2, NULL, reply, sizeof reply);  // the uffd kind takes one
    printf("two %s\n", reply);
    close(two[0]);
    close(two[1]);
    snprintf(text, sizeof text, "VGECHAN1 nosuch %d", (int)getpid());
    exchange(sock, text, -1, NULL, reply, sizeof reply);
    printf("kind %s\n", reply);
    snprintf(text, sizeof text, "HELLO uffd %d", (int)getpid());
    exchange(sock, text, own_uffd(), NULL, reply, sizeof reply);
    printf("magic %s\n", reply);
    exchange(sock, "", -1, NULL, reply, sizeof reply);
    printf("empty %s\n", reply);
    return 0;
  }
  if (!strcmp(mode, "exhaust") && argc > 3) {
    int n = atoi(argv[3]);
    int ok = 0, enospc = 0, other = 0;
    for (int i = 0; i < n; i++) {
      int p[2];
      if (pipe(p) < 0) return 1;
      pid_t c = fork();
      if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        int fd = own_uffd();
        snprintf(text, sizeof text, "VGECHAN1 uffd %d", (int)getpid());
        exchange(sock, text, fd, NULL, reply, sizeof reply);
        char r = !strcmp(reply, "OK") ? 'o' : !strncmp(reply, "ERR ENOSPC", 10) ? 'n' : 'x';
        if (r == 'x') fprintf(stderr, "child: %s\n", reply);
        (void)!write(p[1], &r, 1);
        close(fd);
        for (;;) pause();
      }
      close(p[1]);
      char r = 'x';
      if (read(p[0], &r, 1) != 1) r = 'x';
      close(p[0]);
      if (r == 'o') ok++; else if (r == 'n') enospc++; else other++;
    }
    printf("ok %d enospc %d other %d\n", ok, enospc, other);
    wait_stdin_eof();
    return 0;  // the children die with us (PR_SET_PDEATHSIG)
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
