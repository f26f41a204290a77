// Memory the server shares with clients for a mappable BO (the host-visible memory of a HOST3D MAPPABLE blob, the
// pages of a guest blob): the host reads and writes `bytes`, a transport that can map hands `fd` to the client.
// core allocates it through the BlobMemoryAllocator the composition root passes in (a memfd per blob in a serving
// process, uffd/blob-memfd.ts; ArrayBuffer-backed here for core tests and callers that never map).
import { ENOMEM, type Errno } from '../errno';

export interface BlobMemory {
  readonly size: number;
  /** The bytes as the host sees them (length `size`); a view of length 0 once released. */
  readonly bytes: Uint8Array;
  /** The file a transport hands to a client to map (a memfd); absent when it cannot be mapped outside this process. */
  readonly fd?: number;
  /**
   * The server lets go (the BO is released). Mappings a client made of `fd` keep the pages, as a real driver keeps
   * them until the last munmap. Called once.
   */
  release(): void;
}

export interface BlobMemoryAllocator {
  /** `size` bytes (page aligned, > 0), zero-filled; ENOMEM when the server cannot provide them. `name` labels the memfd. */
  alloc(size: number, name: string): BlobMemory | Errno;
}

/** Largest ArrayBuffer this allocator hands out (larger requests: ENOMEM). */
const ARRAY_BLOB_MAX = 2 ** 31;

/** Memory in this process only (no fd): core tests and the in-process transport without the native addon. */
export const arrayBlobMemory: BlobMemoryAllocator = {
  alloc(size: number): BlobMemory | Errno {
    if (size > ARRAY_BLOB_MAX) return ENOMEM;
    let bytes = new Uint8Array(size);
    return {
      size,
      get bytes() { return bytes; },
      release() { bytes = new Uint8Array(0); },
    };
  },
};
