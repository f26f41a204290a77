// discover: finds the node as an unmodified libdrm client does (drmGetDevices2), opens it, asks libdrm about the
// fd (drmGetDevice2, drmGetDeviceNameFromFd2, drmGetNodeTypeFromFd), checks every stat variant says "character
// device 226:128", then does one GETPARAM through the fd. One TAP-like line per check; exit 0 when all pass.
// Run under `virtgpu-emu run` (the preload library's discovery.c supplies the facts); without it nothing is found.
// The node opened: $VIRTGPU_EMU_DEVICE when set (the FUSE/CUSE transports serve a file there), else the name
// drmGetDevices2 gave.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_GPU_PCI_DEVICE 0x1050  // 0x1040 + virtio device id 16 (GPU)
#define RENDER_NODE "/dev/dri/renderD128"

// Still exported by glibc 2.36 (binaries built against glibc < 2.33 call them), no longer declared.
int __xstat(int, const char *, struct stat *);
int __lxstat(int, const char *, struct stat *);
int __fxstat(int, int, struct stat *);
int __fxstatat(int, int, const char *, struct stat *, int);

static int n, failed;
static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *name, const char *fmt, ...) {
	char detail[256] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (!ok) failed++;
	printf("%s %d - %s: %s\n", ok ? "ok" : "not ok", ++n, name, detail);
}

/** Our virtio-gpu as libdrm describes it: PCI, 1af4:1050, with a render node named RENDER_NODE. */
static int is_ours(drmDevicePtr d, char *why, size_t len) {
	if (d->bustype != DRM_BUS_PCI) { snprintf(why, len, "bustype %d, not PCI", d->bustype); return 0; }
	if (!d->deviceinfo.pci) { snprintf(why, len, "no PCI device info"); return 0; }
	if (d->deviceinfo.pci->vendor_id != VIRTIO_PCI_VENDOR || d->deviceinfo.pci->device_id != VIRTIO_GPU_PCI_DEVICE) {
		snprintf(why, len, "PCI %04x:%04x", d->deviceinfo.pci->vendor_id, d->deviceinfo.pci->device_id);
		return 0;
	}
	if (!(d->available_nodes & (1 << DRM_NODE_RENDER)) || strcmp(d->nodes[DRM_NODE_RENDER], RENDER_NODE) != 0) {
		snprintf(why, len, "no render node %s (nodes 0x%x)", RENDER_NODE, d->available_nodes);
		return 0;
	}
	snprintf(why, len, "PCI %04x:%02x:%02x.%u %04x:%04x rev %02x, %s", d->businfo.pci->domain, d->businfo.pci->bus,
		 d->businfo.pci->dev, d->businfo.pci->func, d->deviceinfo.pci->vendor_id, d->deviceinfo.pci->device_id,
		 d->deviceinfo.pci->revision_id, d->nodes[DRM_NODE_RENDER]);
	return 1;
}

static void check_stat(const char *name, int r, const struct stat *st) {
	check(r == 0 && S_ISCHR(st->st_mode) && major(st->st_rdev) == 226 && minor(st->st_rdev) == 128, name,
	      "r=%d%s mode 0%o rdev %u:%u", r, r ? strerror(errno) : "", r ? 0 : st->st_mode, r ? 0 : major(st->st_rdev),
	      r ? 0 : minor(st->st_rdev));
}

int main(void) {
	char why[256];
	drmDevicePtr devs[8];
	int count = drmGetDevices2(0, NULL, 0);
	int got = count > 0 ? drmGetDevices2(0, devs, 8) : count;
	int ours = -1;
	for (int i = 0; i < got; i++) if (is_ours(devs[i], why, sizeof why)) ours = i;
	check(got == 1 && ours == 0, "drmGetDevices2", "%d device(s)%s%s", got, got > 0 ? "; last: " : "", got > 0 ? why : "");
	if (got > 0) drmFreeDevices(devs, got);
	if (ours < 0) {
		printf("1..%d\n", n);
		return 1;
	}

	const char *path = getenv("VIRTGPU_EMU_DEVICE");
	if (!path || !*path) path = RENDER_NODE;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	check(fd >= 0, "open", "%s: %s", path, fd >= 0 ? "ok" : strerror(errno));
	if (fd < 0) { printf("1..%d\n", n); return 1; }

	drmDevicePtr d = NULL;
	int r = drmGetDevice2(fd, DRM_DEVICE_GET_PCI_REVISION, &d);
	check(r == 0 && is_ours(d, why, sizeof why) && d->deviceinfo.pci->revision_id != 0xff, "drmGetDevice2", "r=%d %s", r, r == 0 ? why : "");
	if (d) drmFreeDevice(&d);
	char *name = drmGetDeviceNameFromFd2(fd);
	check(name && strcmp(name, RENDER_NODE) == 0, "drmGetDeviceNameFromFd2", "%s", name ? name : "(null)");
	free(name);
	int type = drmGetNodeTypeFromFd(fd);
	check(type == DRM_NODE_RENDER, "drmGetNodeTypeFromFd", "%d (render is %d)", type, DRM_NODE_RENDER);

	struct stat st;
	check_stat("stat-render-node", stat(RENDER_NODE, &st), &st);
	check_stat("stat-served-path", stat(path, &st), &st);
	check_stat("lstat", lstat(path, &st), &st);
	check_stat("fstat", fstat(fd, &st), &st);
	check_stat("fstatat", fstatat(AT_FDCWD, RENDER_NODE, &st, 0), &st);
	check_stat("fstatat-empty-path", fstatat(fd, "", &st, AT_EMPTY_PATH), &st);
	check_stat("__xstat", __xstat(1, path, &st), &st);
	check_stat("__lxstat", __lxstat(1, RENDER_NODE, &st), &st);
	check_stat("__fxstat", __fxstat(1, fd, &st), &st);
	check_stat("__fxstatat", __fxstatat(1, AT_FDCWD, path, &st, 0), &st);
	struct statx sx;
	r = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
	check(r == 0 && S_ISCHR(sx.stx_mode) && sx.stx_rdev_major == 226 && sx.stx_rdev_minor == 128, "statx",
	      "r=%d mode 0%o rdev %u:%u", r, sx.stx_mode, sx.stx_rdev_major, sx.stx_rdev_minor);

	// Everything else reaches the real functions unchanged.
	int pipefd[2];
	int pr = pipe(pipefd);
	struct stat root, fifo;
	char link[PATH_MAX], *real = realpath("/proc/self/exe", NULL);
	ssize_t ln = readlink("/proc/self/exe", link, sizeof link);
	FILE *f = fopen("/proc/self/status", "r");
	DIR *dir = opendir("/proc/self/fd");
	int entries = 0;
	while (dir && readdir(dir)) entries++;
	int is_dir = stat("/", &root) == 0 && S_ISDIR(root.st_mode);
	int is_fifo = pr == 0 && fstat(pipefd[0], &fifo) == 0 && S_ISFIFO(fifo.st_mode);
	check(is_dir && is_fifo && real && ln > 0 && f && dir && entries > 2, "others-untouched",
	      "stat / dir %d, pipe fifo %d, realpath %s, readlink %zd, fopen %s, readdir %d entries", is_dir, is_fifo,
	      real ? real : "(null)", ln, f ? "ok" : strerror(errno), entries);
	free(real);
	if (f) fclose(f);
	if (dir) closedir(dir);

	int value = -1;
	r = emu_getparam(fd, VIRTGPU_PARAM_RESOURCE_BLOB, &value);
	check(r == 0 && value == 1, "getparam", "RESOURCE_BLOB: %s, value %d", emu_rc_name(r), value);
	close(fd);
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
