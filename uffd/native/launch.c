// virtgpu-emu-launch CMD [ARGS...]: runs CMD as its own child, for `virtgpu-emu run` (cli/run.ts). The server never
// ptrace-injects a userfaultfd into its own children (Node's child watcher would reap their ptrace stops:
// uffd/provider.ts); started through this launcher, CMD is the server's grandchild and can be injected — the only way a
// statically linked CMD (which ignores LD_PRELOAD, so hands nothing over) is watched exactly instead of through /proc.
//   exit:    CMD's status: its exit code, or the signal that killed it raised again here (no core file), so the server
//            sees what a direct child would show; 127 (126: found but not executable) with a message when exec fails.
//   signals: every signal a process sends this one (but SIGCHLD) is forwarded to CMD; SIGKILL and SIGSTOP cannot be.
//   orphans: none. The launcher gets SIGTERM when the server dies (PR_SET_PDEATHSIG), forwards it, and SIGKILLs CMD
//            if it is still there GRACE_S later; CMD gets SIGKILL when the launcher dies, even by SIGKILL (its own
//            PR_SET_PDEATHSIG, set before exec).
// Linked -static (binding.gyp): it must not load the preload library that `run` puts in CMD's environment.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_S 2
#define EXIT_NOT_FOUND 127
#define EXIT_NOT_EXECUTABLE 126

static void die_like(int status) {
  if (WIFEXITED(status)) exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);  // CMD dumped its own core (or not); none from us
  signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  kill(getpid(), sig);
  sigprocmask(SIG_UNBLOCK, &one, NULL);  // the pending signal is delivered here
  exit(128 + sig);                      // not reached for a terminating signal
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]); return 2; }
  pid_t server = getppid();
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);  // every signal is taken with sigwaitinfo below, none by a handler
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != server) return 1;  // the server died before it took
  int report[2];  // exec's errno, if exec fails; closed by a successful exec (O_CLOEXEC)
  if (pipe2(report, O_CLOEXEC) != 0) { perror("virtgpu-emu-launch: pipe2"); return 1; }
  pid_t launcher = getpid();
  pid_t cmd = fork();
  if (cmd < 0) { perror("virtgpu-emu-launch: fork"); return 1; }
  if (cmd == 0) {
    close(report[0]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != launcher) _exit(1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[1], argv + 1);
    int e = errno;
    ssize_t w = write(report[1], &e, sizeof e);
    (void)w;
    _exit(EXIT_NOT_FOUND);
  }
  close(report[1]);
  int e = 0;
  ssize_t n;
  do n = read(report[0], &e, sizeof e); while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == (ssize_t)sizeof e) {
    fprintf(stderr, "virtgpu-emu-launch: cannot run %s: %s\n", argv[1], strerror(e));
    waitpid(cmd, NULL, 0);
    return e == ENOENT || e == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
  }
  int dying = 0;  // the server is gone: CMD had SIGTERM, SIGKILL follows after GRACE_S
  for (;;) {
    siginfo_t si;
    struct timespec grace = {GRACE_S, 0};
    int sig = dying ? sigtimedwait(&all, &si, &grace) : sigwaitinfo(&all, &si);
    if (sig < 0) {
      if (errno == EAGAIN) kill(cmd, SIGKILL);
      continue;
    }
    if (sig == SIGCHLD) {
      int status;
      pid_t r;
      do r = waitpid(cmd, &status, WNOHANG); while (r < 0 && errno == EINTR);
      if (r == cmd) die_like(status);
      continue;
    }
    // One the kernel sent (the terminal's SIGINT, SIGHUP or SIGWINCH to the foreground process group, which CMD is in
    // as well; a fault of ours) is not CMD's twice; one a process sent (the server forwarding its own, kill(1), our
    // parent's death) is forwarded.
    if (si.si_code == SI_KERNEL) continue;
    kill(cmd, sig);
    if (!dying && getppid() != server) dying = 1;
  }
}
