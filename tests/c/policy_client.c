/* policy_client: a client of the security tests, run as root or as an unprivileged user.
 * usage: policy_client [-n] PATH
 *   -n: prctl(PR_SET_DUMPABLE, 0) first (as a setuid program or a careful daemon is): the server must not inject.
 * stdout: "open <errno name>" and exits 2 when the node cannot be opened; else "ready <pid> <rc>" after one ioctl
 * (GETPARAM 3D: proof the server was reached), then for each line on stdin: a userptr over 8 fresh pages, a munmap
 * of all of it, and RESOURCE_INFO of its handle: "round create=<rc> after-munmap=<rc>" (ENOENT once the server has
 * seen the munmap: at once with a userfaultfd, at this very ioctl with the /proc checker). Exits when stdin closes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "emu_client.h"

int main(int argc, char **argv) {
  int nondumpable = argc > 1 && strcmp(argv[1], "-n") == 0;
  if (nondumpable) { argc--; argv++; }
  if (argc < 2) { fprintf(stderr, "usage: policy_client [-n] PATH\n"); return 2; }
  if (nondumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) { perror("prctl"); return 1; }
  int fd = open(argv[1], O_RDWR | O_CLOEXEC);
  if (fd < 0) { printf("open %s\n", emu_rc_name(-errno)); return 2; }
  int v = 0;
  printf("ready %d %s\n", (int)getpid(), emu_rc_name(emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v)));
  fflush(stdout);
  int ctx = emu_context_init_hsakmt(fd);
  if (ctx != 0) { printf("context %s\n", emu_rc_name(ctx)); fflush(stdout); }
  char c;
  ssize_t n;
  for (;;) {
    while ((n = read(0, &c, 1)) > 0 ? c != '\n' : n < 0 && errno == EINTR) { /* until a whole line */ }
    if (n == 0) break;
    if (n < 0) { perror("read"); return 1; }
    void *p = emu_map(8, 1);
    struct emu_bo bo = { 0 };
    int rc = emu_create_userptr(fd, p, 8 * EMU_PAGE, 0, &bo);
    munmap(p, 8 * EMU_PAGE);
    struct virtgpu_emu_resource_info info;
    int after = rc == 0 ? emu_resource_info(fd, bo.handle, &info) : rc;
    printf("round create=%s after-munmap=%s\n", emu_rc_name(rc), emu_rc_name(after));
    fflush(stdout);
  }
  close(fd);
  return 0;
}
