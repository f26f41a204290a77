// EXECBUFFER: checks as virtio_gpu_execbuffer_ioctl, then SUBMIT_3D to the host with a fence per submission.
// FENCE_FD_OUT gives the client an fd of that fence, FENCE_FD_IN makes the submission wait for the client's fd
// (docs/semantics.md §11); both need a transport that passes fds (ctx.fds), else EOPNOTSUPP.
import { EFAULT, EINVAL, EMFILE, ENFILE, ENOENT, ENOMEM, ENOSYS, EOPNOTSUPP, isErr } from '../errno';
import { KMALLOC_MAX } from '../abi/limits';
import * as V from '../abi/virtgpu';
import type { Range } from '../drm/dispatch';
import { addrOf } from '../memory/client-memory';
import { driverRow } from './driver-row';
import type { Submission } from './fence';
import type { VirtgpuFile } from './fpriv';
import type { Vgdev } from './vgdev';

const HANDLE_SIZE = 4;
/**
 * Submissions a file may have waiting for in-fences; one more is ENOMEM **[decision]** (each may hold a client's fd
 * and up to KMALLOC_MAX command bytes in the server; the kernel holds one per blocked caller).
 */
export const MAX_WAITING = 256;
/** Where the kernel writes the out-fence fd: the struct's own field. */
const FENCE_FD_AT = V.drm_virtgpu_execbuffer.offsetOf('fence_fd');


export const execbufferRow = driverRow('EXECBUFFER', V.drm_virtgpu_execbuffer, [ENOSYS, EINVAL, EOPNOTSUPP, EFAULT, ENOENT, ENOMEM, EMFILE, ENFILE], {
  pointers: (a) => {
    const r: Range[] = [];
    if (a.num_bo_handles * HANDLE_SIZE > KMALLOC_MAX || a.size > KMALLOC_MAX) return { in: [], out: [] };
    if (a.num_bo_handles) r.push({ addr: addrOf(a.bo_handles), len: a.num_bo_handles * HANDLE_SIZE });
    if (a.size) r.push({ addr: addrOf(a.command), len: a.size });
    return { in: r, out: [] };
  },
  fdsIn: (a) => (a.flags & V.VIRTGPU_EXECBUF_FENCE_FD_IN ? [a.fence_fd] : []),
  handler: ({ dev, file: f, client, user, fds }, a) => {
    if (!dev.profile.has3d) return ENOSYS;
    if (a.flags & ~V.VIRTGPU_EXECBUF_FLAGS) return EINVAL;
    let ringIdx = 0;
    if (a.flags & V.VIRTGPU_EXECBUF_RING_IDX) {
      const rings = f.priv.ctx?.numRings ?? f.priv.ctxParams.numRings ?? 0;
      if (a.ring_idx >= rings) return EINVAL;
      ringIdx = a.ring_idx;
    }
    const inFd = a.fence_fd;
    a.fence_fd = -1;
    dev.ensureContext(f, client);
    // Syncobjs are objects this node does not implement; fence fds need a transport that passes fds.
    if (a.num_in_syncobjs || a.num_out_syncobjs) return EOPNOTSUPP;
    if ((a.flags & (V.VIRTGPU_EXECBUF_FENCE_FD_IN | V.VIRTGPU_EXECBUF_FENCE_FD_OUT)) && !fds) return EOPNOTSUPP;
    if (a.num_bo_handles * HANDLE_SIZE > KMALLOC_MAX || a.size > KMALLOC_MAX) return ENOMEM;
    const resIds: number[] = [];
    if (a.num_bo_handles) {
      const hb = user.read(addrOf(a.bo_handles), a.num_bo_handles * HANDLE_SIZE);
      if (isErr(hb)) return EFAULT;
      const dv = new DataView(hb.buffer, hb.byteOffset, hb.byteLength);
      for (let i = 0; i < a.num_bo_handles; i++) {
        const bo = f.handles.get(dv.getUint32(i * HANDLE_SIZE, true));
        if (!bo) return ENOENT;
        resIds.push(bo.resId);
      }
    }
    const cmd = a.size ? user.read(addrOf(a.command), a.size) : new Uint8Array(0);
    if (isErr(cmd)) return EFAULT;
    let inFence: Submission['inFence'] = null;
    if (f.priv.waiting.length >= MAX_WAITING) return ENOMEM;
    if (a.flags & V.VIRTGPU_EXECBUF_FENCE_FD_IN) {
      const r = fds!.inFence(inFd);
      if (isErr(r)) return r; // not a fence fd: EINVAL (sync_file_get_fence found none)
      inFence = r;
    }
    const ctxId = f.priv.ctx?.id ?? 0;
    const fence = dev.newFence(ctxId, ringIdx);
    if (a.flags & V.VIRTGPU_EXECBUF_FENCE_FD_OUT) {
      const e = fds!.install(FENCE_FD_AT, fence);
      if (e) { inFence?.release(); dev.fenceDone(fence.id); return e; }
    }
    enqueue(dev, f, { ctxId, ringIdx, data: cmd, resIds, fence, inFence, ready: inFence === null });
    return 0;
  },
});

/**
 * The submission goes to the host now, or waits behind the file's earlier waiting ones and its own in-fence
 * **[decision]**: the kernel blocks the ioctl until a foreign in-fence signals; here the ioctl returns and the
 * submission (with every later one of the file) waits, so no server thread blocks. Host order is the same.
 */
function enqueue(dev: Vgdev, f: VirtgpuFile, s: Submission): void {
  const q = f.priv.waiting;
  if (s.ready && q.length === 0) { dev.submitWithFence(s.ctxId, s.ringIdx, s.data, s.resIds, s.fence); return; }
  q.push(s);
  s.inFence?.wait(() => {
    s.inFence?.release();
    s.ready = true;
    if (!f.closed) pump(dev, f);
  });
}

/** Hand the ready submissions at the head of the file's queue to the host. */
function pump(dev: Vgdev, f: VirtgpuFile): void {
  const q = f.priv.waiting;
  while (q.length && q[0]!.ready) {
    const s = q.shift()!;
    dev.submitWithFence(s.ctxId, s.ringIdx, s.data, s.resIds, s.fence);
  }
}

/** File close: waiting submissions are dropped, their fences signalled (no client waits forever), in-fences let go. */
export function dropWaiting(dev: Vgdev, f: VirtgpuFile): void {
  const q = f.priv.waiting.splice(0);
  for (const s of q) { s.inFence?.release(); dev.fenceDone(s.fence.id); }
}
