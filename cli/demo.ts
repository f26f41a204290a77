// `demo` (npm start): the doctor table, then a few ioctls through the in-process transport.
import { drm_version } from '../core/abi/drm';
import { drm_virtgpu_getparam, VIRTGPU_PARAM_3D_FEATURES, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, DRM_VIRTGPU_GETPARAM } from '../core/abi/virtgpu';
import { IOC, IOC_READ, IOC_WRITE, DRM_IOCTL_BASE, DRM_COMMAND_BASE } from '../core/abi/ioc';
import { DRM_NR_VERSION } from '../core/abi/drm';
import { openDevice } from '../cuse-dev/transport/in-process';
import type { UserCopy } from '../core/memory/client-memory';
import { EFAULT } from '../core/errno';
import { doctor } from './doctor';

/** A scratch "address space" for the demo's embedded pointers. */
function scratch(): UserCopy & { mem: Map<number, Uint8Array> } {
  const mem = new Map<number, Uint8Array>();
  return {
    mem,
    read: (a, l) => mem.get(a)?.slice(0, l) ?? EFAULT,
    write: (a, d) => { mem.set(a, d.slice()); return undefined; },
  };
}

export function demo(): number {
  doctor();
  const node = openDevice();
  const user = scratch();
  const v = drm_version.encode({ ...drm_version.zero(), name_len: 32n, name: 0x1000n });
  const r = node.ioctl(IOC(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, DRM_NR_VERSION, drm_version.size), v, user);
  const dv = drm_version.decode(v);
  process.stdout.write(`\nin-process DRM_IOCTL_VERSION -> ${r}: ${dv.version_major}.${dv.version_minor}.${dv.version_patchlevel} "${Buffer.from(user.mem.get(0x1000) ?? []).toString()}"\n`);
  for (const [name, param] of [['SUPPORTED_CAPSET_IDs', VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs], ['3D_FEATURES', VIRTGPU_PARAM_3D_FEATURES]] as const) {
    const g = drm_virtgpu_getparam.encode({ param: BigInt(param), value: 0x2000n });
    const rr = node.ioctl(IOC(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_GETPARAM, drm_virtgpu_getparam.size), g, user);
    const val = user.mem.get(0x2000);
    process.stdout.write(`in-process VIRTGPU_GETPARAM(${name}) -> ${rr}: ${val ? new DataView(val.buffer).getInt32(0, true) : '?'}\n`);
  }
  node.close();
  return 0;
}
