// RESOURCE_CREATE_BLOB: verify_blob() (upstream + later-revision rules), then guest / host3d / userptr creation.
import { EFAULT, EINVAL, ENOMEM, type Errno, isErr } from '../errno';
import * as V from '../abi/virtgpu';
import type { BoKind } from '../drm/gem';
import { addrOf, pageUp } from '../memory/client-memory';
import { createUserptr, preparePin, USERPTR_EXISTS } from '../userptr/create';
import type { DeviceProfile } from './profile';
import { driverRow } from './driver-row';

type Blob = ReturnType<typeof V.drm_virtgpu_resource_create_blob.zero>;
export interface BlobKind { guest: boolean; host3d: boolean; userptr: boolean }

/** Pure checks, before anything happens (spec §3.1); EINVAL on the first failure. */
export function verifyBlob(prof: DeviceProfile, a: Blob): BlobKind | Errno {
  if (!prof.resourceBlob) return EINVAL;
  if (a.blob_flags & ~V.VIRTGPU_BLOB_FLAG_USE_MASK) return EINVAL;
  if ((a.blob_flags & V.VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE) && !prof.crossDevice) return EINVAL;
  let guest = false, host3d = false;
  switch (a.blob_mem) {
    case V.VIRTGPU_BLOB_MEM_GUEST: guest = true; break;
    case V.VIRTGPU_BLOB_MEM_HOST3D_GUEST: guest = true; host3d = true; break;
    case V.VIRTGPU_BLOB_MEM_HOST3D: host3d = true; break;
    default: return EINVAL;
  }
  if (host3d) {
    if (!prof.has3d) return EINVAL;
    if (a.cmd_size % 4 !== 0) return EINVAL; // must be dword aligned
  } else {
    if (a.blob_id !== 0n || a.cmd_size !== 0) return EINVAL;
  }
  // Later-revision rules, enforced [decision].
  if ((a.blob_flags & V.VIRTGPU_BLOB_FLAG_USE_USERPTR) && a.userptr === 0n) return EINVAL;
  if ((a.blob_flags & V.VIRTGPU_BLOB_FLAG_USERPTR_RDONLY) && !(a.blob_flags & V.VIRTGPU_BLOB_FLAG_USE_USERPTR)) return EINVAL;
  // v1 routes guest blobs with a userptr to the userptr path; HOST3D ignores the userptr.
  return { guest, host3d, userptr: guest && a.userptr !== 0n };
}

const guestKind: BoKind = { name: 'guest', release: () => undefined };
const host3dKind: BoKind = { name: 'host3d', release: () => undefined };

export const createBlobRow = driverRow('RESOURCE_CREATE_BLOB', V.drm_virtgpu_resource_create_blob, [EINVAL, EFAULT, ENOMEM], {
  pointers: (a) => (a.cmd_size && a.blob_mem !== V.VIRTGPU_BLOB_MEM_GUEST ? { in: [{ addr: addrOf(a.cmd), len: a.cmd_size }], out: [] } : { in: [], out: [] }),
  prepare: (ctx, a) => {
    const kind = verifyBlob(ctx.dev.profile, a);
    if (isErr(kind) || !kind.userptr) return null;
    return preparePin(ctx, { blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, userptr: a.userptr });
  },
  handler: (ctx, a) => {
    const { dev, file: f, client } = ctx;
    const kind = verifyBlob(dev.profile, a);
    if (isErr(kind)) return kind;
    dev.ensureContext(f, client);
    if (kind.userptr) {
      const r = createUserptr(ctx, { blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, userptr: a.userptr });
      if (isErr(r)) return r;
      a.bo_handle = r.handle;
      a.res_handle = r.resId;
      if (r.offset === undefined) return 0;
      a.offset = r.offset;
      return USERPTR_EXISTS;
    }
    if (a.size === 0n) return EINVAL;
    if (a.cmd_size) {
      const cmd = ctx.user.read(addrOf(a.cmd), a.cmd_size);
      if (isErr(cmd)) return EFAULT;
      dev.host.submit({ cmd: 'SUBMIT_3D', ctxId: f.priv.ctx?.id ?? 0, ringIdx: 0, data: cmd, resIds: [] });
    }
    const resId = dev.allocResId();
    const ctxId = kind.host3d ? (f.priv.ctx?.id ?? 0) : 0;
    let size = Number(a.size);
    let entries: { addr: number; length: number }[] = [];
    if (kind.guest) {
      size = pageUp(size); // shmem objects are page aligned
      entries = [{ addr: dev.allocGuestAddr(size), length: size }];
    }
    dev.host.submit({ cmd: 'RESOURCE_CREATE_BLOB', resId, ctxId, blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, entries });
    const bo = dev.addObject(f, kind.guest ? guestKind : host3dKind, resId, size, a.blob_mem, a.blob_flags);
    a.bo_handle = bo.handle;
    a.res_handle = resId;
    return 0;
  },
});
