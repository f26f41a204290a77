// cuse_rt: N× one ioctl on one device, for bench/transport-vm.ts (run inside the VM, built -static on the host).
// Prints one JSON line: {"mode":"raw:0x6400","n":N,"us_per_op":U,"rc":R,"errno":E} (rc/errno of the last call).
// Modes (the rows of the bench; CUSE round trips in brackets, unrestricted ioctls):
//   raw:CMD    ioctl(fd, CMD, buf) with a 256-byte zeroed buf; any result counts (e.g. /dev/null FIONREAD: ENOTTY,
//              the libfuse example's unknown cmd: EINVAL [1], our _IO('d',0) [1], the example's FIOC_GET_SIZE [2])
//   getcap     DRM_IOCTL_GET_CAP(DRM_CAP_SYNCOBJ): a 16-byte _IOWR answered 1 [2]
//   getparam   DRM_IOCTL_VIRTGPU_GETPARAM(VIRTGPU_PARAM_3D_FEATURES, value → int): embedded out pointer [3]
//   fioc-read  the libfuse example's FIOC_READ {offset 0, buf → 16 bytes}: embedded out pointer [3]
// Usage: cuse_rt [-n N (2000)] [-w WARMUP (200)] -m MODE DEVICE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/drm/virtgpu_drm.h: struct drm_virtgpu_getparam { __u64 param; __u64 value; } */
struct getparam { uint64_t param, value; };
#define DRM_IOCTL_VIRTGPU_GETPARAM _IOWR('d', 0x40 + 0x03, struct getparam)
#define VIRTGPU_PARAM_3D_FEATURES 1
/* include/uapi/drm/drm.h: struct drm_get_cap { __u64 capability; __u64 value; } */
struct get_cap { uint64_t capability, value; };
#define DRM_IOCTL_GET_CAP _IOWR('d', 0x0c, struct get_cap)
#define DRM_CAP_SYNCOBJ 0x13
/* libfuse example/ioctl.h: FIOC_READ = _IO('E', 2) with this argument (the command encodes no size). */
struct fioc_rw_arg { off_t offset; void *buf; size_t size; size_t prev_size; size_t new_size; };
#define FIOC_READ _IO('E', 2)

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	long n = 2000, warm = 200;
	const char *mode = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:w:m:")) != -1) {
		if (opt == 'n') n = strtol(optarg, NULL, 0);
		else if (opt == 'w') warm = strtol(optarg, NULL, 0);
		else if (opt == 'm') mode = optarg;
		else break;
	}
	if (!mode || optind != argc - 1) {
		fprintf(stderr, "usage: %s [-n N] [-w WARMUP] -m raw:CMD|getcap|getparam|fioc-read DEVICE\n", argv[0]);
		return 2;
	}
	int fd = open(argv[optind], O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0) { fprintf(stderr, "cuse_rt: open %s: %s\n", argv[optind], strerror(errno)); return 1; }

	static unsigned char raw[256];
	int value = 0;
	static char data[16];
	struct getparam gp = { VIRTGPU_PARAM_3D_FEATURES, (uint64_t)(uintptr_t)&value };
	struct get_cap gc = { DRM_CAP_SYNCOBJ, 0 };
	struct fioc_rw_arg rw = { .offset = 0, .buf = data, .size = sizeof data };
	unsigned long cmd;
	void *arg;
	if (strncmp(mode, "raw:", 4) == 0) { cmd = strtoul(mode + 4, NULL, 0); arg = raw; }
	else if (strcmp(mode, "getcap") == 0) { cmd = DRM_IOCTL_GET_CAP; arg = &gc; }
	else if (strcmp(mode, "getparam") == 0) { cmd = DRM_IOCTL_VIRTGPU_GETPARAM; arg = &gp; }
	else if (strcmp(mode, "fioc-read") == 0) { cmd = FIOC_READ; arg = &rw; }
	else { fprintf(stderr, "cuse_rt: unknown mode %s\n", mode); return 2; }

	int rc = 0, err = 0;
	for (long i = 0; i < warm; i++) rc = ioctl(fd, cmd, arg);
	double t0 = now_s();
	for (long i = 0; i < n; i++) rc = ioctl(fd, cmd, arg);
	double dt = now_s() - t0;
	err = rc < 0 ? errno : 0;
	printf("{\"mode\":\"%s\",\"n\":%ld,\"us_per_op\":%.3f,\"rc\":%d,\"errno\":%d}\n", mode, n, dt * 1e6 / (double)n, rc, err);
	close(fd);
	return 0;
}
