/*
 * virtgpu_userptr.h: the uAPI of virtgpu-emu's render node that libdrm 2.4.114's virtgpu_drm.h lacks:
 * blob resources with the userptr series' v1 layout (64 bytes, + userptr + offset), context init, the modern
 * 64-byte execbuffer, the 44-byte transfer, RESOURCE_INFO's blob_mem, params and capset ids incl. HSAKMT.
 * Written from the userptr semantics, docs/semantics.md §2 (x86-64, little endian).
 *
 * Coexists with any libdrm: it includes libdrm's virtgpu_drm.h first, defines kernel-named constants only
 * #ifndef, and gives every struct whose layout differs between revisions a distinct name (struct virtgpu_emu_*)
 * and its own ioctl macro (VIRTGPU_EMU_IOCTL_*), so a newer libdrm's 48-byte create_blob or 32-byte execbuffer
 * can never be paired with the 64-byte struct by accident. The kernel dispatches by nr and _IOC_SIZE, so both
 * sizes reach the same ioctl.
 */
#ifndef VIRTGPU_EMU_USERPTR_H
#define VIRTGPU_EMU_USERPTR_H

#include <stddef.h>
#include <drm.h>
#include <virtgpu_drm.h>

/* Driver ioctl nrs (added after libdrm 2.4.114's header). */
#ifndef DRM_VIRTGPU_RESOURCE_CREATE_BLOB
#define DRM_VIRTGPU_RESOURCE_CREATE_BLOB 0x0a
#endif
#ifndef DRM_VIRTGPU_CONTEXT_INIT
#define DRM_VIRTGPU_CONTEXT_INIT 0x0b
#endif

/* GETPARAM params; GETPARAM writes a 4-byte int at `value`. */
#ifndef VIRTGPU_PARAM_3D_FEATURES
#define VIRTGPU_PARAM_3D_FEATURES 1
#endif
#ifndef VIRTGPU_PARAM_CAPSET_QUERY_FIX
#define VIRTGPU_PARAM_CAPSET_QUERY_FIX 2
#endif
#ifndef VIRTGPU_PARAM_RESOURCE_BLOB
#define VIRTGPU_PARAM_RESOURCE_BLOB 3
#endif
#ifndef VIRTGPU_PARAM_HOST_VISIBLE
#define VIRTGPU_PARAM_HOST_VISIBLE 4
#endif
#ifndef VIRTGPU_PARAM_CROSS_DEVICE
#define VIRTGPU_PARAM_CROSS_DEVICE 5
#endif
#ifndef VIRTGPU_PARAM_CONTEXT_INIT
#define VIRTGPU_PARAM_CONTEXT_INIT 6
#endif
#ifndef VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs
#define VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs 7 /* bitmask of 1 << capset id */
#endif
#ifndef VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME
#define VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME 8
#endif
#ifndef VIRTGPU_PARAM_RESOURCE_USERPTR
#define VIRTGPU_PARAM_RESOURCE_USERPTR 9 /* later revisions of the series */
#endif

/* Capset ids (virtio_gpu.h). HSAKMT is 8; one early revision used 7, which is taken. */
#ifndef VIRTIO_GPU_CAPSET_VIRGL
#define VIRTIO_GPU_CAPSET_VIRGL 1
#endif
#ifndef VIRTIO_GPU_CAPSET_VIRGL2
#define VIRTIO_GPU_CAPSET_VIRGL2 2
#endif
#ifndef VIRTIO_GPU_CAPSET_VENUS
#define VIRTIO_GPU_CAPSET_VENUS 4
#endif
#ifndef VIRTIO_GPU_CAPSET_CROSS_DOMAIN
#define VIRTIO_GPU_CAPSET_CROSS_DOMAIN 5
#endif
#ifndef VIRTIO_GPU_CAPSET_DRM
#define VIRTIO_GPU_CAPSET_DRM 6
#endif
#ifndef VIRTIO_GPU_CAPSET_HSAKMT
#define VIRTIO_GPU_CAPSET_HSAKMT 8
#endif

/* Blob memory types and flags. */
#ifndef VIRTGPU_BLOB_MEM_GUEST
#define VIRTGPU_BLOB_MEM_GUEST 0x0001
#endif
#ifndef VIRTGPU_BLOB_MEM_HOST3D
#define VIRTGPU_BLOB_MEM_HOST3D 0x0002
#endif
#ifndef VIRTGPU_BLOB_MEM_HOST3D_GUEST
#define VIRTGPU_BLOB_MEM_HOST3D_GUEST 0x0003
#endif
#ifndef VIRTGPU_BLOB_FLAG_USE_MAPPABLE
#define VIRTGPU_BLOB_FLAG_USE_MAPPABLE 0x0001
#endif
#ifndef VIRTGPU_BLOB_FLAG_USE_SHAREABLE
#define VIRTGPU_BLOB_FLAG_USE_SHAREABLE 0x0002
#endif
#ifndef VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE
#define VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE 0x0004
#endif
#ifndef VIRTGPU_BLOB_FLAG_USE_USERPTR
#define VIRTGPU_BLOB_FLAG_USE_USERPTR 0x0008 /* userptr series */
#endif
#ifndef VIRTGPU_BLOB_FLAG_USERPTR_RDONLY
#define VIRTGPU_BLOB_FLAG_USERPTR_RDONLY 0x0010 /* userptr series: pin read-only */
#endif

