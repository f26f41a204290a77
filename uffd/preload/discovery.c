// virtgpu-emu-preload.so, discovery.c: libdrm's device discovery (drmGetDevices2, drmGetDevice2,
// drmGetDeviceNameFromFd2, drmGetNodeTypeFromFd) finds the served node as a virtio-gpu render node 226:128 on PCI
// (vendor 0x1af4, device 0x1050), so an unmodified client finds it as on a guest with the virtio-gpu driver.
//
// What libdrm 2.4.114 reads (xf86drm.c): opendir/readdir of /dev/dri; stat of /dev/dri/<name> (S_IFCHR and its
// st_rdev); stat of /sys/dev/char/M:m/device/drm (a DRM device); readlink of .../device/subsystem (the bus: ".../pci");
// realpath of .../device (a last component "virtio*" would mean "go up to the PCI parent"); fopen of .../device/uevent
// (PCI_SLOT_NAME) and of .../device/{revision,vendor,device,subsystem_vendor,subsystem_device}; fopen of
// /sys/dev/char/M:m/uevent (DEVNAME); fstat of the fd. It reads .../device/config with open(2) only when a separate
// file is missing, which never happens here, so open(2) stays node.c's alone. Those paths are the table `facts`; the
// node's path is /dev/dri/renderD128 and $VIRTGPU_EMU_DEVICE (the server's node path, e.g. a FUSE file).
//
// Interposed, each calling the real function (dlsym RTLD_NEXT, resolved once) for everything else: the stat family
// glibc 2.36 exports on x86-64 (stat, lstat, fstat, fstatat, statx, their *64 aliases and the __xstat/__lxstat/
// __fxstat/__fxstatat(64) ones older binaries call; x86-64 has no *_time64 symbols and newfstatat is a syscall, not a
// symbol), fopen/fopen64, readlink/readlinkat, realpath/__realpath_chk, opendir/readdir/readdir64/rewinddir/closedir.
// errno is left alone on success. An fd is the node when node.c says so (vge_node_fd) or when its (st_dev, st_ino)
// are the served path's. Paths are compared as given (absolute, not normalised); a relative path is never faked. A
// NULL path reaches the real function (EFAULT): glibc declares these arguments nonnull, so binding.gyp builds with
// -fno-delete-null-pointer-checks.
#define _GNU_SOURCE
// node-gyp defines _FILE_OFFSET_BITS=64, which renames stat to stat64 in the headers; both names are defined here.
#undef _FILE_OFFSET_BITS
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

#define NODE_MAJOR 226
#define NODE_MINOR 128                   // render nodes are minors 128..191 (drm_minor type 2)
#define DEFAULT_NODE "/dev/dri/renderD128"
#define SYSFS_NODE "/sys/dev/char/226:128"
#define SYSFS_DEV SYSFS_NODE "/device"
#define SYSFS_FILE_SIZE 4096             // what sysfs reports for every attribute

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "x86-64: stat and stat64 are one layout");
_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "x86-64: dirent and dirent64 are one layout");

// ---- the facts: what a guest with virtio-gpu on PCI (QEMU's virtio-gpu-pci at 0000:00:02.0) shows ----

enum kind { K_DIR, K_FILE, K_LINK, K_NODE };
struct fact { const char *path; enum kind kind; const char *data; };  // file content or link target

