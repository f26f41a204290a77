// _IOC encoding (asm-generic/ioctl.h, x86-64): dir:2 | size:14 | type:8 | nr:8.
export const IOC_NONE = 0;
export const IOC_WRITE = 1; // userspace writes, kernel reads: "IOC_IN"
export const IOC_READ = 2;  // kernel writes back: "IOC_OUT"
export const IOC_IN = IOC_WRITE << 30;
export const IOC_OUT = IOC_READ << 30;
export const IOC_SIZEMASK = 0x3fff;

export const DRM_IOCTL_BASE = 0x64; // 'd'
export const DRM_COMMAND_BASE = 0x40;
export const DRM_COMMAND_END = 0xa0;

export function IOC(dir: number, type: number, nr: number, size: number): number {
  if (size > IOC_SIZEMASK) throw new RangeError(`ioctl size ${size} does not fit _IOC`);
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const IOC_SIZE = (cmd: number): number => (cmd >>> 16) & IOC_SIZEMASK;
export const IOC_TYPE = (cmd: number): number => (cmd >>> 8) & 0xff;
export const IOC_NR = (cmd: number): number => cmd & 0xff;
