// limits: one client at the edges, each result checked against what the kernel would answer. TAP-like lines.
//   limits files N      open N files of the node in this process; each: CONTEXT_INIT → 0, GETPARAM → 0; the client's
//                       own RLIMIT_NOFILE then makes the next open EMFILE (the kernel's limit, the server untouched);
//                       every file closed.
//   limits userptrs N   N one-page userptrs, each its own VMA (guard pages between): every create 0 with a distinct
//                       handle and resource; one more create inside each → +3 with its handle; RESOURCE_INFO of each
//                       → 0; one munmap of the whole range → every BO deleted (RESOURCE_INFO ENOENT).
//   limits big          the sizes the kernel refuses: a userptr of 2^28 pages → ENOMEM (kvmalloc of the page array,
//                       before memory is looked at), size 0 → EINVAL, a range past the user address space or
//                       wrapping u64 → EFAULT, a range with a hole or PROT_NONE → ENOMEM, a read-only mapping without
//                       USERPTR_RDONLY → ENOMEM and with it → 0; EXECBUFFER with size or bo handles above INT_MAX
//                       bytes → ENOMEM.
// Each client owns its memory (one reservation, never unmapped except the range a check munmaps on purpose).
// Usage: limits files|userptrs|big [N] [DEVICE via $VIRTGPU_EMU_DEVICE]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "emu_client.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int n_test, n_fail;

