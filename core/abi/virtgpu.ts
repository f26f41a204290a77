// virtgpu_drm.h structs (names 1:1); create_blob in each revision's layout (docs/uapi-revisions.md).
import { struct, u32, i32, u64, pad, Struct, type FieldType, type Infer } from './layout';

export const drm_virtgpu_map = struct('drm_virtgpu_map', { offset: u64, handle: u32, pad: pad(4, 4) });
export const drm_virtgpu_execbuffer = struct('drm_virtgpu_execbuffer', {
  flags: u32, size: u32, command: u64, bo_handles: u64, num_bo_handles: u32, fence_fd: i32,
  ring_idx: u32, syncobj_stride: u32, num_in_syncobjs: u32, num_out_syncobjs: u32, in_syncobjs: u64, out_syncobjs: u64,
});
export const drm_virtgpu_getparam = struct('drm_virtgpu_getparam', { param: u64, value: u64 });
export const drm_virtgpu_resource_create = struct('drm_virtgpu_resource_create', {
  target: u32, format: u32, bind: u32, width: u32, height: u32, depth: u32, array_size: u32, last_level: u32,
  nr_samples: u32, flags: u32, bo_handle: u32, res_handle: u32, size: u32, stride: u32,
});
export const drm_virtgpu_resource_info = struct('drm_virtgpu_resource_info', { bo_handle: u32, res_handle: u32, size: u32, blob_mem: u32 });
export const drm_virtgpu_3d_box = struct('drm_virtgpu_3d_box', { x: u32, y: u32, z: u32, w: u32, h: u32, d: u32 });
export const drm_virtgpu_3d_transfer = struct('drm_virtgpu_3d_transfer_to_host', {
  bo_handle: u32, box: drm_virtgpu_3d_box, level: u32, offset: u32, stride: u32, layer_stride: u32,
});
export const drm_virtgpu_3d_wait = struct('drm_virtgpu_3d_wait', { handle: u32, flags: u32 });
export const drm_virtgpu_get_caps = struct('drm_virtgpu_get_caps', { cap_set_id: u32, cap_set_ver: u32, addr: u64, size: u32, pad: pad(4, 4) });
/**
 * drm_virtgpu_resource_create_blob: the first 48 bytes are upstream's in every revision; what follows depends on the
 * kernel revision (core/virtgpu/uapi.ts picks one table per revision; drm_ioctl zero-extends or truncates any other
 * _IOC_SIZE to it). Each table is the struct of that revision's header.
 */
const createBlobBase = {
  blob_mem: u32, blob_flags: u32, bo_handle: u32, res_handle: u32, size: u64, pad: pad(4, 4), cmd_size: u32,
  cmd: u64, blob_id: u64,
};
/** Any revision's create_blob as a handler reads it: the fields past byte 48 exist only where its table has them. */
export type CreateBlobArgs = Infer<typeof createBlobBase> & { blob_hints?: number; pad2?: number; userptr?: bigint; svm?: bigint; offset?: bigint };
/** One table per revision's header; all but v1's carry the revision after an `@` (the C checks key structs by name). */
const createBlob = (rev: string, spec: Record<string, FieldType<any>>): Struct<CreateBlobArgs> =>
  new Struct<CreateBlobArgs>(`drm_virtgpu_resource_create_blob${rev && '@' + rev}`, spec);
/** Mainline up to 7.1 (48 bytes). */
export const drm_virtgpu_resource_create_blob_48 = createBlob('7.1', createBlobBase);
/** Mainline 7.2 (56 bytes): blob_hints @48, pad2 @52 (must be 0). */
export const drm_virtgpu_resource_create_blob_hints = createBlob('7.2', { ...createBlobBase, blob_hints: u32, pad2: u32 });
/** The userptr series RFC, v1 (the default revision) and v2 (64 bytes): userptr @48, offset @56 (out, dedup). */
export const drm_virtgpu_resource_create_blob = createBlob('', { ...createBlobBase, userptr: u64, offset: u64 });
/** The userptr series v3 to v5 (56 bytes): userptr @48. */
export const drm_virtgpu_resource_create_blob_v3 = createBlob('v3', { ...createBlobBase, userptr: u64 });
/** The userptr series v6, on top of mainline 7.2 (64 bytes): blob_hints @48, pad2 @52, userptr @56. */
export const drm_virtgpu_resource_create_blob_v6 = createBlob('v6', { ...createBlobBase, blob_hints: u32, pad2: u32, userptr: u64 });
/** The newest libhsakmt's struct (72 bytes, no kernel takes it): userptr @48, svm @56, offset @64 (out). */
export const drm_virtgpu_resource_create_blob_72 = createBlob('72', { ...createBlobBase, userptr: u64, svm: u64, offset: u64 });

export const drm_virtgpu_context_set_param = struct('drm_virtgpu_context_set_param', { param: u64, value: u64 });
export const drm_virtgpu_context_init = struct('drm_virtgpu_context_init', { num_params: u32, pad: pad(4, 4), ctx_set_params: u64 });

