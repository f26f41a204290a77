// ioctl_bench: N× one ioctl against the render node, for bench/transport. Prints one JSON line per op:
//   {"op":"getparam","n":100000,"us_per_op":27.12,"total_s":2.712}
// Ops: getparam (3D_FEATURES), version (DRM_IOCTL_VERSION with zero lengths: a no-op round trip),
//      create (CREATE_BLOB userptr + GEM_CLOSE: two ioctls per op), dedup (CREATE_BLOB inside an existing userptr, +3),
//      devnull (FIONREAD on /dev/null: the plain-syscall baseline; needs no device),
//      unmap (map a page, CREATE_BLOB userptr over it, munmap it: the server deletes the BO on the uffd event; then
//      200 µs idle, so the serving loop's wake-up handles the event rather than the next ioctl).
// Scale (bench/scale): -l L keeps L live 1-page userptrs for the whole run (one mapping of L pages; with -s each in
// a mapping of its own, PROT_NONE pages between so no two merge: L+1 VMAs), -c C runs C create+close cycles before
// the timed ops (server uptime). Setup time is printed as "setup_s".
// Usage: ioctl_bench [-n N (100000)] [-w WARMUP (1000)] [-o OP[,OP...] (getparam)] [-b (add devnull)]
//                    [-l LIVE] [-s] [-c CYCLES] [DEVICE]
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

static int fd = -1;
static char *mem;         /* 4 pages for create/dedup */
static uint32_t dedup_handle;

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int op_getparam(void) {
	int v;
	return emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v);
}
static int op_version(void) {
	struct drm_version v = { 0 }; /* zero lengths: nothing copied out but the lengths */
	return emu_ioctl(fd, DRM_IOCTL_VERSION, &v);
}
static int op_create(void) {
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, mem, 4 * EMU_PAGE, 0, &bo);
	if (rc != 0) return rc < 0 ? rc : -EEXIST; /* +3 would mean the previous GEM_CLOSE did not free it */
	return emu_gem_close(fd, bo.handle);
}
static int op_dedup(void) {
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, mem + 0x100, 0x100, 0, &bo);
	return rc == VIRTGPU_EMU_USERPTR_EXISTS ? 0 : (rc < 0 ? rc : -EINVAL);
}
static char *unmap_at;    /* one page inside a PROT_NONE reservation: mapped again before each unmap op */
static int op_unmap(void) {
	if (mmap(unmap_at, EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != unmap_at) return -errno;
	unmap_at[0] = 1;
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, unmap_at, EMU_PAGE, 0, &bo);
	if (rc != 0) return rc < 0 ? rc : -EEXIST;
	if (munmap(unmap_at, EMU_PAGE) != 0) return -errno;
	usleep(200);
	return 0;
}
static int devnull_fd = -1;
static int op_devnull(void) {
	int n;
	return ioctl(devnull_fd, FIONREAD, &n) < 0 && errno != ENOTTY && errno != EINVAL ? -errno : 0;
}

static const struct { const char *name; int (*fn)(void); int needs_device; } ops[] = {
	{ "getparam", op_getparam, 1 }, { "version", op_version, 1 }, { "create", op_create, 1 },
	{ "dedup", op_dedup, 1 }, { "devnull", op_devnull, 0 }, { "unmap", op_unmap, 1 },
};
#define NOPS (sizeof ops / sizeof ops[0])

