// Per-open-file state: GEM handles, the context, the userptr tree and work list.
import type { Device } from '../device';
import type { Client } from '../client';
import { GemObject, HandleIdr } from './gem';
import { UserptrTree } from '../userptr/interval-tree';
import { WorkList } from '../userptr/worklist';
import type { UserCopy } from '../memory/client-memory';
import type { IoctlResult, Preparation } from './dispatch';

export interface Context {
  id: number;
  /** context_init as sent in CTX_CREATE: the capset id (0 = default virgl context). */
  capsetId: number;
  numRings: number;
  ringMask: bigint;
  debugName: string;
}

/** CONTEXT_INIT parameters that stick to the file even when the ioctl fails later (as in the kernel's vfpriv). */
export interface PendingContextParams {
  capsetId: number | null;
  numRings: number | null;
  ringMask: bigint | null;
  debugName: string | null;
}

export class DrmFile {
  readonly handles = new HandleIdr<GemObject>();
  readonly tree = new UserptrTree();
  readonly work = new WorkList();
  ctx: Context | null = null;
  readonly ctxParams: PendingContextParams = { capsetId: null, numRings: null, ringMask: null, debugName: null };
  /** Clients (processes) that issued ioctls on this file; each holds a reference until close. */
  readonly clients = new Set<Client>();
  closed = false;

  constructor(readonly device: Device, readonly id: number, readonly opener: Client) {}

  /** Issue one ioctl as process `pid` (thread-group id). */
  ioctl(pid: number, cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlResult {
    return this.device.ioctl(this, pid, cmd, argIn, user);
  }

  /** Device.prepare for this file. */
  prepare(pid: number, cmd: number, argIn: Uint8Array): Preparation | null { return this.device.prepare(this, pid, cmd, argIn); }

  close(): void { this.device.closeFile(this); }
}
