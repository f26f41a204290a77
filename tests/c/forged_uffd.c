// The forged-userfaultfd attack on ptrace injection, run as an unprivileged user by tests/security/inject-forged.test.ts:
// a seccomp filter turns this process's userfaultfd() into a user notification, and a supervisor thread answers
// it by installing the read end of a pipe as the syscall's result (SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND). So when the server injects userfaultfd() at our open of the node, it gets a pipe
// whose other end we hold, and we write forged uffd_msg FORK records into it naming fds 0..63 (of the server).
// Usage: forged_uffd <node>. Output, one line each:
//   "reach <rc>"       GETPARAM(3D_FEATURES) right after the open (0: we reached the server)
//   "notified <n>"     userfaultfd() calls our supervisor answered (the injected one among them)
//   "wrote <n> [errno]" forged FORK records (naming fds 0..63) written, one per 10 ms for 2 s at most, until the
//                      write fails (EPIPE: no one holds the read end any more, the server neither)
//   "after <rc>"       GETPARAM once more (0: the server still serves us)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

static int listener = -1;
static int pipe_rd = -1;
static volatile int notified = 0;

static void *supervisor(void *arg) {
  (void)arg;
  for (;;) {
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    struct seccomp_notif_addfd add;
    memset(&add, 0, sizeof add);
    add.id = req.id;
    add.flags = SECCOMP_ADDFD_FLAG_SEND;  // the new fd number is the syscall's return value
    add.srcfd = (unsigned)pipe_rd;
    add.newfd_flags = O_CLOEXEC;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
      struct seccomp_notif_resp resp;
      memset(&resp, 0, sizeof resp);
      resp.id = req.id;
      resp.error = -ENOSYS;
      ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    __atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return 1;
  pipe_rd = p[0];
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) { perror("no_new_privs"); return 1; }
  listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) { perror("seccomp"); return 1; }
  pthread_t th;
  pthread_create(&th, NULL, supervisor, NULL);

  int fd = emu_open_device("forged_uffd", argc > 1 ? argv[1] : NULL);
  int v = 0;
  printf("reach %d\n", emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v));
  // The injection completes right after the server's reply to our open; give it a moment.
  for (int i = 0; i < 200 && !__atomic_load_n(&notified, __ATOMIC_SEQ_CST); i++) usleep(10000);
  usleep(50000);
  printf("notified %d\n", __atomic_load_n(&notified, __ATOMIC_SEQ_CST));
  close(pipe_rd);  // from now on only a copy taken by the server keeps the read end open
  // One forged FORK record every 10 ms until the pipe has no reader left (the server closes a refused fd on a
  // thread of its own, so that may take a moment), 2 s at most.
  struct uffd_msg m;
  int wrote = 0, err = 0;
  for (int i = 0; i < 200; i++) {
    memset(&m, 0, sizeof m);
    m.event = UFFD_EVENT_FORK;
    m.arg.fork.ufd = (uint32_t)(i % 64);
    if (write(p[1], &m, sizeof m) != (ssize_t)sizeof m) { err = errno; break; }
    wrote++;
    usleep(10000);
  }
  if (err) printf("wrote %d %s\n", wrote, strerrorname_np(err)); else printf("wrote %d\n", wrote);
  usleep(100000);  // a server reading the pipe would act on the records now
  printf("after %d\n", emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v));
  close(fd);
  return 0;
}
