// DRM_IOCTL_DEF_DRV for this driver: a driver ioctl's row from its name (nr = DRM_COMMAND_BASE + DRM_VIRTGPU_<name>),
// struct, errnos and handler. Every virtio-gpu ioctl is _IOWR and allowed on the render node.
import type { Errno } from '../errno';
import { DRM_COMMAND_BASE, IOC_READ, IOC_WRITE } from '../abi/ioc';
import type { Struct } from '../abi/layout';
import * as V from '../abi/virtgpu';
import { defineRow, type IoctlRow } from '../drm/dispatch';
import type { VirtgpuCtx } from './vgdev';

type NameOf<K> = K extends `DRM_VIRTGPU_${infer N}` ? N : never;
/** The driver's ioctl names, as in virtgpu_drm.h without the DRM_VIRTGPU_ prefix. */
export type VirtgpuIoctl = NameOf<keyof typeof V>;

export type DriverOps<T> = Pick<IoctlRow<T, VirtgpuCtx>, 'handler' | 'pointers' | 'prepare' | 'fdsIn'>;

export function driverRow<T>(name: VirtgpuIoctl, layout: Struct<T>, errnos: readonly Errno[], ops: DriverOps<T>): IoctlRow<T, VirtgpuCtx> {
  const nr: number = V[`DRM_VIRTGPU_${name}`];
  return defineRow<T, VirtgpuCtx>({ nr: DRM_COMMAND_BASE + nr, name: `DRM_IOCTL_VIRTGPU_${name}`, layout, dir: IOC_READ | IOC_WRITE, renderAllow: true, errnos, ...ops });
}
