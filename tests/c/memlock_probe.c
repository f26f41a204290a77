// memlock_probe: userptr creates in the v6 struct (blob_hints = HINT_USERPTR, userptr @56) against a node served
// with --uapi v6, to see the memory-lock rules from a real process whose RLIMIT_MEMLOCK and CAP_IPC_LOCK its
// caller set (setpriv / ulimit). Each argument is one step, and prints one line "<step> <result>":
//   cN  create a userptr over N fresh pages        xI  GEM_CLOSE the I-th successful create (0-based)
//   E   create 2^31 pages at a low address (more than INT_MAX pages: E2BIG once locking is allowed)
// Exit status 0 unless the device cannot be opened or a step is malformed.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "emu_client.h"

static int create_v6(int fd, uint64_t addr, uint64_t size, uint32_t *handle) {
	struct virtgpu_emu_create_blob_v6 cb = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .size = size, .blob_id = 0x1234,
		.blob_hints = VIRTGPU_EMU_BLOB_HINT_USERPTR, .userptr = addr,
	};
	int rc = emu_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_v6), &cb);
	*handle = cb.bo_handle;
	return rc;
}

int main(int argc, char **argv) {
	int fd = emu_open_device(argv[0], NULL);
	if (fd < 0) return 1;
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { fprintf(stderr, "CONTEXT_INIT: %s\n", emu_rc_name(rc)); return 1; }
	uint32_t handles[64];
	int n = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint32_t h = 0;
		if (a[0] == 'c') {
			long pages = strtol(a + 1, NULL, 10);
			void *m = mmap(NULL, pages * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) { fprintf(stderr, "mmap: %s\n", strerror(errno)); return 1; }
			rc = create_v6(fd, (uint64_t)(uintptr_t)m, (uint64_t)pages * EMU_PAGE, &h);
			if (rc == 0 && n < 64) handles[n++] = h;
		} else if (a[0] == 'x') {
			long k = strtol(a + 1, NULL, 10);
			if (k < 0 || k >= n) { fprintf(stderr, "no create %ld\n", k); return 1; }
			rc = emu_gem_close(fd, handles[k]);
		} else if (a[0] == 'E') {
			rc = create_v6(fd, 0x10000000ULL, (1ULL << 31) * EMU_PAGE, &h);
		} else {
			fprintf(stderr, "unknown step %s\n", a);
			return 1;
		}
		printf("%s %s\n", a, emu_rc_name(rc));
		fflush(stdout);
	}
	return 0;
}