int main(int argc, char **argv) {
	long n = 100000, warmup = 1000;
	char list[256] = "getparam";
	long live = 0, cycles = 0;
	int baseline = 0, spread = 0, opt;
	while ((opt = getopt(argc, argv, "n:w:o:bl:sc:")) != -1) {
		if (opt == 'l') { live = strtol(optarg, NULL, 0); continue; }
		if (opt == 's') { spread = 1; continue; }
		if (opt == 'c') { cycles = strtol(optarg, NULL, 0); continue; }
		if (opt == 'n') n = strtol(optarg, NULL, 0);
		else if (opt == 'w') warmup = strtol(optarg, NULL, 0);
		else if (opt == 'o') snprintf(list, sizeof list, "%s", optarg);
		else if (opt == 'b') baseline = 1;
		else { fprintf(stderr, "usage: %s [-n N] [-w WARMUP] [-o getparam,version,create,dedup,devnull,unmap] [-b] [-l LIVE] [-s] [-c CYCLES] [DEVICE]\n", argv[0]); return 2; }
	}
	if (baseline) strncat(list, ",devnull", sizeof list - strlen(list) - 1);
	int want[NOPS] = { 0 }, need_device = 0;
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < NOPS && strcmp(ops[i].name, tok) != 0) i++;
		if (i == NOPS) { fprintf(stderr, "ioctl_bench: unknown op '%s' (getparam, version, create, dedup, devnull, unmap)\n", tok); return 2; }
		want[i] = 1;
		need_device |= ops[i].needs_device;
	}
	if (need_device) {
		fd = emu_open_device("ioctl_bench", optind < argc ? argv[optind] : NULL);
		int rc = emu_context_init_hsakmt(fd);
		if (rc != 0) { fprintf(stderr, "ioctl_bench: CONTEXT_INIT returned %s\n", emu_rc_name(rc)); return 1; }
		mem = emu_map(4, 1);
		unmap_at = mmap(NULL, 3 * EMU_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (unmap_at == MAP_FAILED) { perror("ioctl_bench: mmap"); return 1; }
		unmap_at += EMU_PAGE;
		struct emu_bo bo;
		if (want[3]) { /* the dedup target stays for the whole run */
			rc = emu_create_userptr(fd, mem, 4 * EMU_PAGE, 0, &bo);
			if (rc != 0) { fprintf(stderr, "ioctl_bench: create for dedup returned %s\n", emu_rc_name(rc)); return 1; }
			dedup_handle = bo.handle;
			if (want[2]) { fprintf(stderr, "ioctl_bench: create and dedup use the same memory: run them separately\n"); return 2; }
		}
		double s0 = now_s();
		if (live > 0) {
			/* spread: page 2k of the area is userptr k, page 2k+1 stays PROT_NONE (a VMA of its own between). */
			size_t stride = spread ? 2 : 1;
			char *area = mmap(NULL, (size_t)live * stride * EMU_PAGE, spread ? PROT_NONE : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (area == MAP_FAILED) { perror("ioctl_bench: mmap"); return 1; }
			for (long k = 0; k < live; k++) {
				char *p = area + (size_t)k * stride * EMU_PAGE;
				if (spread && mprotect(p, EMU_PAGE, PROT_READ | PROT_WRITE) != 0) { perror("ioctl_bench: mprotect"); return 1; }
				p[0] = 1;
				rc = emu_create_userptr(fd, p, EMU_PAGE, 0, &bo);
				if (rc != 0) { fprintf(stderr, "ioctl_bench: live userptr %ld returned %s\n", k, emu_rc_name(rc)); return 1; }
			}
		}
		for (long k = 0; k < cycles; k++) {
			rc = op_create();
			if (rc < 0) { fprintf(stderr, "ioctl_bench: cycle %ld failed: %s\n", k, emu_rc_name(rc)); return 1; }
		}
		if (live > 0 || cycles > 0) { printf("{\"setup_s\":%.3f,\"live\":%ld,\"spread\":%d,\"cycles\":%ld}\n", now_s() - s0, live, spread, cycles); fflush(stdout); }
	}
	devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < NOPS; i++) {
		if (!want[i]) continue;
		for (long k = 0; k < warmup; k++) {
			int rc = ops[i].fn();
			if (rc < 0) { fprintf(stderr, "ioctl_bench: %s failed in warmup: %s\n", ops[i].name, emu_rc_name(rc)); return 1; }
		}
		double t0 = now_s();
		for (long k = 0; k < n; k++) {
			int rc = ops[i].fn();
			if (rc < 0) { fprintf(stderr, "ioctl_bench: %s failed at %ld: %s\n", ops[i].name, k, emu_rc_name(rc)); return 1; }
		}
		double dt = now_s() - t0;
		printf("{\"op\":\"%s\",\"n\":%ld,\"us_per_op\":%.3f,\"total_s\":%.6f}\n", ops[i].name, n, dt * 1e6 / (double)n, dt);
		fflush(stdout);
	}
	if (dedup_handle) emu_gem_close(fd, dedup_handle);
	if (fd >= 0) close(fd);
	return 0;
}
