// A client process whose memory the uffd/ watcher tests watch (tests/uffd/*.test.ts). No libdrm: the tests issue
// the ioctls on its behalf through a core Device (the client's pid, its memory via process_vm_*); this program only
// performs the memory operations, one command per stdin line, one reply line per command on stdout:
//   "ok [values...]" or "err <errno-name>".
// Commands (numbers accept 0x..):
//   pid                               -> ok <pid>
//   mmap <pages>                      -> ok <addr>     private anonymous, every page written
//   mmapshm <pages>                   -> ok <addr>     memfd MAP_SHARED, every page written
//   mmapfix <addr> <pages>            -> ok <addr>     MAP_FIXED private anonymous over addr, written
//   reserve <pages>                   -> ok <addr>     PROT_NONE reservation (never written; map inside it with mmapfix)
//   write <addr> <pages> <byte>       -> ok            write byte at the start of each page
//   munmap <addr> <len>               -> ok
//   madvise <addr> <len> <advice>     -> ok
//   mprotect <addr> <len> <prot>      -> ok
//   mremap <addr> <old> <new> <flags> [<newaddr>] -> ok <addr>
//   thread <cmd...>                   -> runs one command on a NEW thread, joins it, replies its reply
//   fork <ms> [<addr> <byte>]         -> ok <childpid>  child: optional write, sleep ms, _exit(0)
//   vfork <ms>                        -> ok            vfork; the child sleeps ms, _exit(0) (parent unstoppable meanwhile)
//   wait <pid>                        -> ok <status>
//   ownuffd <addr> <len>              -> ok <fd>       our OWN uffd registered (WP) over the range + a reader thread
//   sleep <ms>                        -> ok
//   exit                              -> (exits 0)
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAXTOK 8

static void reply_err(char *out, size_t n, int e) { snprintf(out, n, "err %s", strerrorname_np(e) ? strerrorname_np(e) : "EIO"); }

static void fill(uintptr_t addr, unsigned long pages, int byte) {
  for (unsigned long i = 0; i < pages; i++) *(volatile uint8_t *)(addr + i * PAGE) = (uint8_t)byte;
}

static void *own_reader(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct uffd_msg m[16];
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return NULL;
    ssize_t r = read(fd, m, sizeof m);
    if (r < 0 && errno != EAGAIN && errno != EINTR) return NULL;
  }
}

static void run(char **t, int nt, char *out, size_t n);

struct thread_job { char **t; int nt; char *out; size_t n; };
static void *thread_main(void *arg) {
  struct thread_job *j = arg;
  run(j->t, j->nt, j->out, j->n);
  return NULL;
}

static unsigned long long num(const char *s) { return strtoull(s, NULL, 0); }