static void result(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void result(int ok, const char *name, const char *fmt, ...) {
	va_list ap;
	n_test++;
	if (!ok) n_fail++;
	printf("%s %d - %s", ok ? "ok" : "not ok", n_test, name);
	if (fmt && *fmt) {
		printf(": ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
}

static int open_node(void) {
	const char *path = getenv("VIRTGPU_EMU_DEVICE");
	if (!path || !*path) { fprintf(stderr, "limits: set VIRTGPU_EMU_DEVICE\n"); exit(2); }
	int fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int files(int n) {
	int *fds = calloc((size_t)n, sizeof *fds);
	int opened = 0, bad_init = 0, bad_param = 0, first_err = 0;
	for (int i = 0; i < n; i++) {
		int fd = open_node();
		if (fd < 0) { first_err = fd; break; }
		fds[opened++] = fd;
		if (emu_context_init_hsakmt(fd) != 0) bad_init++;
		int v = -1;
		if (emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v) != 0 || v != 1) bad_param++;
	}
	result(opened == n && !bad_init && !bad_param, "files_open", "%d of %d opened (first error %s), CONTEXT_INIT failed on %d, GETPARAM on %d",
	       opened, n, first_err ? emu_rc_name(first_err) : "none", bad_init, bad_param);
	/* The client's own fd limit: the kernel refuses the open before it reaches the server. */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free fd + 1 is the limit that makes the next open fail */
	struct rlimit lim = { .rlim_cur = (rlim_t)probe, .rlim_max = rl.rlim_max };
	close(probe);
	setrlimit(RLIMIT_NOFILE, &lim);
	int over = open_node();
	result(over == -EMFILE, "files_emfile", "open past RLIMIT_NOFILE returned %s, want EMFILE", emu_rc_name(over < 0 ? over : 0));
	if (over >= 0) close(over);
	setrlimit(RLIMIT_NOFILE, &rl);
	int bad_close = 0;
	for (int i = 0; i < opened; i++) if (close(fds[i]) != 0) bad_close++;
	result(!bad_close, "files_close", "%d closes failed", bad_close);
	free(fds);
	return 0;
}

static int userptrs(int n) {
	int fd = open_node();
	if (fd < 0) { result(0, "userptrs_open", "%s", emu_rc_name(fd)); return 1; }
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { result(0, "userptrs_context_init", "%s", emu_rc_name(rc)); return 1; }
	size_t len = (size_t)n * 2 * EMU_PAGE;
	char *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) { perror("limits: reservation"); return 2; }
	struct emu_bo *bos = calloc((size_t)n, sizeof *bos);
	int bad_create = 0, dup = 0, first_bad = 0;
	for (int i = 0; i < n; i++) {
		char *p = base + (size_t)i * 2 * EMU_PAGE; /* page i RW, the next one stays PROT_NONE: one VMA per userptr */
		if (mmap(p, EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) { perror("limits: mmap"); return 2; }
		p[0] = (char)i;
		rc = emu_create_userptr(fd, p, EMU_PAGE, 0, &bos[i]);
		if (rc != 0) { if (!bad_create++) first_bad = rc; continue; }
		if (i && (bos[i].handle == bos[i - 1].handle || bos[i].res <= bos[i - 1].res)) dup++;
	}
	result(!bad_create && !dup, "userptrs_create", "%d userptrs: %d creates failed (first %s), %d handles/resources not distinct",
	       n, bad_create, emu_rc_name(first_bad), dup);
	int bad_dedup = 0, bad_info = 0;
	for (int i = 0; i < n; i++) {
		struct emu_bo d;
		rc = emu_create_userptr(fd, base + (size_t)i * 2 * EMU_PAGE + 16, 32, 0, &d);
		if (rc != VIRTGPU_EMU_USERPTR_EXISTS || d.handle != bos[i].handle || d.offset != 0) bad_dedup++;
		if (emu_resource_info(fd, bos[i].handle, NULL) != 0) bad_info++;
	}
	result(!bad_dedup && !bad_info, "userptrs_live", "%d dedups not +3 with the BO's handle, %d RESOURCE_INFO not 0", bad_dedup, bad_info);
	/* One munmap over every userptr (this process's own reservation, never used again). */
	if (munmap(base, len) != 0) { perror("limits: munmap"); return 2; }
	int alive = 0;
	for (int i = 0; i < n; i++) if (emu_resource_info(fd, bos[i].handle, NULL) != -ENOENT) alive++;
	result(!alive, "userptrs_munmap", "%d of %d BOs still answer RESOURCE_INFO after the munmap of their range (want ENOENT)", alive, n);
	close(fd);
	free(bos);
	return 0;
}

static void expect(int got, int want, const char *name, const char *what) {
	result(got == want, name, "%s returned %s, want %s", what, emu_rc_name(got), emu_rc_name(want));
}

static int create_raw(int fd, uint64_t ptr, uint64_t size, uint32_t extra) {
	struct virtgpu_emu_create_blob cb = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | extra,
		.size = size, .blob_id = 1, .userptr = ptr,
	};
	return emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
}

static int big(void) {
	int fd = open_node();
	if (fd < 0) { result(0, "big_open", "%s", emu_rc_name(fd)); return 1; }
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { result(0, "big_context_init", "%s", emu_rc_name(rc)); return 1; }
	/* 8 pages: RW, RW, hole-to-be, PROT_NONE, RO, RO, RW, RW — in one reservation. */
	/* Low in the address space (16 TiB), so that 1 TiB from there is still user space: the size check, not access_ok. */
	char *m = mmap((void *)(16ULL << 40), 8 * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED) m = mmap(NULL, 8 * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) { perror("limits: mmap"); return 2; }
	memset(m, 1, 8 * EMU_PAGE);
	mprotect(m + 3 * EMU_PAGE, EMU_PAGE, PROT_NONE);
	mprotect(m + 4 * EMU_PAGE, 2 * EMU_PAGE, PROT_READ);
	uint64_t at = (uint64_t)(uintptr_t)m;
	expect(create_raw(fd, at, (1ULL << 28) * EMU_PAGE, 0), -ENOMEM, "big_2pow28_pages", "CREATE_BLOB userptr of 2^28 pages (1 TiB)");
	expect(create_raw(fd, at, ((1ULL << 28) - 1) * EMU_PAGE, 0), -ENOMEM, "big_unmapped_tail", "CREATE_BLOB userptr of 2^28 - 1 pages, mostly unmapped");
	expect(create_raw(fd, at, 0, 0), -EINVAL, "big_size_zero", "CREATE_BLOB userptr of size 0");
	expect(create_raw(fd, 0x7ffffffff000ULL, 2 * EMU_PAGE, 0), -EFAULT, "big_past_user_space", "CREATE_BLOB userptr ending past the user address space");
	expect(create_raw(fd, ~0ULL - EMU_PAGE + 1, 2 * EMU_PAGE, 0), -EFAULT, "big_wraps", "CREATE_BLOB userptr whose end wraps u64");
	expect(create_raw(fd, at + 2 * EMU_PAGE, 2 * EMU_PAGE, 0), -ENOMEM, "big_prot_none", "CREATE_BLOB userptr over a PROT_NONE page");
	expect(create_raw(fd, at + 4 * EMU_PAGE, 2 * EMU_PAGE, 0), -ENOMEM, "big_readonly_writable", "CREATE_BLOB writable userptr over read-only pages");
	expect(create_raw(fd, at + 4 * EMU_PAGE, 2 * EMU_PAGE, VIRTGPU_BLOB_FLAG_USERPTR_RDONLY), 0, "big_readonly_rdonly", "CREATE_BLOB USERPTR_RDONLY over read-only pages");
	struct virtgpu_emu_execbuffer eb = { .size = 0x80000000u, .command = at, .fence_fd = -1 };
	expect(emu_ioctl(fd, VIRTGPU_EMU_IOCTL_EXECBUFFER, &eb), -ENOMEM, "big_execbuffer_size", "EXECBUFFER of 2 GiB");
	struct virtgpu_emu_execbuffer eh = { .size = 8, .command = at, .bo_handles = at, .num_bo_handles = 0x20000000u, .fence_fd = -1 };
	expect(emu_ioctl(fd, VIRTGPU_EMU_IOCTL_EXECBUFFER, &eh), -ENOMEM, "big_execbuffer_handles", "EXECBUFFER with 2^29 bo handles");
	/* A hole: the last check, in a range this process owns and never uses again. */
	munmap(m + 2 * EMU_PAGE, EMU_PAGE);
	expect(create_raw(fd, at, 3 * EMU_PAGE, 0), -ENOMEM, "big_hole", "CREATE_BLOB userptr over a hole");
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) { fprintf(stderr, "usage: %s files|userptrs|big [N]\n", argv[0]); return 2; }
	int n = argc > 2 ? atoi(argv[2]) : 0;
	int r;
	if (!strcmp(argv[1], "files")) r = files(n > 0 ? n : 256);
	else if (!strcmp(argv[1], "userptrs")) r = userptrs(n > 0 ? n : 1000);
	else if (!strcmp(argv[1], "big")) r = big();
	else { fprintf(stderr, "limits: unknown check %s\n", argv[1]); return 2; }
	printf("1..%d\n", n_test);
	return r ? r : n_fail ? 1 : 0;
}
