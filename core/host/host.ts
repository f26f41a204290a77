// The virtio-gpu commands the guest driver would queue to the host (docs/semantics.md §8), as decoded objects.
// Pluggable: the default RecordingHost keeps the ordered log; an emulated HSAKMT host can implement the same.
import type { BlobMemory } from '../memory/blob-memory';
import type { ClientMemory } from '../memory/client-memory';

export interface Box { x: number; y: number; z: number; w: number; h: number; d: number }
export interface MemEntry { addr: number; length: number }

export type HostCommand =
  | { cmd: 'CTX_CREATE'; ctxId: number; contextInit: number; debugName: string }
  | { cmd: 'CTX_DESTROY'; ctxId: number }
  /** userptr: a userptr resource's address in the client as created (its pages: from its page to the page of its end) (what a host maps it at; absent for other blobs). */
  | { cmd: 'RESOURCE_CREATE_BLOB'; resId: number; ctxId: number; blobMem: number; blobFlags: number; blobId: bigint; size: bigint; entries: MemEntry[]; userptr?: number }
  | { cmd: 'RESOURCE_CREATE_3D'; resId: number; ctxId: number; target: number; format: number; bind: number; width: number; height: number; depth: number; arraySize: number; lastLevel: number; nrSamples: number; flags: number }
  | { cmd: 'CTX_ATTACH_RESOURCE'; ctxId: number; resId: number }
  | { cmd: 'CTX_DETACH_RESOURCE'; ctxId: number; resId: number }
  | { cmd: 'RESOURCE_UNREF'; resId: number }
  /** fenceId: the submission is fenced (VIRTIO_GPU_FLAG_FENCE); the host reports its completion through attach's callback. */
  | { cmd: 'SUBMIT_3D'; ctxId: number; ringIdx: number; data: Uint8Array; resIds: number[]; fenceId?: number }
  /** A HOST3D blob's host-visible memory is mapped (at create, or at the first map under DEFER_MAPPING) / unmapped before UNREF. */
  | { cmd: 'RESOURCE_MAP_BLOB'; resId: number; size: number }
  | { cmd: 'RESOURCE_UNMAP_BLOB'; resId: number }
  | { cmd: 'TRANSFER_TO_HOST_3D' | 'TRANSFER_FROM_HOST_3D'; ctxId: number; resId: number; box: Box; level: number; offset: bigint; stride: number; layerStride: number };

export type HostCommandName = HostCommand['cmd'];

export interface Host {
  submit(c: HostCommand): void;
  /**
   * The device's completion callback, given once at device creation: the host calls it with a SUBMIT_3D's fenceId
   * when that submission completed. A host without it completes every submission as it takes it.
   */
  attach?(fenceDone: (fenceId: number) => void): void;
  /** The memory of resource resId the host reads and writes (shared with the client's mappings), valid until RESOURCE_UNREF. */
  attachMemory?(resId: number, memory: BlobMemory): void;
  /** Bytes of client data the host holds now (shown in snapshots; a host that keeps nothing omits it). */
  retainedBytes?(): number;
  /** The process a context was created for (right after its CTX_CREATE): a host that answers reads its mappings. */
  attachContext?(ctxId: number, client: HostClient): void;
  /** The host's own objects (per context: registrations, mappings, allocations), for snapshots; plain data. */
  objects?(): unknown;
  /** Counts of the host's own objects, back to 0 once the clients are gone (shown in snapshots). */
  counts?(): Record<string, number>;
}

/** What a host may know of a context's process. */
export interface HostClient { readonly pid: number; readonly memory: ClientMemory }
