// mmap(node fd, offset, length) as drm_gem_mmap and the objects' mmap ops decide it (docs/semantics.md §10): the
// offset VIRTGPU_MAP gave names the object, the file must hold a handle to it, the object must be mappable, the
// range must lie inside it. The memory is allocated at the first map of a guest blob (shmem pages appear on first
// use) and of a HOST3D blob created with DEFER_MAPPING (the host maps it then).
import { EACCES, EINVAL, type Errno, isErr } from '../errno';
import * as V from '../abi/virtgpu';
import type { GemObject } from '../drm/gem';
import type { BlobMemory } from '../memory/blob-memory';
import type { VirtgpuFile } from './fpriv';
import type { Vgdev } from './vgdev';

/** Whether mmap of the object can succeed: EINVAL when its kind has no memory to share. */
export function mappable(bo: GemObject): boolean {
  switch (bo.kind.name) {
    case 'host3d': return (bo.blobFlags & V.VIRTGPU_BLOB_FLAG_USE_MAPPABLE) !== 0; // virtio_gpu_vram_mmap
    case 'guest': case 'resource3d': return true; // shmem objects: drm_gem_shmem_mmap
    default: return false; // a userptr's pages are the client's own **[decision]**
  }
}

export function mapRequest(dev: Vgdev, f: VirtgpuFile, offset: bigint, length: number): { memory: BlobMemory; offset: number; resId: number } | Errno {
  const hit = dev.mapOffsets.lookup(offset, length);
  if (!hit) return EINVAL; // no object there, or the range leaves it (drm_vma_offset_lookup_locked finds none)
  const bo = hit.value;
  if (f.handles.get(bo.handle) !== bo) return EACCES; // drm_vma_node_is_allowed: this file holds no handle to it
  if (!mappable(bo)) return EINVAL;
  const m = dev.memoryOf(bo);
  // A HOST3D blob the host could not map (DEFER_MAPPING, region full): map_state is not OK → EINVAL.
  if (isErr(m)) return bo.kind.name === 'host3d' ? EINVAL : m;
  return { memory: m, offset: hit.within, resId: bo.resId };
}
