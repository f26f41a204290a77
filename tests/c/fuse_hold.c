// A FUSE file system whose daemon never answers FLUSH from one process: what a client could make of any fd it hands
// the server (close(2) runs the file's flush and waits for the daemon). Raw /dev/fuse, no libfuse; run by
// tests/security/handoff.test.ts as root (a client with its own FUSE mount, where /dev/fuse is open to users).
// Usage: fuse_hold DIR HOLDPID — mounts at DIR (allow_other) one file "f" (0644, empty); a FLUSH from any thread of
// process HOLDPID is held (never answered), every other request answered. Prints "mounted", then "held <n>" at each
// held FLUSH. On stdin EOF: detaches the mount and exits (the kernel then aborts the connection: held FLUSHes fail
// with ENOTCONN); also when killed with SIGTERM or when its parent dies.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int dev = -1;
static int holdpid = 0;
static int held = 0;
static const char *dir = NULL;

// Killed, or our parent (the test) died: never leave the mount behind.
static void on_term(int sig) {
  (void)sig;
  umount2(dir, MNT_DETACH);
  _exit(1);
}

static void reply(uint64_t unique, int error, const void *body, size_t len) {
  char buf[sizeof(struct fuse_out_header) + 256];
  struct fuse_out_header *h = (struct fuse_out_header *)buf;
  h->len = (uint32_t)(sizeof *h + (error ? 0 : len));
  h->error = error;
  h->unique = unique;
  if (!error && len) memcpy(buf + sizeof *h, body, len);
  (void)!write(dev, buf, h->len);
}

static void attr(struct fuse_attr *a, uint64_t ino) {
  memset(a, 0, sizeof *a);
  a->ino = ino;
  a->mode = ino == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  a->nlink = 1;
}

static int tgid_of(int tid) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/%d/status", tid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int tgid = -1;
  while (fgets(line, sizeof line, f)) if (sscanf(line, "Tgid: %d", &tgid) == 1) break;
  fclose(f);
  return tgid;
}

static void *serve(void *arg) {
  (void)arg;
  static char buf[FUSE_MIN_READ_BUFFER + 65536];
  for (;;) {
    ssize_t n = read(dev, buf, sizeof buf);
    if (n < 0) { if (errno == EINTR || errno == ENOENT) continue; return NULL; }
    struct fuse_in_header *in = (struct fuse_in_header *)buf;
    void *body = buf + sizeof *in;
    switch (in->opcode) {
      case FUSE_INIT: {
        struct fuse_init_out o;
        memset(&o, 0, sizeof o);
        o.major = FUSE_KERNEL_VERSION;
        o.minor = FUSE_KERNEL_MINOR_VERSION;
        o.max_write = 4096;
        reply(in->unique, 0, &o, sizeof o);
        break;
      }
      case FUSE_LOOKUP: {
        if (strcmp((char *)body, "f") != 0) { reply(in->unique, -ENOENT, NULL, 0); break; }
        struct fuse_entry_out e;
        memset(&e, 0, sizeof e);
        e.nodeid = 2;
        attr(&e.attr, 2);
        reply(in->unique, 0, &e, sizeof e);
        break;
      }
      case FUSE_GETATTR: {
        struct fuse_attr_out a;
        memset(&a, 0, sizeof a);
        attr(&a.attr, in->nodeid);
        reply(in->unique, 0, &a, sizeof a);
        break;
      }
      case FUSE_OPEN: case FUSE_OPENDIR: {
        struct fuse_open_out o;
        memset(&o, 0, sizeof o);
        o.fh = 1;
        reply(in->unique, 0, &o, sizeof o);
        break;
      }
      case FUSE_FLUSH:
        if (tgid_of((int)in->pid) == holdpid) { printf("held %d\n", ++held); break; }  // never answered
        reply(in->unique, 0, NULL, 0);
        break;
      case FUSE_FORGET: case FUSE_BATCH_FORGET:
        break;
      case FUSE_RELEASE: case FUSE_RELEASEDIR:
        reply(in->unique, 0, NULL, 0);
        break;
      default:
        reply(in->unique, -ENOSYS, NULL, 0);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: fuse_hold DIR HOLDPID\n"); return 2; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  holdpid = atoi(argv[2]);
  dir = argv[1];
  signal(SIGTERM, on_term);
  signal(SIGHUP, on_term);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (dev < 0) { perror("/dev/fuse"); return 1; }
  char opts[128];
  snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", dev);
  if (mount("vge-hold", argv[1], "fuse.vge-hold", MS_NOSUID | MS_NODEV, opts) < 0) { perror("mount"); return 1; }
  pthread_t th;
  pthread_create(&th, NULL, serve, NULL);
  printf("mounted\n");
  char b[64];
  while (read(0, b, sizeof b) > 0) {}
  umount2(argv[1], MNT_DETACH);
  return 0;  // our /dev/fuse file is released with us: the connection is aborted, every held FLUSH fails
}
