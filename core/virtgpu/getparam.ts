// GETPARAM and GET_CAPS, answered from the device profile.
import { EFAULT, EINVAL, ENOENT, ENOSYS, type Errno, isErr } from '../errno';
import * as V from '../abi/virtgpu';
import { addrOf, u64Number } from '../memory/client-memory';
import { capsetMask, type DeviceProfile } from './profile';
import type { UapiRevision } from './uapi';
import { driverRow } from './driver-row';

/** A parameter's value from the device profile; 9 depends on the uAPI revision (its `param9`). */
export function paramValue(p: DeviceProfile, r: UapiRevision, param: bigint): number | Errno {
  // A switch on the number (no bigint made or compared per call); values ≥ 2^53 stay far from 1..9.
  switch (u64Number(param)) {
    case V.VIRTGPU_PARAM_3D_FEATURES: return p.has3d ? 1 : 0;
    case V.VIRTGPU_PARAM_CAPSET_QUERY_FIX: return 1;
    case V.VIRTGPU_PARAM_RESOURCE_BLOB: return p.resourceBlob ? 1 : 0;
    case V.VIRTGPU_PARAM_HOST_VISIBLE: return p.hostVisible ? 1 : 0;
    case V.VIRTGPU_PARAM_CROSS_DEVICE: return p.crossDevice ? 1 : 0;
    case V.VIRTGPU_PARAM_CONTEXT_INIT: return p.contextInit ? 1 : 0;
    case V.VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs: return capsetMask(p) | 0;
    case V.VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME: return p.contextInit ? 1 : 0;
    case 9: return param9(p, r);
    default: return EINVAL;
  }
}

/** v3's RESOURCE_USERPTR, 7.2's BLOB_ALIGNMENT (ENOENT when the device declares none), or no such parameter. */
function param9(p: DeviceProfile, r: UapiRevision): number | Errno {
  switch (r.param9) {
    case 'einval': return EINVAL;
    case 'resource-userptr': return p.resourceUserptr ? 1 : 0;
    case 'blob-alignment': return p.blobAlignment ?? ENOENT;
  }
}

const INT_SIZE = 4; // the kernel copies sizeof(int) to `value`, not a u64

export const getparamRow = driverRow('GETPARAM', V.drm_virtgpu_getparam, [EINVAL, ENOENT, EFAULT], {
  pointers: (a, { dev }) => (isErr(paramValue(dev.profile, dev.uapi, a.param)) ? { in: [], out: [] } : { in: [], out: [{ addr: addrOf(a.value), len: INT_SIZE }] }),
  handler: ({ dev, user }, a) => {
    const v = paramValue(dev.profile, dev.uapi, a.param);
    if (isErr(v)) return v;
    // The int's bytes, little endian, written one by one: a DataView would make V8 materialize the array's buffer.
    const b = new Uint8Array(INT_SIZE);
    b[0] = v & 0xff; b[1] = (v >>> 8) & 0xff; b[2] = (v >>> 16) & 0xff; b[3] = (v >>> 24) & 0xff;
    return user.write(addrOf(a.value), b) ? EFAULT : 0;
  },
});

function findCapset(p: DeviceProfile, id: number, ver: number) {
  return p.capsets.find((c) => c.id === id && c.maxVersion >= ver);
}

export const getCapsRow = driverRow('GET_CAPS', V.drm_virtgpu_get_caps, [ENOSYS, EINVAL, EFAULT], {
  pointers: (a, { dev }) => {
    const c = a.size ? findCapset(dev.profile, a.cap_set_id, a.cap_set_ver) : undefined;
    return { in: [], out: c ? [{ addr: addrOf(a.addr), len: Math.min(a.size, c.blob.length) }] : [] };
  },
  handler: ({ dev, user }, a) => {
    if (dev.profile.capsets.length === 0) return ENOSYS;
    if (a.size === 0) return EINVAL;
    const c = findCapset(dev.profile, a.cap_set_id, a.cap_set_ver);
    if (!c) return EINVAL;
    return user.write(addrOf(a.addr), c.blob.subarray(0, Math.min(a.size, c.blob.length))) ? EFAULT : 0;
  },
});
