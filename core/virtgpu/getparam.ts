// GETPARAM and GET_CAPS, answered from the device profile.
import { EFAULT, EINVAL, ENOSYS } from '../errno';
import { IOC_READ, IOC_WRITE } from '../abi/ioc';
import * as V from '../abi/virtgpu';
import { defineRow, type IoctlCtx } from '../drm/dispatch';
import { capsetMask, type DeviceProfile } from './profile';

export function paramValue(p: DeviceProfile, param: bigint): number | null {
  switch (param) {
    case BigInt(V.VIRTGPU_PARAM_3D_FEATURES): return p.has3d ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_CAPSET_QUERY_FIX): return 1;
    case BigInt(V.VIRTGPU_PARAM_RESOURCE_BLOB): return p.resourceBlob ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_HOST_VISIBLE): return p.hostVisible ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_CROSS_DEVICE): return p.crossDevice ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_CONTEXT_INIT): return p.contextInit ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs): return capsetMask(p) | 0;
    case BigInt(V.VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME): return p.contextInit ? 1 : 0;
    case BigInt(V.VIRTGPU_PARAM_RESOURCE_USERPTR): return p.resourceUserptr ? 1 : 0;
    default: return null;
  }
}

const INT_SIZE = 4; // the kernel copies sizeof(int) to `value`, not a u64

export const getparamRow = defineRow({
  nr: V.DRM_COMMAND_BASE_OFFSET + V.DRM_VIRTGPU_GETPARAM, name: 'DRM_IOCTL_VIRTGPU_GETPARAM', layout: V.drm_virtgpu_getparam, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [EINVAL, EFAULT],
  pointers: (a, { file }) => (paramValue(file.device.profile, a.param) === null ? { in: [], out: [] } : { in: [], out: [{ addr: Number(a.value), len: INT_SIZE }] }),
  handler: ({ file, user }, a) => {
    const v = paramValue(file.device.profile, a.param);
    if (v === null) return EINVAL;
    const b = new Uint8Array(INT_SIZE);
    new DataView(b.buffer).setInt32(0, v, true);
    return user.write(Number(a.value), b) ? EFAULT : 0;
  },
});

function findCapset(ctx: IoctlCtx, id: number, ver: number) {
  return ctx.file.device.profile.capsets.find((c) => c.id === id && c.maxVersion >= ver);
}

export const getCapsRow = defineRow({
  nr: V.DRM_COMMAND_BASE_OFFSET + V.DRM_VIRTGPU_GET_CAPS, name: 'DRM_IOCTL_VIRTGPU_GET_CAPS', layout: V.drm_virtgpu_get_caps, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [ENOSYS, EINVAL, EFAULT],
  pointers: (a, ctx) => {
    const c = a.size ? findCapset(ctx, a.cap_set_id, a.cap_set_ver) : undefined;
    return { in: [], out: c ? [{ addr: Number(a.addr), len: Math.min(a.size, c.blob.length) }] : [] };
  },
  handler: (ctx, a) => {
    if (ctx.file.device.profile.capsets.length === 0) return ENOSYS;
    if (a.size === 0) return EINVAL;
    const c = findCapset(ctx, a.cap_set_id, a.cap_set_ver);
    if (!c) return EINVAL;
    return ctx.user.write(Number(a.addr), c.blob.subarray(0, Math.min(a.size, c.blob.length))) ? EFAULT : 0;
  },
});
