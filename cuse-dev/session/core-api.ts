// The slice of core's public API the session uses, so the session can be driven by the real Device (core/index.ts)
// or by a test double: core's own types where they fit, the device's calls stated structurally. The one place that
// knows what core calls these things.
import type { Device, DeviceFile, Errno, Stats } from '../../core';
import type { UserCopy } from '../../core/memory/client-memory';

/** dev.plan(): struct bytes to fetch/return at `arg`, plus embedded user ranges (prefix-stable as more data arrives). */
export type IoctlPlan = Exclude<ReturnType<Device['plan']>, Errno>;

/** An open file as the session holds it: core's DeviceFile's calls; prepare() and map() are optional for test doubles. */
export type CoreFile = Pick<DeviceFile, 'ioctl' | 'close'> & Partial<Pick<DeviceFile, 'prepare' | 'map'>>;

export interface CoreDevice {
  open(pid: number): CoreFile;
  plan(cmd: number, argIn: Uint8Array | null, file: CoreFile, user: UserCopy): Errno | IoctlPlan;
  /** Drain + run a client's work now (async watcher wake-ups). */
  service(pid: number): void;
  counts(): object;
  snapshot(): unknown;
  shutdown(): void;
  /** Core's running totals (clients, ioctls, userptrs created/split/evicted/unmapped…); test doubles may have none. */
  readonly stats?: Readonly<Stats>;
}