static const struct fact facts[] = {
  {"/dev/dri", K_DIR, NULL},
  {DEFAULT_NODE, K_NODE, NULL},
  {SYSFS_NODE, K_DIR, NULL},
  {SYSFS_NODE "/uevent", K_FILE, "MAJOR=226\nMINOR=128\nDEVNAME=dri/renderD128\nDEVTYPE=drm_minor\n"},
  {SYSFS_NODE "/subsystem", K_LINK, "../../../../../../class/drm"},
  {SYSFS_NODE "/dev", K_FILE, "226:128\n"},
  {SYSFS_DEV, K_DIR, NULL},
  {SYSFS_DEV "/drm", K_DIR, NULL},
  {SYSFS_DEV "/drm/renderD128", K_DIR, NULL},
  {SYSFS_DEV "/subsystem", K_LINK, "../../../bus/pci"},
  {SYSFS_DEV "/driver", K_LINK, "../../../bus/pci/drivers/virtio-pci"},
  {SYSFS_DEV "/uevent", K_FILE, "DRIVER=virtio-pci\nPCI_CLASS=38000\nPCI_ID=1AF4:1050\nPCI_SUBSYS_ID=1AF4:1100\n"
                                "PCI_SLOT_NAME=0000:00:02.0\nMODALIAS=pci:v00001AF4d00001050sv00001AF4sd00001100bc03sc80i00\n"},
  {SYSFS_DEV "/vendor", K_FILE, "0x1af4\n"},
  {SYSFS_DEV "/device", K_FILE, "0x1050\n"},
  {SYSFS_DEV "/subsystem_vendor", K_FILE, "0x1af4\n"},
  {SYSFS_DEV "/subsystem_device", K_FILE, "0x1100\n"},
  {SYSFS_DEV "/revision", K_FILE, "0x01\n"},  // virtio 1.0 ("modern") devices have revision >= 1
  {SYSFS_DEV "/class", K_FILE, "0x038000\n"},
};
#define NFACTS (sizeof facts / sizeof facts[0])

// ---- the real functions: dlsym(RTLD_NEXT) once per symbol (racing threads store the same pointer) ----

static void *real_sym(void *_Atomic *slot, const char *name) {
  void *p = atomic_load_explicit(slot, memory_order_acquire);
  if (!p) {
    p = dlsym(RTLD_NEXT, name);
    atomic_store_explicit(slot, p, memory_order_release);
  }
  return p;
}
// Declares `fn`, the real `name` of type `type`; a symbol the C library lacks fails with ENOSYS.
#define REAL(type, name, fn, fail) \
  static void *_Atomic slot_; __typeof__(type) fn = (__typeof__(type))real_sym(&slot_, name); \
  if (!fn) { errno = ENOSYS; return fail; }

// ---- node.c's answers; weak fallbacks so that this file links alone (node.c's strong ones win) ----

__attribute__((weak)) int vge_node_fd(int fd) { (void)fd; return 0; }

static const char *served_path(void);
__attribute__((weak)) int vge_node_path(const char *p) {
  const char *s = served_path();
  return p && (strcmp(p, DEFAULT_NODE) == 0 || (*s && strcmp(p, s) == 0));
}

// ---- the served path and its identity (for fstat of fds opened on it) ----

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  // guards `dirs` and the identity's first read
static char served[PATH_MAX];
static pthread_once_t served_once = PTHREAD_ONCE_INIT;
static void served_init(void) {
  const char *e = getenv("VIRTGPU_EMU_DEVICE");
  if (e && e[0] == '/' && strlen(e) < sizeof served) strcpy(served, e);
}
static const char *served_path(void) { pthread_once(&served_once, served_init); return served; }

typedef int (*stat_fn)(const char *, struct stat *);

/** The served path's real stat, 0 on success (its file exists only for the FUSE and CUSE transports); errno kept. */
static int served_stat(struct stat *st) {
  const char *s = served_path();
  if (!*s) return -1;
  REAL(stat_fn, "stat", real_stat, -1);
  int saved = errno, r = real_stat(s, st);
  errno = saved;
  return r;
}

enum { ID_UNKNOWN, ID_KNOWN, ID_ABSENT };
static atomic_int id_state;
static dev_t id_dev;
static ino_t id_ino;
/**
 * 1 when (dev, ino) is the served path's file. Its identity is read once (the server makes the file before any
 * client starts; the preload transport has none): racing first readers store the same values under `lock`.
 */
static int served_id(dev_t dev, ino_t ino) {
  int s = atomic_load_explicit(&id_state, memory_order_acquire);
  if (s == ID_UNKNOWN) {
    struct stat st;
    int ok = served_stat(&st) == 0;
    pthread_mutex_lock(&lock);
    if (ok) { id_dev = st.st_dev; id_ino = st.st_ino; }
    s = ok ? ID_KNOWN : ID_ABSENT;
    atomic_store_explicit(&id_state, s, memory_order_release);
    pthread_mutex_unlock(&lock);
  }
  return s == ID_KNOWN && id_dev == dev && id_ino == ino;
}

