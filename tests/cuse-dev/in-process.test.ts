// The in-process transport: ioctl(2) semantics for JS/TS callers, with this process as the client — its real
// memory and its own userfaultfd (the default watcher), so a munmap here invalidates the BO as over FUSE/CUSE.
import test from 'ava';
import * as os from 'os';
import { openDevice } from '../../cuse-dev/transport/in-process';
import { loadUffd } from '../../uffd/load';
import * as B from '../helpers/bytes';
import { reservation } from '../uffd/helpers/reservation';

const u = loadUffd();
const C = u.constants;
const PG = 4096;
const errno = (code: string): number => -(os.constants.errno as Record<string, number>)[code];

test.serial('GETPARAM writes 4 bytes into our memory; -errno and copy-back on failure', (t) => {
  const node = openDevice();
  try {
    const out = Buffer.alloc(8, 0xee);
    const arg = B.getparam(1 /* 3D_FEATURES */, u.bufferAddress(out));
    t.is(node.ioctl(B.VIRTGPU_GETPARAM, arg), 0);
    t.is(out.readInt32LE(0), 1);
    t.is(out[4], 0xee, 'exactly sizeof(int) written');
    const info = B.resourceInfo(42);
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_INFO, info), errno('ENOENT'));
    t.is(new B.R(info).u32(0), 42, 'struct copied back on failure');
  } finally {
    node.close();
  }
});

test.serial('a userptr over our own mmap: dedup +3, then our munmap deletes it (own userfaultfd), counts back to zero', async (t) => {
  const node = openDevice();
  const R = reservation();
  const a = R.map(8, { touch: false });
  try {
    const params = B.ctxParams([[1, 8]]);
    t.is(node.ioctl(B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, u.bufferAddress(Buffer.from(params.buffer)))), 0);
    const blob = B.createBlob({ blobMem: 3, flags: 8, size: 8 * PG, userptr: a, blobId: 1 });
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_CREATE_BLOB, blob), 0);
    const bo = B.blobOut(blob);
    const inner = B.createBlob({ blobMem: 3, flags: 8, size: 16, userptr: a + 3 * PG + 5, blobId: 2 });
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_CREATE_BLOB, inner), 3);
    t.is(B.blobOut(inner).handle, bo.handle);
    t.is(B.blobOut(inner).offset, BigInt(3 * PG));
    R.munmap(a, 8 * PG); // a real munmap: returns once our reader thread has read the UNMAP event
    R.refill(a, 8 * PG);
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_INFO, B.resourceInfo(bo.handle)), errno('ENOENT'));
    t.is(node.device.counts().handles, 0);
  } finally {
    node.close();
  }
  t.like(node.device.counts(), { files: 0, clients: 0, handles: 0, resources: 0, pins: 0, registrations: 0, queued: 0 });
});
