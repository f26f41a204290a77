// client.c: helpers shared by the C clients; see include/emu_client.h.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"

int emu_open_device(const char *prog, const char *fallback) {
	const char *path = getenv("VIRTGPU_EMU_DEVICE");
	if (!path || !*path) path = fallback;
	if (!path) {
		fprintf(stderr, "%s: no device: set VIRTGPU_EMU_DEVICE (virtgpu-emu run does) or pass the render node path\n", prog);
		exit(2);
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", prog, path, strerror(errno));
		exit(2);
	}
	return fd;
}

const char *emu_uapi(void) {
	const char *u = getenv("VIRTGPU_EMU_UAPI");
	return u && *u ? u : "v1";
}

int emu_pin_mode(void) {
	const char *m = getenv("VIRTGPU_EMU_MODE");
	return m && strcmp(m, "pin") == 0;
}

int emu_proc_watch(void) {
	const char *w = getenv("VIRTGPU_EMU_WATCH");
	return w && strcmp(w, "proc") == 0;
}

int emu_ioctl(int fd, unsigned long req, void *arg) {
	int r = drmIoctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

int emu_getparam(int fd, uint64_t param, int *value) {
	struct drm_virtgpu_getparam gp = { .param = param, .value = (uint64_t)(uintptr_t)value };
	return emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
}

int emu_context_init_hsakmt(int fd) {
	struct virtgpu_emu_context_set_param p[] = {
		{ .param = VIRTGPU_CONTEXT_PARAM_CAPSET_ID, .value = VIRTIO_GPU_CAPSET_HSAKMT },
		{ .param = VIRTGPU_CONTEXT_PARAM_NUM_RINGS, .value = 1 },
	};
	struct virtgpu_emu_context_init ci = { .num_params = 2, .ctx_set_params = (uint64_t)(uintptr_t)p };
	return emu_ioctl(fd, VIRTGPU_EMU_IOCTL_CONTEXT_INIT, &ci);
}

int emu_v6_widen = 1;

int emu_create_userptr(int fd, const void *ptr, uint64_t size, uint32_t extra_flags, struct emu_bo *out) {
	static uint32_t next_blob_id = 1; /* the HSAKMT UMD passes a unique non-zero 32-bit blob_id */
	const char *u = emu_uapi();
	int rc;
	if (!strcmp(u, "v3") || !strcmp(u, "v4") || !strcmp(u, "v5")) {
		struct virtgpu_emu_create_blob_v3 c = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | extra_flags,
			.size = size, .blob_id = next_blob_id++, .userptr = (uint64_t)(uintptr_t)ptr };
		rc = emu_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_v3), &c);
		if (out) { out->handle = c.bo_handle; out->res = c.res_handle; out->offset = 0; }
		return rc;
	}
	if (!strcmp(u, "v6")) {
		uint64_t s = (uint64_t)(uintptr_t)ptr, e = s + size;
		if (emu_v6_widen && size && e > s) { s &= ~(EMU_PAGE - 1); e = (e + EMU_PAGE - 1) & ~(EMU_PAGE - 1); size = e - s; }
		struct virtgpu_emu_create_blob_v6 c = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = extra_flags & ~VIRTGPU_BLOB_FLAG_USERPTR_RDONLY,
			.size = size, .blob_id = next_blob_id++, .userptr = s,
			.blob_hints = VIRTGPU_EMU_BLOB_HINT_USERPTR | (extra_flags & VIRTGPU_BLOB_FLAG_USERPTR_RDONLY ? VIRTGPU_EMU_BLOB_HINT_USERPTR_RDONLY : 0) };
		rc = emu_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_v6), &c);
		if (out) { out->handle = c.bo_handle; out->res = c.res_handle; out->offset = 0; }
		return rc;
	}
	if (!strcmp(u, "libhsakmt-72")) {
		struct virtgpu_emu_create_blob_72 c = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | extra_flags,
			.size = size, .blob_id = next_blob_id++, .userptr = (uint64_t)(uintptr_t)ptr };
		rc = emu_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_72), &c);
		if (out) { out->handle = c.bo_handle; out->res = c.res_handle; out->offset = c.offset; }
		return rc;
	}
	struct virtgpu_emu_create_blob cb = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | extra_flags,
		.size = size,
		.blob_id = next_blob_id++,
		.userptr = (uint64_t)(uintptr_t)ptr,
	};
	rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
	if (out) { out->handle = cb.bo_handle; out->res = cb.res_handle; out->offset = cb.offset; }
	return rc;
}

int emu_gem_close(int fd, uint32_t handle) {
	struct drm_gem_close gc = { .handle = handle };
	return emu_ioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc);
}

int emu_resource_info(int fd, uint32_t handle, struct virtgpu_emu_resource_info *out) {
	struct virtgpu_emu_resource_info ri = { .bo_handle = handle };
	int rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_INFO, &ri);
	if (out) *out = ri;
	return rc;
}

const char *emu_rc_name(int rc) {
	static char bufs[4][48]; /* rotating, so one printf can name several results */
	static unsigned next;
	char *buf = bufs[next++ % 4];
	switch (rc) {
	case 0: return "0";
	case VIRTGPU_EMU_USERPTR_EXISTS: return "+3";
	case -EINVAL: return "EINVAL";
	case -ENOENT: return "ENOENT";
	case -ENOMEM: return "ENOMEM";
	case -EFAULT: return "EFAULT";
	case -EEXIST: return "EEXIST";
	case -ENOSYS: return "ENOSYS";
	case -EACCES: return "EACCES";
	case -ENOTTY: return "ENOTTY";
	case -EIO: return "EIO";
	case -EOPNOTSUPP: return "EOPNOTSUPP";
	case -EPERM: return "EPERM";
	case -ENODEV: return "ENODEV";
	case -ENOTCONN: return "ENOTCONN";
	case -E2BIG: return "E2BIG";
	case -ENOSPC: return "ENOSPC";
	case -EMFILE: return "EMFILE";
	case -ENFILE: return "ENFILE";
	case -EBADF: return "EBADF";
	}
	if (rc < 0) snprintf(buf, sizeof bufs[0], "errno %d (%s)", -rc, strerror(-rc));
	else snprintf(buf, sizeof bufs[0], "+%d", rc);
	return buf;
}

void *emu_map(size_t pages, int touch) {
	void *p = mmap(NULL, pages * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(2); }
	if (touch) memset(p, 0x5a, pages * EMU_PAGE);
	return p;
}
