// An open file of the render node (the kernel's drm_file): GEM handles, the processes that used it, and the
// driver's per-file state as `priv` (drm_file.driver_priv).
import type { Client } from '../client';
import { GemObject, HandleIdr } from './gem';

export class DrmFile<P = any> {
  readonly handles = new HandleIdr<GemObject>();
  /** Clients (processes) that issued ioctls on this file; each holds a reference until close. */
  readonly clients = new Set<Client>();
  closed = false;

  constructor(readonly id: number, readonly opener: Client, readonly priv: P) {}
}
