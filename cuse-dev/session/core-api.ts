// The slice of core's public API the session uses, stated structurally so the session can be driven by the real
// Device (core/index.ts) or by a test double. The one place that knows what core calls these things.
import type { Errno } from '../../core/errno';
import type { UserCopy } from '../../core/memory/client-memory';

export interface Range { addr: number; len: number }

/** dev.plan(): struct bytes to fetch/return at `arg`, plus embedded user ranges (prefix-stable as more data arrives). */
export interface IoctlPlan { inSize: number; outSize: number; in: Range[]; out: Range[] }

export interface IoctlOutcome { result: number | Errno; out: Uint8Array }

/** Long work an ioctl would do first, in bounded steps: step() until it returns true, then issue the ioctl. */
export interface CorePreparation { step(): boolean }

export interface CoreFile {
  ioctl(pid: number, cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlOutcome;
  /** The ioctl's preparation when it would run long (a big userptr create), else null. Optional for test doubles. */
  prepare?(pid: number, cmd: number, argIn: Uint8Array): CorePreparation | null;
  close(): void;
}

export interface CoreDevice {
  open(pid: number): CoreFile;
  plan(cmd: number, argIn: Uint8Array | null, file: CoreFile, user: UserCopy): Errno | IoctlPlan;
  /** Drain + run a client's work now (async watcher wake-ups). */
  service(pid: number): void;
  counts(): object;
  snapshot(): unknown;
  shutdown(): void;
  /** Core's running totals (clients, ioctls, userptrs created/split/evicted/unmapped…), when it has them. */
  stats?: object | (() => object);
  /** Live clients by pid, with their watcher (the loop waits for memory events only while ranges are watched). */
  readonly clients?: ReadonlyMap<number, { events: { registrations(): number } }>;
}

export function statsOf(dev: CoreDevice): Record<string, number> {
  const s: unknown = dev.stats;
  if (!s) return {};
  const v: unknown = typeof s === 'function' ? (s as () => object).call(dev) : s;
  return { ...(v as Record<string, number>) };
}