// ---- stat: one filler for every variant ----

enum { NOT_OURS = -2 };  // the real function answers

/** The fact a path names; trailing slashes name a directory ("/dev/dri/" is "/dev/dri"). */
static const struct fact *fact_of(const char *p) {
  if (!p || (strncmp(p, "/dev/dri", 8) != 0 && strncmp(p, SYSFS_NODE, sizeof SYSFS_NODE - 1) != 0)) return NULL;
  size_t len = strlen(p), n = len;
  while (n > 1 && p[n - 1] == '/') n--;
  for (size_t i = 0; i < NFACTS; i++) {
    const struct fact *f = &facts[i];
    if (strncmp(p, f->path, n) == 0 && f->path[n] == '\0' && (n == len || f->kind == K_DIR)) return f;
  }
  return NULL;
}

static void as_node(struct stat *st) {
  st->st_mode = S_IFCHR | (st->st_mode & 07777);
  st->st_rdev = makedev(NODE_MAJOR, NODE_MINOR);
  st->st_size = 0;
  st->st_blocks = 0;
}

/** The node: the served file's stat (owner, mode bits, times) as a character device, else a root-owned 0666 one. */
static void node_stat(struct stat *st) {
  if (served_stat(st) != 0) {
    memset(st, 0, sizeof *st);
    st->st_mode = 0666;
    st->st_nlink = 1;
    st->st_blksize = SYSFS_FILE_SIZE;
  }
  as_node(st);
}

static void fact_stat(const struct fact *f, struct stat *st, int nofollow) {
  if (f->kind == K_NODE) { node_stat(st); return; }
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)(f - facts) + 1;
  st->st_blksize = SYSFS_FILE_SIZE;
  st->st_nlink = 1;
  if (f->kind == K_FILE) { st->st_mode = S_IFREG | 0444; st->st_size = SYSFS_FILE_SIZE; }
  else if (f->kind == K_LINK && nofollow) { st->st_mode = S_IFLNK | 0777; st->st_size = (off_t)strlen(f->data); }
  else { st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; }
}

/** stat/lstat of a path: 0 (filled) for the node and the facts, NOT_OURS otherwise. */
static int path_stat(const char *p, struct stat *st, int nofollow) {
  if (vge_node_path(p)) { node_stat(st); return 0; }
  const struct fact *f = fact_of(p);
  if (!f) return NOT_OURS;
  fact_stat(f, st, nofollow);
  return 0;
}

/** After a successful real fstat: the node's facts when fd is the node (node.c's connection, or the served file). */
static void fd_stat(int fd, struct stat *st) {
  if (vge_node_fd(fd)) node_stat(st);
  else if (served_id(st->st_dev, st->st_ino)) as_node(st);
}

/** fstatat semantics: "" with AT_EMPTY_PATH is dirfd itself; an absolute path is looked up; relative ones are not ours. */
static int at_stat(int dirfd, const char *p, struct stat *st, int flags) {
  if (p && p[0] == '\0' && (flags & AT_EMPTY_PATH) && dirfd != AT_FDCWD) {
    typedef int (*fstat_fn)(int, struct stat *);
    REAL(fstat_fn, "fstat", real_fstat, -1);
    if (real_fstat(dirfd, st) != 0) return NOT_OURS;
    fd_stat(dirfd, st);
    return 0;
  }
  if (p && p[0] == '/') return path_stat(p, st, flags & AT_SYMLINK_NOFOLLOW);
  return NOT_OURS;
}