/* Context init params. */
#ifndef VIRTGPU_CONTEXT_PARAM_CAPSET_ID
#define VIRTGPU_CONTEXT_PARAM_CAPSET_ID 0x0001
#endif
#ifndef VIRTGPU_CONTEXT_PARAM_NUM_RINGS
#define VIRTGPU_CONTEXT_PARAM_NUM_RINGS 0x0002
#endif
#ifndef VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK
#define VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK 0x0003
#endif
#ifndef VIRTGPU_CONTEXT_PARAM_DEBUG_NAME
#define VIRTGPU_CONTEXT_PARAM_DEBUG_NAME 0x0004
#endif

/* Execbuffer flags (RING_IDX is newer than libdrm 2.4.114). */
#ifndef VIRTGPU_EXECBUF_RING_IDX
#define VIRTGPU_EXECBUF_RING_IDX 0x04
#endif

/* The dedup result of the v1 create: the ioctl returns +3 ("already exists") with the existing handles + offset. */
#define VIRTGPU_EMU_USERPTR_EXISTS 3
/* End of the user address space the create accepts (x86-64, 4-level paging); a range ending above → EFAULT. */
#define VIRTGPU_EMU_USER_ADDR_MAX 0x7ffffffff000ULL

/* drm_virtgpu_resource_create_blob, v1 layout of the userptr series (64 bytes). Upstream callers pass the first
 * 48 bytes (no userptr), later revisions 56 (no offset). */
struct virtgpu_emu_create_blob {
	__u32 blob_mem;   /* VIRTGPU_BLOB_MEM_* */
	__u32 blob_flags; /* VIRTGPU_BLOB_FLAG_* */
	__u32 bo_handle;  /* out */
	__u32 res_handle; /* out */
	__u64 size;
	__u32 pad;
	__u32 cmd_size;
	__u64 cmd;        /* user pointer, cmd_size bytes (HOST3D* only) */
	__u64 blob_id;
	__u64 userptr;    /* added by the series */
	__u64 offset;     /* out: offset of userptr inside the returned BO (dedup patch) */
};
#define VIRTGPU_EMU_CREATE_BLOB_UPSTREAM_SIZE 48
#define VIRTGPU_EMU_CREATE_BLOB_V2_SIZE 56

/* The same ioctl in the other kernel revisions (docs/uapi-revisions.md §1): bytes 0-47 as above, then: */
#define VIRTGPU_EMU_CREATE_BLOB_HEAD \
	__u32 blob_mem; __u32 blob_flags; __u32 bo_handle; __u32 res_handle; __u64 size; __u32 pad; __u32 cmd_size; \
	__u64 cmd; __u64 blob_id;
/* mainline up to 7.1 (48 bytes) */
struct virtgpu_emu_create_blob_48 { VIRTGPU_EMU_CREATE_BLOB_HEAD };
/* mainline 7.2 (56 bytes) */
struct virtgpu_emu_create_blob_hints { VIRTGPU_EMU_CREATE_BLOB_HEAD __u32 blob_hints; __u32 pad2; };
/* the series v3 to v5 (56 bytes) */
struct virtgpu_emu_create_blob_v3 { VIRTGPU_EMU_CREATE_BLOB_HEAD __u64 userptr; };
/* the series v6, on 7.2 (64 bytes) */
struct virtgpu_emu_create_blob_v6 { VIRTGPU_EMU_CREATE_BLOB_HEAD __u32 blob_hints; __u32 pad2; __u64 userptr; };
/* the newest libhsakmt (72 bytes; no kernel) */
struct virtgpu_emu_create_blob_72 { VIRTGPU_EMU_CREATE_BLOB_HEAD __u64 userptr; __u64 svm; __u64 offset; };
#define VIRTGPU_EMU_BLOB_FLAG_USE_SVM 0x20
#define VIRTGPU_EMU_BLOB_HINT_DEFER_MAPPING 0x1
#define VIRTGPU_EMU_BLOB_HINT_USERPTR 0x2
#define VIRTGPU_EMU_BLOB_HINT_USERPTR_RDONLY 0x4

struct virtgpu_emu_context_set_param {
	__u64 param; /* VIRTGPU_CONTEXT_PARAM_* */
	__u64 value;
};

struct virtgpu_emu_context_init {
	__u32 num_params;
	__u32 pad;
	__u64 ctx_set_params; /* user pointer to num_params struct virtgpu_emu_context_set_param */
};

/* Modern execbuffer (64 bytes; libdrm 2.4.114 has the 32-byte original). */
struct virtgpu_emu_execbuffer {
	__u32 flags;
	__u32 size;
	__u64 command;    /* void* */
	__u64 bo_handles;
	__u32 num_bo_handles;
	__s32 fence_fd;
	__u32 ring_idx;
	__u32 syncobj_stride;
	__u32 num_in_syncobjs;
	__u32 num_out_syncobjs;
	__u64 in_syncobjs;
	__u64 out_syncobjs;
};

