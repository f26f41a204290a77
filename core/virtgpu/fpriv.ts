// The driver's per-file state (the kernel's virtio_gpu_fpriv): the context, the CONTEXT_INIT parameters given so far,
// the userptr interval tree and the work list. A DrmFile carries it as `priv`.
import type { DrmFile } from '../drm/file';
import { UserptrTree } from '../userptr/interval-tree';
import { WorkList } from '../userptr/worklist';
import type { Submission } from './fence';

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

export class Fpriv {
  ctx: Context | null = null;
  readonly ctxParams: PendingContextParams = { capsetId: null, numRings: null, ringMask: null, debugName: null };
  readonly tree = new UserptrTree();
  readonly work = new WorkList();
  /** EXECBUFFER submissions waiting for an in-fence, in order (core/virtgpu/execbuf.ts). */
  readonly waiting: Submission[] = [];
}

/** An open file of this driver. */
export type VirtgpuFile = DrmFile<Fpriv>;
