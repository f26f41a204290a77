// RESOURCE_CREATE (3D), RESOURCE_INFO, WAIT, MAP, TRANSFER_{FROM,TO}_HOST.
import { EINVAL, ENOENT, ENOSYS } from '../errno';
import * as V from '../abi/virtgpu';
import type { BoKind } from '../drm/gem';
import { PAGE_SIZE, pageUp } from '../memory/client-memory';
import { isUserptr } from '../userptr/create';
import { driverRow } from './driver-row';
import { mappable } from './mmap';

const resource3dKind: BoKind = { name: 'resource3d', release: () => undefined };

export const resourceCreateRow = driverRow('RESOURCE_CREATE', V.drm_virtgpu_resource_create, [EINVAL], {
  handler: ({ dev, file: f, client }, a) => {
    if (!dev.profile.has3d) {
      // 2D: only simple 2D textures (virtio_gpu_resource_create_ioctl)
      if (a.depth > 1 || a.nr_samples > 1 || a.last_level > 1 || a.target !== 2 || a.array_size > 1) return EINVAL;
    }
    dev.ensureContext(f, client);
    const size = a.size === 0 ? PAGE_SIZE : pageUp(a.size);
    const resId = dev.allocResId();
    dev.host.submit({ cmd: 'RESOURCE_CREATE_3D', resId, ctxId: f.priv.ctx?.id ?? 0, target: a.target, format: a.format, bind: a.bind, width: a.width, height: a.height, depth: a.depth, arraySize: a.array_size, lastLevel: a.last_level, nrSamples: a.nr_samples, flags: a.flags });
    const bo = dev.addObject(f, resource3dKind, resId, size, 0, 0);
    a.bo_handle = bo.handle;
    a.res_handle = resId;
    return 0;
  },
});

/** Blob memory with host storage (HOST3D, HOST3D_GUEST). */
const HOST3D_MEMS = new Set([V.VIRTGPU_BLOB_MEM_HOST3D, V.VIRTGPU_BLOB_MEM_HOST3D_GUEST]);

export const resourceInfoRow = driverRow('RESOURCE_INFO', V.drm_virtgpu_resource_info, [ENOENT], {
  handler: ({ file }, a) => {
    const bo = file.handles.get(a.bo_handle);
    if (!bo) return ENOENT;
    a.size = bo.size >>> 0;
    a.res_handle = bo.resId;
    // The kernel reports blob_mem for host3d blobs; the userptr series for userptrs (docs/semantics.md §3).
    if (HOST3D_MEMS.has(bo.blobMem) || isUserptr(bo)) a.blob_mem = bo.blobMem;
    return 0;
  },
});

export const waitRow = driverRow('WAIT', V.drm_virtgpu_3d_wait, [ENOENT], {
  // The recording host completes every command at once: nothing is ever busy.
  handler: ({ file }, a) => (file.handles.get(a.handle) ? 0 : ENOENT),
});

export const mapRow = driverRow('MAP', V.drm_virtgpu_map, [ENOENT], {
  // The object's fake offset (core/drm/map-offsets.ts); mmap of it works where the transport can map (preload).
  handler: ({ dev, file }, a) => {
    const bo = file.handles.get(a.handle);
    if (!bo) return ENOENT;
    a.offset = dev.mapOffsets.offsetOf(bo, bo.size);
    // DEFER_MAPPING: the host maps a MAPPABLE HOST3D blob now at the latest (virtio_gpu_vram_map_deferred; a failure
    // shows at mmap, as there).
    if (bo.kind.name === 'host3d' && mappable(bo)) dev.memoryOf(bo);
    return 0;
  },
});

function transferRow(name: 'TRANSFER_FROM_HOST' | 'TRANSFER_TO_HOST', cmd: 'TRANSFER_TO_HOST_3D' | 'TRANSFER_FROM_HOST_3D') {
  return driverRow(name, V.drm_virtgpu_3d_transfer, [ENOENT, EINVAL, ENOSYS], {
    handler: ({ dev, file: f, client }, a) => {
      if (!dev.profile.has3d && cmd === 'TRANSFER_FROM_HOST_3D') return ENOSYS;
      // As the kernel: the default context comes first, even when the handle turns out to be unknown.
      dev.ensureContext(f, client);
      const bo = f.handles.get(a.bo_handle);
      if (!bo) return ENOENT;
      if (bo.blobMem === V.VIRTGPU_BLOB_MEM_GUEST) return EINVAL; // guest-only blobs have no host storage
      if (!HOST3D_MEMS.has(bo.blobMem) && (a.stride || a.layer_stride)) return EINVAL;
      dev.host.submit({ cmd, ctxId: f.priv.ctx?.id ?? 0, resId: bo.resId, box: { ...a.box }, level: a.level, offset: BigInt(a.offset), stride: a.stride, layerStride: a.layer_stride });
      return 0;
    },
  });
}
export const transferFromHostRow = transferRow('TRANSFER_FROM_HOST', 'TRANSFER_FROM_HOST_3D');
export const transferToHostRow = transferRow('TRANSFER_TO_HOST', 'TRANSFER_TO_HOST_3D');
