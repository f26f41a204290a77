// layout_probe: one create_blob layout a program can be built with, sent the way such a program sends it, for
// `virtgpu-emu matrix` (cli/matrix.ts). Usage: layout_probe LAYOUT, LAYOUT one of
//   48           mainline up to 7.1: a plain blob
//   56-hints     mainline 7.2: blob_hints = DEFER_MAPPING @48
//   56-userptr   series v3-v5: USE_USERPTR, userptr @48
//   64-v1        series v1/v2: USE_USERPTR, userptr @48, offset @56
//   64-v6        series v6: blob_hints = HINT_USERPTR @48, userptr @56
//   72-userptr   newest libhsakmt: USE_USERPTR, userptr @48
//   72-svm       newest libhsakmt: USE_SVM, svm @56
//   getparam9    GETPARAM 9, as a 7.2 program asks for the blob alignment
// After CONTEXT_INIT(HSAKMT) it sends a GUEST blob and a HOST3D blob (MAPPABLE, blob_id 0x1234) of 4 pages, both
// with the layout's fields past byte 48 (the address: 4 touched pages of its own), and prints
//   addr 0x<address>      then      guest <result>      host3d <result>      (or: param9 <result> <value>)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "emu_client.h"

#define PAGES 4
#define NR_CREATE_BLOB (DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB)

static int send(int fd, const char *layout, uint32_t blob_mem, uint64_t a) {
	uint32_t host = blob_mem == VIRTGPU_BLOB_MEM_HOST3D;
	uint32_t flags = host ? VIRTGPU_BLOB_FLAG_USE_MAPPABLE : 0;
	uint64_t size = PAGES * EMU_PAGE, id = host ? 0x1234 : 0;
	if (!strcmp(layout, "48")) {
		struct virtgpu_emu_create_blob_48 c = { .blob_mem = blob_mem, .blob_flags = flags, .size = size, .blob_id = id };
		return emu_ioctl(fd, DRM_IOWR(NR_CREATE_BLOB, struct virtgpu_emu_create_blob_48), &c);
	}
	if (!strcmp(layout, "56-hints")) {
		struct virtgpu_emu_create_blob_hints c = { .blob_mem = blob_mem, .blob_flags = flags, .size = size, .blob_id = id,
			.blob_hints = VIRTGPU_EMU_BLOB_HINT_DEFER_MAPPING };
		return emu_ioctl(fd, DRM_IOWR(NR_CREATE_BLOB, struct virtgpu_emu_create_blob_hints), &c);
	}
	if (!strcmp(layout, "56-userptr")) {
		struct virtgpu_emu_create_blob_v3 c = { .blob_mem = blob_mem, .blob_flags = flags | VIRTGPU_BLOB_FLAG_USE_USERPTR, .size = size,
			.blob_id = id, .userptr = a };
		return emu_ioctl(fd, DRM_IOWR(NR_CREATE_BLOB, struct virtgpu_emu_create_blob_v3), &c);
	}
	if (!strcmp(layout, "64-v1")) {
		struct virtgpu_emu_create_blob c = { .blob_mem = blob_mem, .blob_flags = flags | VIRTGPU_BLOB_FLAG_USE_USERPTR, .size = size,
			.blob_id = id, .userptr = a };
		return emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &c);
	}
	if (!strcmp(layout, "64-v6")) {
		struct virtgpu_emu_create_blob_v6 c = { .blob_mem = blob_mem, .blob_flags = flags, .size = size, .blob_id = id,
			.blob_hints = VIRTGPU_EMU_BLOB_HINT_USERPTR, .userptr = a };
		return emu_ioctl(fd, DRM_IOWR(NR_CREATE_BLOB, struct virtgpu_emu_create_blob_v6), &c);
	}
	if (!strcmp(layout, "72-userptr") || !strcmp(layout, "72-svm")) {
		int svm = !strcmp(layout, "72-svm");
		struct virtgpu_emu_create_blob_72 c = { .blob_mem = blob_mem, .size = size, .blob_id = id,
			.blob_flags = flags | (svm ? VIRTGPU_EMU_BLOB_FLAG_USE_SVM : VIRTGPU_BLOB_FLAG_USE_USERPTR) };
		if (svm) c.svm = a; else c.userptr = a;
		return emu_ioctl(fd, DRM_IOWR(NR_CREATE_BLOB, struct virtgpu_emu_create_blob_72), &c);
	}
	return -ENOTTY;
}

int main(int argc, char **argv) {
	if (argc != 2) { fprintf(stderr, "usage: layout_probe LAYOUT\n"); return 2; }
	int fd = emu_open_device(argv[0], NULL);
	if (fd < 0) return 1;
	if (!strcmp(argv[1], "getparam9")) {
		int v = -1;
		int rc = emu_getparam(fd, 9, &v);
		printf("param9 %s %d\n", emu_rc_name(rc), rc == 0 ? v : 0);
		return 0;
	}
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { fprintf(stderr, "CONTEXT_INIT: %s\n", emu_rc_name(rc)); return 1; }
	char *m = mmap(NULL, PAGES * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 1; }
	memset(m, 1, PAGES * EMU_PAGE);
	uint64_t a = (uint64_t)(uintptr_t)m;
	printf("addr 0x%llx\n", (unsigned long long)a);
	rc = send(fd, argv[1], VIRTGPU_BLOB_MEM_GUEST, a);
	if (rc == -ENOTTY) { fprintf(stderr, "unknown layout %s\n", argv[1]); return 2; }
	printf("guest %s\n", emu_rc_name(rc));
	printf("host3d %s\n", emu_rc_name(send(fd, argv[1], VIRTGPU_BLOB_MEM_HOST3D, a)));
	return 0;
}