/** Driver ioctl nrs, relative to DRM_COMMAND_BASE (core/abi/ioc.ts). */
export const DRM_VIRTGPU_MAP = 0x01;
export const DRM_VIRTGPU_EXECBUFFER = 0x02;
export const DRM_VIRTGPU_GETPARAM = 0x03;
export const DRM_VIRTGPU_RESOURCE_CREATE = 0x04;
export const DRM_VIRTGPU_RESOURCE_INFO = 0x05;
export const DRM_VIRTGPU_TRANSFER_FROM_HOST = 0x06;
export const DRM_VIRTGPU_TRANSFER_TO_HOST = 0x07;
export const DRM_VIRTGPU_WAIT = 0x08;
export const DRM_VIRTGPU_GET_CAPS = 0x09;
export const DRM_VIRTGPU_RESOURCE_CREATE_BLOB = 0x0a;
export const DRM_VIRTGPU_CONTEXT_INIT = 0x0b;

export const VIRTGPU_EXECBUF_FENCE_FD_IN = 0x01;
export const VIRTGPU_EXECBUF_FENCE_FD_OUT = 0x02;
export const VIRTGPU_EXECBUF_RING_IDX = 0x04;
export const VIRTGPU_EXECBUF_FLAGS = VIRTGPU_EXECBUF_FENCE_FD_IN | VIRTGPU_EXECBUF_FENCE_FD_OUT | VIRTGPU_EXECBUF_RING_IDX;

export const VIRTGPU_PARAM_3D_FEATURES = 1;
export const VIRTGPU_PARAM_CAPSET_QUERY_FIX = 2;
export const VIRTGPU_PARAM_RESOURCE_BLOB = 3;
export const VIRTGPU_PARAM_HOST_VISIBLE = 4;
export const VIRTGPU_PARAM_CROSS_DEVICE = 5;
export const VIRTGPU_PARAM_CONTEXT_INIT = 6;
export const VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs = 7;
export const VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME = 8;
/** Parameter 9 means something else per revision (core/virtgpu/uapi.ts `param9`): v3's RESOURCE_USERPTR, mainline 7.2's BLOB_ALIGNMENT. */
export const VIRTGPU_PARAM_RESOURCE_USERPTR = 9;
export const VIRTGPU_PARAM_BLOB_ALIGNMENT = 9;

export const VIRTGPU_BLOB_MEM_GUEST = 0x1;
export const VIRTGPU_BLOB_MEM_HOST3D = 0x2;
export const VIRTGPU_BLOB_MEM_HOST3D_GUEST = 0x3;
export const VIRTGPU_BLOB_FLAG_USE_MAPPABLE = 0x1;
export const VIRTGPU_BLOB_FLAG_USE_SHAREABLE = 0x2;
export const VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE = 0x4;
export const VIRTGPU_BLOB_FLAG_USE_USERPTR = 0x8;
export const VIRTGPU_BLOB_FLAG_USERPTR_RDONLY = 0x10;
/** The newest libhsakmt only: the address is `svm` @56. */
export const VIRTGPU_BLOB_FLAG_USE_SVM = 0x20;
/** Upstream's flag mask; each revision's own mask is in core/virtgpu/uapi.ts. */
export const VIRTGPU_BLOB_FLAG_USE_MASK = 0x07;
/** blob_hints bits: mainline 7.2 DEFER_MAPPING; v6 adds the two userptr hints. */
export const VIRTGPU_BLOB_HINT_DEFER_MAPPING = 0x1;
export const VIRTGPU_BLOB_HINT_USERPTR = 0x2;
export const VIRTGPU_BLOB_HINT_USERPTR_RDONLY = 0x4;

export const VIRTGPU_CONTEXT_PARAM_CAPSET_ID = 0x1;
export const VIRTGPU_CONTEXT_PARAM_NUM_RINGS = 0x2;
export const VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK = 0x3;
export const VIRTGPU_CONTEXT_PARAM_DEBUG_NAME = 0x4;
export const VIRTGPU_MAX_RINGS = 64;
export const VIRTGPU_DEBUG_NAME_MAX = 64;

export const VIRTIO_GPU_CAPSET_VIRGL = 1;
export const VIRTIO_GPU_CAPSET_VIRGL2 = 2;
export const VIRTIO_GPU_CAPSET_VENUS = 4;
export const VIRTIO_GPU_CAPSET_CROSS_DOMAIN = 5;
export const VIRTIO_GPU_CAPSET_DRM = 6;
export const VIRTIO_GPU_CAPSET_HSAKMT = 8;

/** The HSAKMT capset blob (24 bytes); the HSAKMT UMD only accepts context_type 1 (amdgpu). */
export const virtio_gpu_hsakmt_capset = struct('virtio_gpu_hsakmt_capset', {
  wire_format_version: u32, version_major: u32, version_minor: u32, version_patchlevel: u32, context_type: u32, pad: pad(4, 4),
});
