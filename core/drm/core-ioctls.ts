// Core DRM ioctls a render node serves: VERSION, GEM_CLOSE, GET_CAP.
import { EFAULT, EINVAL } from '../errno';
import { IOC_READ, IOC_WRITE } from '../abi/ioc';
import { drm_gem_close, drm_get_cap, drm_version, DRM_CAP_PRIME, DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE, DRM_CAP_TIMESTAMP_MONOTONIC, DRM_NR_GEM_CLOSE, DRM_NR_GET_CAP, DRM_NR_VERSION, DRM_PRIME_CAP_EXPORT, DRM_PRIME_CAP_IMPORT } from '../abi/drm';
import { defineRow, type IoctlCtx, type Range } from './dispatch';
import type { GemDriver } from './gem';
import { addrOf } from '../memory/client-memory';

export const DRIVER = { major: 0, minor: 1, patch: 0, name: 'virtio_gpu', date: '0', desc: 'virtio GPU' } as const;
const enc = new TextEncoder();
const NAME = enc.encode(DRIVER.name), DATE = enc.encode(DRIVER.date), DESC = enc.encode(DRIVER.desc);
const NAME_LEN = BigInt(NAME.length), DATE_LEN = BigInt(DATE.length), DESC_LEN = BigInt(DESC.length);

/** drm_copy_field: bytes to copy = min(len, strlen) (no NUL), only when both the buffer and len are set. */
function copyLen(len: bigint, ptr: bigint, s: Uint8Array): number {
  if (ptr === 0n || len === 0n) return 0;
  return len < BigInt(s.length) ? Number(len) : s.length;
}

export const versionRow = defineRow({
  nr: DRM_NR_VERSION, name: 'DRM_IOCTL_VERSION', layout: drm_version, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [EFAULT],
  pointers: (a) => {
    const out: Range[] = [];
    const n = copyLen(a.name_len, a.name, NAME), d = copyLen(a.date_len, a.date, DATE), e = copyLen(a.desc_len, a.desc, DESC);
    if (n) out.push({ addr: addrOf(a.name), len: n });
    if (d) out.push({ addr: addrOf(a.date), len: d });
    if (e) out.push({ addr: addrOf(a.desc), len: e });
    return { in: [], out };
  },
  // Written out field by field: this is the no-op every benchmark and libdrm's drmGetVersion call.
  handler: ({ user }, a) => {
    a.version_major = DRIVER.major; a.version_minor = DRIVER.minor; a.version_patchlevel = DRIVER.patch;
    const n = copyLen(a.name_len, a.name, NAME), d = copyLen(a.date_len, a.date, DATE), e = copyLen(a.desc_len, a.desc, DESC);
    a.name_len = NAME_LEN; a.date_len = DATE_LEN; a.desc_len = DESC_LEN; // always the true lengths
    if (n && user.write(addrOf(a.name), NAME.subarray(0, n))) return EFAULT;
    if (d && user.write(addrOf(a.date), DATE.subarray(0, d))) return EFAULT;
    if (e && user.write(addrOf(a.desc), DESC.subarray(0, e))) return EFAULT;
    return 0;
  },
});

export const gemCloseRow = defineRow({
  nr: DRM_NR_GEM_CLOSE, name: 'DRM_IOCTL_GEM_CLOSE', layout: drm_gem_close, dir: IOC_WRITE, renderAllow: true,
  errnos: [EINVAL],
  handler: ({ dev, file }: IoctlCtx<GemDriver>, a) => {
    const bo = file.handles.get(a.handle);
    if (!bo) return EINVAL;
    dev.gemClose(file, bo);
    return 0;
  },
});

const CAPS: Readonly<Record<string, bigint>> = {
  [DRM_CAP_PRIME]: BigInt(DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT),
  [DRM_CAP_TIMESTAMP_MONOTONIC]: 1n, [DRM_CAP_SYNCOBJ]: 1n, [DRM_CAP_SYNCOBJ_TIMELINE]: 1n,
};
export const getCapRow = defineRow({
  nr: DRM_NR_GET_CAP, name: 'DRM_IOCTL_GET_CAP', layout: drm_get_cap, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [EINVAL],
  handler: (_c, a) => {
    const v = a.capability <= 0xffn ? CAPS[String(a.capability)] : undefined;
    if (v === undefined) return EINVAL; // [decision] only the caps a virtio-gpu render node reports
    a.value = v;
    return 0;
  },
});
