// sizeof_check: what a C compiler says about every struct core/abi's tables define, keyed by the C header name
// the TS table carries. Taken from libdrm's drm.h / virtgpu_drm.h where libdrm 2.4.114 has the current layout,
// else from the project header (include/virtgpu_userptr.h). tests/e2e/c-abi.test.ts compares the output with
// core/abi/drm.ts and core/abi/virtgpu.ts. Lines:
//   S <name> <sizeof> <alignof> <source>
//   F <name> <field> <offsetof> <sizeof field>
//   I <ioctl name> <number, hex>
#include <stddef.h>
#include <stdio.h>
#include "virtgpu_userptr.h"

#define S(name, type, src) printf("S %s %zu %zu %s\n", name, sizeof(type), _Alignof(type), src)
#define F(name, type, field) printf("F %s %s %zu %zu\n", name, #field, offsetof(type, field), sizeof(((type *)0)->field))
#define I(name, number) printf("I %s 0x%08lx\n", name, (unsigned long)(number))
#define LIBDRM "libdrm"
#define OURS "virtgpu_userptr.h"

int main(void) {
	S("drm_version", struct drm_version, LIBDRM);
	F("drm_version", struct drm_version, version_major);
	F("drm_version", struct drm_version, version_minor);
	F("drm_version", struct drm_version, version_patchlevel);
	F("drm_version", struct drm_version, name_len);
	F("drm_version", struct drm_version, name);
	F("drm_version", struct drm_version, date_len);
	F("drm_version", struct drm_version, date);
	F("drm_version", struct drm_version, desc_len);
	F("drm_version", struct drm_version, desc);

	S("drm_gem_close", struct drm_gem_close, LIBDRM);
	F("drm_gem_close", struct drm_gem_close, handle);
	F("drm_gem_close", struct drm_gem_close, pad);

	S("drm_get_cap", struct drm_get_cap, LIBDRM);
	F("drm_get_cap", struct drm_get_cap, capability);
	F("drm_get_cap", struct drm_get_cap, value);

	S("drm_virtgpu_map", struct drm_virtgpu_map, LIBDRM);
	F("drm_virtgpu_map", struct drm_virtgpu_map, offset);
	F("drm_virtgpu_map", struct drm_virtgpu_map, handle);
	F("drm_virtgpu_map", struct drm_virtgpu_map, pad);

	/* libdrm 2.4.114 has the 32-byte original; the kernel's has grown to 64. */
	S("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, OURS);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, flags);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, size);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, command);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, bo_handles);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, num_bo_handles);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, fence_fd);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, ring_idx);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, syncobj_stride);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, num_in_syncobjs);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, num_out_syncobjs);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, in_syncobjs);
	F("drm_virtgpu_execbuffer", struct virtgpu_emu_execbuffer, out_syncobjs);

	S("drm_virtgpu_getparam", struct drm_virtgpu_getparam, LIBDRM);
	F("drm_virtgpu_getparam", struct drm_virtgpu_getparam, param);
	F("drm_virtgpu_getparam", struct drm_virtgpu_getparam, value);

	S("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, LIBDRM);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, target);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, format);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, bind);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, width);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, height);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, depth);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, array_size);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, last_level);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, nr_samples);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, flags);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, bo_handle);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, res_handle);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, size);
	F("drm_virtgpu_resource_create", struct drm_virtgpu_resource_create, stride);

	/* libdrm 2.4.114 still names the last field `stride`; the kernel's is blob_mem. */
	S("drm_virtgpu_resource_info", struct virtgpu_emu_resource_info, OURS);
	F("drm_virtgpu_resource_info", struct virtgpu_emu_resource_info, bo_handle);
	F("drm_virtgpu_resource_info", struct virtgpu_emu_resource_info, res_handle);
	F("drm_virtgpu_resource_info", struct virtgpu_emu_resource_info, size);
	F("drm_virtgpu_resource_info", struct virtgpu_emu_resource_info, blob_mem);

	S("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, LIBDRM);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, x);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, y);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, z);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, w);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, h);
	F("drm_virtgpu_3d_box", struct drm_virtgpu_3d_box, d);

	/* libdrm 2.4.114 lacks stride/layer_stride (36 bytes); the kernel's is 44. Same layout for from_host. */
	S("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, OURS);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, bo_handle);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, box);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, level);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, offset);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, stride);
	F("drm_virtgpu_3d_transfer_to_host", struct virtgpu_emu_3d_transfer, layer_stride);
	/* The part of it libdrm does have must agree. */
	S("libdrm:drm_virtgpu_3d_transfer_to_host", struct drm_virtgpu_3d_transfer_to_host, LIBDRM);
	F("libdrm:drm_virtgpu_3d_transfer_to_host", struct drm_virtgpu_3d_transfer_to_host, bo_handle);
	F("libdrm:drm_virtgpu_3d_transfer_to_host", struct drm_virtgpu_3d_transfer_to_host, box);
	F("libdrm:drm_virtgpu_3d_transfer_to_host", struct drm_virtgpu_3d_transfer_to_host, level);
	F("libdrm:drm_virtgpu_3d_transfer_to_host", struct drm_virtgpu_3d_transfer_to_host, offset);

	S("drm_virtgpu_3d_wait", struct drm_virtgpu_3d_wait, LIBDRM);
	F("drm_virtgpu_3d_wait", struct drm_virtgpu_3d_wait, handle);
	F("drm_virtgpu_3d_wait", struct drm_virtgpu_3d_wait, flags);

	S("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, LIBDRM);
	F("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, cap_set_id);
	F("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, cap_set_ver);
	F("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, addr);
	F("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, size);
	F("drm_virtgpu_get_caps", struct drm_virtgpu_get_caps, pad);

	S("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, OURS);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, blob_mem);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, blob_flags);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, bo_handle);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, res_handle);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, size);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, pad);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, cmd_size);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, cmd);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, blob_id);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, userptr);
	F("drm_virtgpu_resource_create_blob", struct virtgpu_emu_create_blob, offset);

	S("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, OURS);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, blob_mem);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, blob_flags);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, bo_handle);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, res_handle);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, size);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, pad);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, cmd_size);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, cmd);
	F("drm_virtgpu_resource_create_blob@7.1", struct virtgpu_emu_create_blob_48, blob_id);

	S("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, OURS);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, blob_mem);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, blob_flags);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, bo_handle);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, res_handle);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, size);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, pad);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, cmd_size);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, cmd);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, blob_id);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, blob_hints);
	F("drm_virtgpu_resource_create_blob@7.2", struct virtgpu_emu_create_blob_hints, pad2);

	S("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, OURS);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, blob_mem);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, blob_flags);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, bo_handle);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, res_handle);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, size);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, pad);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, cmd_size);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, cmd);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, blob_id);
	F("drm_virtgpu_resource_create_blob@v3", struct virtgpu_emu_create_blob_v3, userptr);

	S("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, OURS);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, blob_mem);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, blob_flags);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, bo_handle);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, res_handle);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, size);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, pad);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, cmd_size);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, cmd);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, blob_id);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, blob_hints);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, pad2);
	F("drm_virtgpu_resource_create_blob@v6", struct virtgpu_emu_create_blob_v6, userptr);

	S("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, OURS);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, blob_mem);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, blob_flags);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, bo_handle);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, res_handle);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, size);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, pad);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, cmd_size);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, cmd);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, blob_id);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, userptr);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, svm);
	F("drm_virtgpu_resource_create_blob@72", struct virtgpu_emu_create_blob_72, offset);

	S("drm_virtgpu_context_set_param", struct virtgpu_emu_context_set_param, OURS);
	F("drm_virtgpu_context_set_param", struct virtgpu_emu_context_set_param, param);
	F("drm_virtgpu_context_set_param", struct virtgpu_emu_context_set_param, value);

	S("drm_virtgpu_context_init", struct virtgpu_emu_context_init, OURS);
	F("drm_virtgpu_context_init", struct virtgpu_emu_context_init, num_params);
	F("drm_virtgpu_context_init", struct virtgpu_emu_context_init, pad);
	F("drm_virtgpu_context_init", struct virtgpu_emu_context_init, ctx_set_params);

	S("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, OURS);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, wire_format_version);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, version_major);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, version_minor);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, version_patchlevel);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, context_type);
	F("virtio_gpu_hsakmt_capset", struct virtgpu_emu_hsakmt_capset, pad);

	/* ioctl numbers: libdrm's macros where the struct is current, the project header's otherwise. */
	I("DRM_IOCTL_VERSION", DRM_IOCTL_VERSION);
	I("DRM_IOCTL_GEM_CLOSE", DRM_IOCTL_GEM_CLOSE);
	I("DRM_IOCTL_GET_CAP", DRM_IOCTL_GET_CAP);
	I("DRM_IOCTL_VIRTGPU_MAP", DRM_IOCTL_VIRTGPU_MAP);
	I("DRM_IOCTL_VIRTGPU_EXECBUFFER", VIRTGPU_EMU_IOCTL_EXECBUFFER);
	I("DRM_IOCTL_VIRTGPU_GETPARAM", DRM_IOCTL_VIRTGPU_GETPARAM);
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE", DRM_IOCTL_VIRTGPU_RESOURCE_CREATE);
	I("DRM_IOCTL_VIRTGPU_RESOURCE_INFO", VIRTGPU_EMU_IOCTL_RESOURCE_INFO);
	I("DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST", VIRTGPU_EMU_IOCTL_TRANSFER_FROM_HOST);
	I("DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST", VIRTGPU_EMU_IOCTL_TRANSFER_TO_HOST);
	I("DRM_IOCTL_VIRTGPU_WAIT", DRM_IOCTL_VIRTGPU_WAIT);
	I("DRM_IOCTL_VIRTGPU_GET_CAPS", DRM_IOCTL_VIRTGPU_GET_CAPS);
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB", VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB);
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB@7.1", DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_48));
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB@7.2", DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_hints));
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB@v3", DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_v3));
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB@v6", DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_v6));
	I("DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB@72", DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_72));
	I("DRM_IOCTL_VIRTGPU_CONTEXT_INIT", DRM_IOCTL_VIRTGPU_CONTEXT_INIT);
	return 0;
}
