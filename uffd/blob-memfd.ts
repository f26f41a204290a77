// Blob memory of a serving process: one sealed memfd per mappable BO, mapped into the server (the host reads and
// writes `bytes`); the transport hands the memfd to the client, which maps it where it wants. release() unmaps and
// closes the server's side; a client's mappings keep the pages until its munmap (the memfd's own references).
import { ENOMEM, type Errno } from '../core/errno';
import type { BlobMemory, BlobMemoryAllocator } from '../core/memory/blob-memory';
import type { UffdBinding } from './native-types';

const EMPTY = new Uint8Array(0);

export interface MemfdBlobMemoryOptions {
  /** Told once per failure kind (errno) that an allocation failed and was answered ENOMEM. */
  onError?: (code: string, message: string) => void;
}

export function memfdBlobMemory(b: UffdBinding, opts: MemfdBlobMemoryOptions = {}): BlobMemoryAllocator {
  return {
    alloc(size: number, name: string): BlobMemory | Errno {
      let r: { id: number; fd: number; buffer: ArrayBuffer | null };
      try {
        r = b.sharedMemCreate(name, size);
      } catch (e) {
        // EMFILE/ENFILE (no fd left), ENOMEM, ENOSPC: the server cannot provide the memory.
        opts.onError?.((e as { code?: string }).code ?? 'EIO', (e as Error).message);
        return ENOMEM;
      }
      // Above 4 GiB the server holds the memfd unmapped: clients map it, the host sees no bytes (bytes is empty).
      let bytes: Uint8Array = r.buffer ? new Uint8Array(r.buffer) : EMPTY;
      let fd: number | undefined = r.fd;
      return {
        size,
        get bytes() { return bytes; },
        get fd() { return fd; },
        release() {
          if (fd === undefined) return;
          fd = undefined;
          bytes = EMPTY;
          b.sharedMemRelease(r.id, r.buffer);
        },
      };
    },
  };
}