// One body per calling convention, instantiated for each exported name (glibc's aliases are separate symbols).
#define PATH_STAT(name, st_t, nofollow) \
  VGE_EXPORT int name(const char *p, st_t *st) { \
    int r = path_stat(p, (struct stat *)st, nofollow); \
    if (r != NOT_OURS) return r; \
    REAL(int (*)(const char *, st_t *), #name, real, -1); \
    return real(p, st); \
  }
#define XPATH_STAT(name, st_t, nofollow) \
  VGE_EXPORT int name(int ver, const char *p, st_t *st) { \
    int r = path_stat(p, (struct stat *)st, nofollow); \
    if (r != NOT_OURS) return r; \
    REAL(int (*)(int, const char *, st_t *), #name, real, -1); \
    return real(ver, p, st); \
  }
#define FD_STAT(name, st_t) \
  VGE_EXPORT int name(int fd, st_t *st) { \
    REAL(int (*)(int, st_t *), #name, real, -1); \
    int r = real(fd, st); \
    if (r == 0) fd_stat(fd, (struct stat *)st); \
    return r; \
  }
#define XFD_STAT(name, st_t) \
  VGE_EXPORT int name(int ver, int fd, st_t *st) { \
    REAL(int (*)(int, int, st_t *), #name, real, -1); \
    int r = real(ver, fd, st); \
    if (r == 0) fd_stat(fd, (struct stat *)st); \
    return r; \
  }
#define AT_STAT(name, st_t) \
  VGE_EXPORT int name(int dirfd, const char *p, st_t *st, int flags) { \
    int r = at_stat(dirfd, p, (struct stat *)st, flags); \
    if (r != NOT_OURS) return r; \
    REAL(int (*)(int, const char *, st_t *, int), #name, real, -1); \
    return real(dirfd, p, st, flags); \
  }
#define XAT_STAT(name, st_t) \
  VGE_EXPORT int name(int ver, int dirfd, const char *p, st_t *st, int flags) { \
    int r = at_stat(dirfd, p, (struct stat *)st, flags); \
    if (r != NOT_OURS) return r; \
    REAL(int (*)(int, int, const char *, st_t *, int), #name, real, -1); \
    return real(ver, dirfd, p, st, flags); \
  }

// Not declared by glibc >= 2.33's headers, still exported (binaries built against older glibc call them).
int __xstat(int, const char *, struct stat *);
int __xstat64(int, const char *, struct stat64 *);
int __lxstat(int, const char *, struct stat *);
int __lxstat64(int, const char *, struct stat64 *);
int __fxstat(int, int, struct stat *);
int __fxstat64(int, int, struct stat64 *);
int __fxstatat(int, int, const char *, struct stat *, int);
int __fxstatat64(int, int, const char *, struct stat64 *, int);

// Each one under its own name and its *64 alias.
#define BOTH(M, name, ...) M(name, struct stat, ##__VA_ARGS__) M(name##64, struct stat64, ##__VA_ARGS__)
BOTH(PATH_STAT, stat, 0)
BOTH(PATH_STAT, lstat, 1)
BOTH(FD_STAT, fstat)
BOTH(AT_STAT, fstatat)
BOTH(XPATH_STAT, __xstat, 0)
BOTH(XPATH_STAT, __lxstat, 1)
BOTH(XFD_STAT, __fxstat)
BOTH(XAT_STAT, __fxstatat)

static void ts(struct statx_timestamp *t, struct timespec s) { t->tv_sec = s.tv_sec; t->tv_nsec = (__u32)s.tv_nsec; }

VGE_EXPORT int statx(int dirfd, const char *p, int flags, unsigned int mask, struct statx *sx) {
  struct stat st;
  int r = at_stat(dirfd, p, &st, flags);
  if (r == NOT_OURS) {
    REAL(int (*)(int, const char *, int, unsigned int, struct statx *), "statx", real, -1);
    return real(dirfd, p, flags, mask, sx);
  }
  if (r != 0) return r;
  memset(sx, 0, sizeof *sx);
  sx->stx_mask = STATX_BASIC_STATS;
  sx->stx_blksize = (__u32)st.st_blksize;
  sx->stx_nlink = (__u32)st.st_nlink;
  sx->stx_uid = st.st_uid;
  sx->stx_gid = st.st_gid;
  sx->stx_mode = (__u16)st.st_mode;
  sx->stx_ino = st.st_ino;
  sx->stx_size = (__u64)st.st_size;
  sx->stx_blocks = (__u64)st.st_blocks;
  ts(&sx->stx_atime, st.st_atim); ts(&sx->stx_mtime, st.st_mtim); ts(&sx->stx_ctime, st.st_ctim);
  sx->stx_rdev_major = major(st.st_rdev); sx->stx_rdev_minor = minor(st.st_rdev);
  sx->stx_dev_major = major(st.st_dev); sx->stx_dev_minor = minor(st.st_dev);
  return 0;
}

// ---- files, links, realpath ----

typedef FILE *(*fopen_fn)(const char *, const char *);
static FILE *fact_fopen(const char *p, const char *mode, fopen_fn real) {
  const struct fact *f = fact_of(p);
  if (!f || f->kind == K_NODE) return real(p, mode);
  if (f->kind == K_DIR) { errno = EISDIR; return NULL; }
  if (mode[0] != 'r' || strchr(mode, '+')) { errno = EACCES; return NULL; }  // sysfs attributes here are read-only
  const char *data = f->kind == K_FILE ? f->data : "";
  return fmemopen((void *)data, strlen(data), "r");
}
VGE_EXPORT FILE *fopen(const char *p, const char *mode) { REAL(fopen_fn, "fopen", real, NULL); return fact_fopen(p, mode, real); }
VGE_EXPORT FILE *fopen64(const char *p, const char *mode) { REAL(fopen_fn, "fopen64", real, NULL); return fact_fopen(p, mode, real); }

static ssize_t fact_readlink(const struct fact *f, char *buf, size_t n) {
  if (f->kind != K_LINK) { errno = EINVAL; return -1; }
  size_t len = strlen(f->data);
  if (len > n) len = n;
  memcpy(buf, f->data, len);
  return (ssize_t)len;
}
VGE_EXPORT ssize_t readlink(const char *p, char *buf, size_t n) {
  const struct fact *f = fact_of(p);
  if (f) return fact_readlink(f, buf, n);
  REAL(ssize_t (*)(const char *, char *, size_t), "readlink", real, -1);
  return real(p, buf, n);
}
VGE_EXPORT ssize_t readlinkat(int dirfd, const char *p, char *buf, size_t n) {
  const struct fact *f = fact_of(p);  // absolute paths only: the facts are
  if (f) return fact_readlink(f, buf, n);
  REAL(ssize_t (*)(int, const char *, char *, size_t), "readlinkat", real, -1);
  return real(dirfd, p, buf, n);
}

// The fake tree has no real directory behind it: its paths are their own canonical names (libdrm then reads the
// PCI facts under .../device itself, since its last component is not "virtio*").
static char *fact_realpath(const char *p, char *out) {
  if (strlen(p) >= PATH_MAX) { errno = ENAMETOOLONG; return NULL; }
  return out ? strcpy(out, p) : strdup(p);
}
VGE_EXPORT char *realpath(const char *p, char *out) {
  if (fact_of(p)) return fact_realpath(p, out);
  REAL(char *(*)(const char *, char *), "realpath", real, NULL);
  return real(p, out);
}
VGE_EXPORT char *__realpath_chk(const char *p, char *out, size_t outlen) {
  if (fact_of(p)) return fact_realpath(p, out);
  REAL(char *(*)(const char *, char *, size_t), "__realpath_chk", real, NULL);
  return real(p, out, outlen);
}

// ---- directories: a faked one lists the real entries (when it exists), then the facts under it ----

// Every faked DIR is a real one, so that dirfd/telldir and the like stay safe: the directory itself when it exists,
// else "/" whose entries are not listed.
struct fdir {
  struct fdir *next;
  DIR *real;            // what opendir returned
  int merge;            // list the real entries (the directory exists)
  int real_done;        // they have all been listed
  const struct fact *dir;
  size_t at;            // next fact to consider
  struct dirent64 ent;
};
static struct fdir *dirs;      // guarded by `lock`
static atomic_int ndirs;       // readdir of other directories skips the lock while no faked one is open

static const char *child_name(const struct fact *dir, const struct fact *f) {
  size_t n = strlen(dir->path);
  if (strncmp(f->path, dir->path, n) != 0 || f->path[n] != '/' || strchr(f->path + n + 1, '/')) return NULL;
  return f->path + n + 1;
}

VGE_EXPORT DIR *opendir(const char *p) {
  REAL(DIR *(*)(const char *), "opendir", real, NULL);
  const struct fact *f = fact_of(p);
  if (!f || f->kind != K_DIR) return real(p);
  struct fdir *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  int saved = errno;
  d->real = real(p);
  d->merge = d->real != NULL;
  if (!d->real) d->real = real("/");
  if (!d->real) { free(d); return NULL; }
  errno = saved;
  d->dir = f;
  pthread_mutex_lock(&lock);
  d->next = dirs; dirs = d;
  atomic_fetch_add(&ndirs, 1);
  pthread_mutex_unlock(&lock);
  return d->real;
}

/** The faked directory behind `dir`; `unlink` also takes it off the list. Caller holds `lock`. */
static struct fdir *fdir_of(DIR *dir, int unlink) {
  for (struct fdir **pp = &dirs; *pp; pp = &(*pp)->next) {
    if ((*pp)->real != dir) continue;
    struct fdir *d = *pp;
    if (unlink) { *pp = d->next; atomic_fetch_sub(&ndirs, 1); }
    return d;
  }
  return NULL;
}

/** With `lock` held: the faked directory behind `dir`, else NULL (no lock taken while none is open). */
static struct fdir *fdir_locked(DIR *dir, int unlink) {
  if (!atomic_load(&ndirs)) return NULL;
  pthread_mutex_lock(&lock);
  struct fdir *d = fdir_of(dir, unlink);
  if (!d) pthread_mutex_unlock(&lock);
  return d;
}

static int listed(const struct fdir *d, const char *name) {
  for (size_t i = 0; i < NFACTS; i++) { const char *c = child_name(d->dir, &facts[i]); if (c && strcmp(c, name) == 0) return 1; }
  return 0;
}

typedef struct dirent64 *(*readdir_fn)(DIR *);
static struct dirent64 *fdir_next(struct fdir *d, readdir_fn real) {
  for (struct dirent64 *e; d->merge && !d->real_done;) {
    if (!(e = real(d->real))) { d->real_done = 1; break; }
    if (!listed(d, e->d_name)) return e;  // the real entry of a faked name is shadowed
  }
  for (; d->at < NFACTS; d->at++) {
    const char *c = child_name(d->dir, &facts[d->at]);
    if (!c) continue;
    const struct fact *f = &facts[d->at++];
    memset(&d->ent, 0, sizeof d->ent);
    d->ent.d_ino = (ino64_t)(f - facts) + 1;
    d->ent.d_off = (off64_t)d->at;
    d->ent.d_reclen = sizeof d->ent;
    d->ent.d_type = f->kind == K_DIR ? DT_DIR : f->kind == K_FILE ? DT_REG : f->kind == K_LINK ? DT_LNK : DT_CHR;
    strcpy(d->ent.d_name, c);
    return &d->ent;
  }
  return NULL;
}

static struct dirent64 *any_readdir(DIR *dir, readdir_fn real) {
  struct fdir *d = fdir_locked(dir, 0);
  if (!d) return real(dir);
  struct dirent64 *e = fdir_next(d, real);
  pthread_mutex_unlock(&lock);
  return e;
}
VGE_EXPORT struct dirent *readdir(DIR *dir) { REAL(readdir_fn, "readdir", real, NULL); return (struct dirent *)any_readdir(dir, real); }
VGE_EXPORT struct dirent64 *readdir64(DIR *dir) { REAL(readdir_fn, "readdir64", real, NULL); return any_readdir(dir, real); }

VGE_EXPORT void rewinddir(DIR *dir) {
  static void *_Atomic slot_;
  void (*real)(DIR *) = (void (*)(DIR *))real_sym(&slot_, "rewinddir");
  if (!real) return;
  struct fdir *d = fdir_locked(dir, 0);
  if (d) {
    d->at = 0;
    d->real_done = 0;
    pthread_mutex_unlock(&lock);
  }
  real(dir);
}

VGE_EXPORT int closedir(DIR *dir) {
  REAL(int (*)(DIR *), "closedir", real, -1);
  struct fdir *d = fdir_locked(dir, 1);
  if (d) { pthread_mutex_unlock(&lock); free(d); }
  return real(dir);
}

// A fork while another thread holds `lock` must not leave the child's copy locked.
static void child_after_fork(void) { pthread_mutex_init(&lock, NULL); }
__attribute__((constructor)) static void discovery_init(void) { pthread_atfork(NULL, NULL, child_after_fork); }
