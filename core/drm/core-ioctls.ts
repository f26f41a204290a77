// Core DRM ioctls a render node serves: VERSION, GEM_CLOSE, GET_CAP.
import { EFAULT, EINVAL, isErr } from '../errno';
import { IOC_READ, IOC_WRITE } from '../abi/ioc';
import { drm_gem_close, drm_get_cap, drm_version, DRM_CAP_PRIME, DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE, DRM_CAP_TIMESTAMP_MONOTONIC, DRM_NR_GEM_CLOSE, DRM_NR_GET_CAP, DRM_NR_VERSION, DRM_PRIME_CAP_EXPORT, DRM_PRIME_CAP_IMPORT } from '../abi/drm';
import { defineRow, type Range } from './dispatch';

export const DRIVER = { major: 0, minor: 1, patch: 0, name: 'virtio_gpu', date: '0', desc: 'virtio GPU' } as const;
const enc = new TextEncoder();
type V = ReturnType<typeof drm_version.zero>;
/** The three strings drm_version returns, with the struct fields that carry each one's length and pointer. */
const FIELDS = [
  { bytes: enc.encode(DRIVER.name), len: 'name_len', ptr: 'name' },
  { bytes: enc.encode(DRIVER.date), len: 'date_len', ptr: 'date' },
  { bytes: enc.encode(DRIVER.desc), len: 'desc_len', ptr: 'desc' },
].map((f) => ({ ...f, trueLen: BigInt(f.bytes.length) })) as { bytes: Uint8Array; len: 'name_len' | 'date_len' | 'desc_len'; ptr: 'name' | 'date' | 'desc'; trueLen: bigint }[];

/** drm_copy_field: copy min(len, strlen) bytes (no NUL) when buf and len are set; always report the true length. */
function versionRanges(a: V): Range[] {
  const r: Range[] = [];
  for (const f of FIELDS) {
    const len = a[f.len] < f.trueLen ? Number(a[f.len]) : f.bytes.length;
    if (len > 0 && a[f.ptr] !== 0n) r.push({ addr: Number(a[f.ptr]), len });
  }
  return r;
}

export const versionRow = defineRow({
  nr: DRM_NR_VERSION, name: 'DRM_IOCTL_VERSION', layout: drm_version, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [EFAULT],
  pointers: (a) => ({ in: [], out: versionRanges(a) }),
  handler: ({ user }, a) => {
    a.version_major = DRIVER.major; a.version_minor = DRIVER.minor; a.version_patchlevel = DRIVER.patch;
    for (const f of FIELDS) {
      const len = a[f.len] < f.trueLen ? Number(a[f.len]) : f.bytes.length;
      a[f.len] = f.trueLen;
      if (len > 0 && a[f.ptr] !== 0n && user.write(Number(a[f.ptr]), f.bytes.subarray(0, len))) return EFAULT;
    }
    return 0;
  },
});

export const gemCloseRow = defineRow({
  nr: DRM_NR_GEM_CLOSE, name: 'DRM_IOCTL_GEM_CLOSE', layout: drm_gem_close, dir: IOC_WRITE, renderAllow: true,
  errnos: [EINVAL],
  handler: ({ file }, a) => {
    const bo = file.handles.get(a.handle);
    if (!bo) return EINVAL;
    file.device.gemClose(file, bo);
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
void isErr;
