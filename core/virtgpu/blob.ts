// RESOURCE_CREATE_BLOB: verify_blob() (upstream + the uAPI revision's rules), then guest / host3d / userptr creation.
import { E2BIG, EFAULT, EINVAL, ENOMEM, ENOSPC, EPERM, type Errno, isErr } from '../errno';
import * as V from '../abi/virtgpu';
import type { CreateBlobArgs } from '../abi/virtgpu';
import type { Struct } from '../abi/layout';
import type { BoKind } from '../drm/gem';
import type { PointerPlan } from '../drm/dispatch';
import { addrOf, pageUp, u64Number } from '../memory/client-memory';
import { createUserptr, populateRange, preparePin, USERPTR_EXISTS } from '../userptr/create';
import type { DeviceProfile } from './profile';
import { driverRow } from './driver-row';
import type { VirtgpuCtx } from './vgdev';
import { runChecks, userptrAddress, userptrReadOnly, type LimitsOf, type UapiRevision } from './uapi';

export interface BlobKind {
  guest: boolean; host3d: boolean;
  /** The userptr address when the revision sends this create down the userptr path, else 0n. */
  userptr: bigint;
  rdonly: boolean;
  /** blob_hints as accepted (7.2-based revisions; 0 elsewhere): DEFER_MAPPING is recorded on the BO. */
  hints: number;
}

/**
 * Pure checks, before anything happens (docs/semantics.md §3.1, docs/uapi-revisions.md): upstream's, then the
 * revision's mask, 7.2's blob_hints/pad2/alignment rules where it sits on 7.2, then its own extra checks.
 */
export function verifyBlob(prof: DeviceProfile, rev: UapiRevision, a: CreateBlobArgs, limits?: LimitsOf): BlobKind | Errno {
  if (!prof.resourceBlob) return EINVAL;
  if (a.blob_flags & ~rev.flagMask) return EINVAL;
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
  let hints = 0;
  if (rev.hintsBase) {
    hints = a.blob_hints ?? 0;
    if ((a.pad2 ?? 0) !== 0 || hints & ~rev.hintMask) return EINVAL;
    if (prof.blobAlignment && a.size % BigInt(prof.blobAlignment) !== 0n) return EINVAL;
  }
  const bad = runChecks(rev, a, limits);
  if (bad) return bad;
  return { guest, host3d, userptr: userptrAddress(rev, a), rdonly: userptrReadOnly(rev, a), hints };
}

const guestKind: BoKind = { name: 'guest', release: () => undefined };
const host3dKind: BoKind = { name: 'host3d', release: () => undefined };

/** The create_blob row over a revision's struct (core/virtgpu/ioctls.ts builds one table per struct). */
export const createBlobRow = (layout: Struct<CreateBlobArgs>) => driverRow('RESOURCE_CREATE_BLOB', layout, [EINVAL, EFAULT, ENOMEM, E2BIG, EPERM, ENOSPC], {
  pointers: (a, ctx) => {
    const p: PointerPlan = a.cmd_size && a.blob_mem !== V.VIRTGPU_BLOB_MEM_GUEST ? { in: [{ addr: addrOf(a.cmd), len: a.cmd_size }], out: [] } : { in: [], out: [] };
    // A userptr create faults its pages in: a client that can do it itself may (PointerPlan.populate).
    const kind = verifyBlob(ctx.dev.profile, ctx.dev.uapi, a, () => ctx.client.memory.memlockLimits?.() ?? null);
    const pop = isErr(kind) || !kind.userptr ? null : populateRange(ctx, { blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, userptr: kind.userptr, rdonly: kind.rdonly });
    return pop ? { ...p, populate: [pop] } : p;
  },
  prepare: (ctx, a) => {
    const kind = verifyBlob(ctx.dev.profile, ctx.dev.uapi, a, () => ctx.client.memory.memlockLimits?.() ?? null);
    if (isErr(kind) || !kind.userptr) return null;
    return preparePin(ctx, { blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, userptr: kind.userptr, rdonly: kind.rdonly });
  },
  handler: createBlob,
});

/** RESOURCE_CREATE_BLOB's handler: verify, the file's default context, then the userptr path or a guest / host3d blob. */
export function createBlob(ctx: VirtgpuCtx, a: CreateBlobArgs): number | Errno {
  const { dev, file: f, client } = ctx;
  const kind = verifyBlob(dev.profile, dev.uapi, a, () => client.memory.memlockLimits?.() ?? null);
  if (isErr(kind)) return kind;
  dev.ensureContext(f, client);
  if (kind.userptr) {
    const r = createUserptr(ctx, { blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, userptr: kind.userptr, rdonly: kind.rdonly });
    if (isErr(r)) return r;
    a.bo_handle = r.handle;
    a.res_handle = r.resId;
    if (r.offset === undefined) return 0;
    a.offset = r.offset; // written where the revision's struct has `offset` (dedup only runs there)
    return USERPTR_EXISTS;
  }
  if (a.size === 0n) return EINVAL;
  // A MAPPABLE HOST3D blob needs the host-visible region (virtio_gpu_vram_map: EINVAL without it).
  const hostMapped = kind.host3d && !kind.guest && (a.blob_flags & V.VIRTGPU_BLOB_FLAG_USE_MAPPABLE) !== 0;
  if (hostMapped && !dev.profile.hostVisible) return EINVAL;
  if (a.cmd_size) {
    const cmd = ctx.user.read(addrOf(a.cmd), a.cmd_size);
    if (isErr(cmd)) return EFAULT;
    dev.host.submit({ cmd: 'SUBMIT_3D', ctxId: f.priv.ctx?.id ?? 0, ringIdx: 0, data: cmd, resIds: [] });
  }
  const resId = dev.allocResId();
  const ctxId = kind.host3d ? (f.priv.ctx?.id ?? 0) : 0;
  let size = u64Number(a.size);
  let entries: { addr: number; length: number }[] = [];
  if (kind.guest) {
    size = pageUp(size); // shmem objects are page aligned
    entries = [{ addr: dev.allocGuestAddr(size), length: size }];
  }
  dev.host.submit({ cmd: 'RESOURCE_CREATE_BLOB', resId, ctxId, blobMem: a.blob_mem, blobFlags: a.blob_flags, blobId: a.blob_id, size: a.size, entries });
  const bo = dev.addObject(f, kind.guest ? guestKind : host3dKind, resId, size, a.blob_mem, a.blob_flags);
  bo.blobHints = kind.hints;
  // The host maps a MAPPABLE HOST3D blob at create, or at VIRTGPU_MAP / the first mmap under DEFER_MAPPING.
  if (hostMapped && !(kind.hints & V.VIRTGPU_BLOB_HINT_DEFER_MAPPING)) {
    const m = dev.memoryOf(bo);
    if (isErr(m)) { dev.gemClose(f, bo); return m; } // the kernel frees the object it could not map
  }
  a.bo_handle = bo.handle;
  a.res_handle = resId;
  return 0;
}
