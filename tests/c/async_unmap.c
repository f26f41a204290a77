/* async_unmap: a client that munmaps a registered userptr and then issues NO further ioctl until told to.
 * With a userfaultfd watcher the server deletes the BO right away (its serving loop is woken by the event),
 * as the kernel's notifier worker would; the test watches that from the server's snapshot.
 * stdout: "bo <handle> <res>" after create, "unmapped" after munmap; exits when stdin closes.
 * -w: wait for a line on stdin before the munmap (a test stops the server first: the munmap then blocks on it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "emu_client.h"

int main(int argc, char **argv) {
  int wait_first = argc > 1 && strcmp(argv[1], "-w") == 0;
  if (wait_first) { argc--; argv++; }
  int fd = emu_open_device("async_unmap", argc > 1 ? argv[1] : NULL);
  if (emu_context_init_hsakmt(fd) != 0) { fprintf(stderr, "context init failed\n"); return 1; }
  void *p = emu_map(8, 1);
  struct emu_bo bo;
  int rc = emu_create_userptr(fd, p, 8 * EMU_PAGE, 0, &bo);
  if (rc != 0) { fprintf(stderr, "create: %s\n", emu_rc_name(rc)); return 1; }
  printf("bo %u %u\n", bo.handle, bo.res);
  fflush(stdout);
  char c;
  ssize_t n;
  if (wait_first) while ((n = read(0, &c, 1)) > 0 ? c != '\n' : n < 0 && errno == EINTR) { /* until the first line */ }
  munmap(p, 8 * EMU_PAGE);
  printf("unmapped\n");
  fflush(stdout);
  while ((n = read(0, &c, 1)) > 0 || (n < 0 && errno == EINTR)) { /* wait for the test to close stdin */ }
  if (n < 0) fprintf(stderr, "async_unmap: read(stdin): %s\n", strerror(errno));
  close(fd);
  return 0;
}