/* RESOURCE_INFO as the kernel has it since blob resources (libdrm 2.4.114 still calls the last field stride). */
struct virtgpu_emu_resource_info {
	__u32 bo_handle;
	__u32 res_handle;
	__u32 size;
	__u32 blob_mem;
};

/* TRANSFER_TO_HOST / FROM_HOST with stride and layer_stride (44 bytes; libdrm 2.4.114 has 36). */
struct virtgpu_emu_3d_transfer {
	__u32 bo_handle;
	struct drm_virtgpu_3d_box box;
	__u32 level;
	__u32 offset;
	__u32 stride;
	__u32 layer_stride;
};

/* The HSAKMT capset blob (GET_CAPS id 8); the HSAKMT UMD only accepts context_type 1 (amdgpu). */
struct virtgpu_emu_hsakmt_capset {
	__u32 wire_format_version;
	__u32 version_major;
	__u32 version_minor;
	__u32 version_patchlevel;
	__u32 context_type;
	__u32 pad;
};
#define VIRTGPU_EMU_HSAKMT_CONTEXT_AMDGPU 1

#define VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob)
#define VIRTGPU_EMU_IOCTL_CONTEXT_INIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_CONTEXT_INIT, struct virtgpu_emu_context_init)
#define VIRTGPU_EMU_IOCTL_EXECBUFFER \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_EXECBUFFER, struct virtgpu_emu_execbuffer)
#define VIRTGPU_EMU_IOCTL_RESOURCE_INFO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_INFO, struct virtgpu_emu_resource_info)
#define VIRTGPU_EMU_IOCTL_TRANSFER_FROM_HOST \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_TRANSFER_FROM_HOST, struct virtgpu_emu_3d_transfer)
#define VIRTGPU_EMU_IOCTL_TRANSFER_TO_HOST \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_TRANSFER_TO_HOST, struct virtgpu_emu_3d_transfer)
/* CONTEXT_INIT has one layout in every revision: the kernel name is safe to provide. */
#ifndef DRM_IOCTL_VIRTGPU_CONTEXT_INIT
#define DRM_IOCTL_VIRTGPU_CONTEXT_INIT VIRTGPU_EMU_IOCTL_CONTEXT_INIT
#endif

/* Layout checks against docs/semantics.md §2 (x86-64). */
#define VIRTGPU_EMU_CHECK(type, field, off) \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " must be at offset " #off)
_Static_assert(sizeof(struct virtgpu_emu_create_blob) == 64, "create_blob v1 is 64 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, blob_mem, 0);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, blob_flags, 4);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, bo_handle, 8);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, res_handle, 12);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, size, 16);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, pad, 24);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, cmd_size, 28);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, cmd, 32);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, blob_id, 40);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, userptr, VIRTGPU_EMU_CREATE_BLOB_UPSTREAM_SIZE);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_create_blob, offset, VIRTGPU_EMU_CREATE_BLOB_V2_SIZE);
_Static_assert(sizeof(struct virtgpu_emu_context_set_param) == 16, "context_set_param is 16 bytes");
_Static_assert(sizeof(struct virtgpu_emu_context_init) == 16, "context_init is 16 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_context_init, ctx_set_params, 8);
_Static_assert(sizeof(struct virtgpu_emu_execbuffer) == 64, "modern execbuffer is 64 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_execbuffer, fence_fd, 28);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_execbuffer, ring_idx, 32);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_execbuffer, in_syncobjs, 48);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_execbuffer, out_syncobjs, 56);
_Static_assert(sizeof(struct virtgpu_emu_resource_info) == 16, "resource_info is 16 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_resource_info, blob_mem, 12);
_Static_assert(sizeof(struct virtgpu_emu_3d_transfer) == 44, "3d_transfer is 44 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_3d_transfer, level, 28);
VIRTGPU_EMU_CHECK(struct virtgpu_emu_3d_transfer, layer_stride, 40);
_Static_assert(sizeof(struct virtgpu_emu_hsakmt_capset) == 24, "hsakmt capset is 24 bytes");
VIRTGPU_EMU_CHECK(struct virtgpu_emu_hsakmt_capset, context_type, 16);
_Static_assert(sizeof(struct drm_virtgpu_getparam) == 16, "getparam is 16 bytes");
_Static_assert(sizeof(struct drm_virtgpu_get_caps) == 24, "get_caps is 24 bytes");
_Static_assert(sizeof(struct drm_version) == 64, "drm_version is 64 bytes on x86-64");
_Static_assert(VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB == 0xc040644a, "CREATE_BLOB(64) ioctl number");
_Static_assert(VIRTGPU_EMU_IOCTL_CONTEXT_INIT == 0xc010644b, "CONTEXT_INIT ioctl number");
_Static_assert(VIRTGPU_EMU_IOCTL_EXECBUFFER == 0xc0406442, "EXECBUFFER(64) ioctl number");
#undef VIRTGPU_EMU_CHECK

#endif /* VIRTGPU_EMU_USERPTR_H */