static void run(char **t, int nt, char *out, size_t n) {
  const char *c = t[0];
  snprintf(out, n, "ok");
  if (!strcmp(c, "pid")) { snprintf(out, n, "ok %d", (int)getpid()); return; }
  if (!strcmp(c, "mmap") || !strcmp(c, "mmapshm")) {
    unsigned long pages = num(t[1]);
    int fd = -1, flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (!strcmp(c, "mmapshm")) {
      fd = memfd_create("uffd_client", MFD_CLOEXEC);
      if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) < 0) { reply_err(out, n, errno); return; }
      flags = MAP_SHARED;
    }
    void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (fd >= 0) close(fd);
    if (p == MAP_FAILED) { reply_err(out, n, errno); return; }
    fill((uintptr_t)p, pages, 0x5a);
    snprintf(out, n, "ok 0x%lx", (unsigned long)p);
    return;
  }
  if (!strcmp(c, "mmapfix")) {
    unsigned long pages = num(t[2]);
    void *p = mmap((void *)(uintptr_t)num(t[1]), pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) { reply_err(out, n, errno); return; }
    fill((uintptr_t)p, pages, 0x6b);
    snprintf(out, n, "ok 0x%lx", (unsigned long)p);
    return;
  }
  if (!strcmp(c, "reserve")) {
    void *p = mmap(NULL, num(t[1]) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { reply_err(out, n, errno); return; }
    snprintf(out, n, "ok 0x%lx", (unsigned long)p);
    return;
  }
  if (!strcmp(c, "write")) { fill((uintptr_t)num(t[1]), num(t[2]), (int)num(t[3])); return; }
  if (!strcmp(c, "munmap")) { if (munmap((void *)(uintptr_t)num(t[1]), num(t[2])) < 0) reply_err(out, n, errno); return; }
  if (!strcmp(c, "madvise")) { if (madvise((void *)(uintptr_t)num(t[1]), num(t[2]), (int)num(t[3])) < 0) reply_err(out, n, errno); return; }
  if (!strcmp(c, "mprotect")) { if (mprotect((void *)(uintptr_t)num(t[1]), num(t[2]), (int)num(t[3])) < 0) reply_err(out, n, errno); return; }
  if (!strcmp(c, "mremap")) {
    void *p = mremap((void *)(uintptr_t)num(t[1]), num(t[2]), num(t[3]), (int)num(t[4]), nt > 5 ? (void *)(uintptr_t)num(t[5]) : NULL);
    if (p == MAP_FAILED) { reply_err(out, n, errno); return; }
    snprintf(out, n, "ok 0x%lx", (unsigned long)p);
    return;
  }
  if (!strcmp(c, "thread")) {
    struct thread_job j = {t + 1, nt - 1, out, n};
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, &j) != 0) { reply_err(out, n, EAGAIN); return; }
    pthread_join(th, NULL);
    return;
  }
  if (!strcmp(c, "fork")) {
    unsigned long ms = num(t[1]);
    pid_t pid = fork();
    if (pid < 0) { reply_err(out, n, errno); return; }
    if (pid == 0) {
      if (nt > 3) *(volatile uint8_t *)(uintptr_t)num(t[2]) = (uint8_t)num(t[3]);
      struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      _exit(0);
    }
    snprintf(out, n, "ok %d", (int)pid);
    return;
  }
  if (!strcmp(c, "vfork")) { /* this thread sits in vfork's killable wait (no ptrace stop possible) for MS ms */
    unsigned long ms = num(t[1]);
    pid_t pid = vfork();
    if (pid < 0) { reply_err(out, n, errno); return; }
    if (pid == 0) {
      struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      _exit(0);
    }
    waitpid(pid, NULL, 0);
    return;
  }
  if (!strcmp(c, "wait")) {
    int st = 0;
    if (waitpid((pid_t)num(t[1]), &st, 0) < 0) { reply_err(out, n, errno); return; }
    snprintf(out, n, "ok %d", st);
    return;
  }
  if (!strcmp(c, "ownuffd")) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) { reply_err(out, n, errno); return; }
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE};
    if (ioctl(fd, UFFDIO_API, &api) < 0) { reply_err(out, n, errno); return; }
    struct uffdio_register reg = {.range = {.start = num(t[1]), .len = num(t[2])}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) { reply_err(out, n, errno); return; }
    pthread_t th;
    if (pthread_create(&th, NULL, own_reader, (void *)(intptr_t)fd) != 0) { reply_err(out, n, EAGAIN); return; }
    pthread_detach(th);
    snprintf(out, n, "ok %d", fd);
    return;
  }
  if (!strcmp(c, "sleep")) {
    unsigned long ms = num(t[1]);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return;
  }
  if (!strcmp(c, "exit")) exit(0);
  snprintf(out, n, "err EINVAL");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[512], out[128];
  while (fgets(line, sizeof line, stdin)) {
    char *t[MAXTOK];
    int nt = 0;
    for (char *s = strtok(line, " \t\n"); s && nt < MAXTOK; s = strtok(NULL, " \t\n")) t[nt++] = s;
    if (nt == 0) continue;
    run(t, nt, out, sizeof out);
    printf("%s\n", out);
  }
  return 0;
}
