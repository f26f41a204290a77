// EXECBUFFER: checks as virtio_gpu_execbuffer_ioctl, then SUBMIT_3D to the host.
import { EFAULT, EINVAL, ENOENT, ENOMEM, ENOSYS, EOPNOTSUPP, isErr } from '../errno';
import { KMALLOC_MAX } from '../abi/limits';
import * as V from '../abi/virtgpu';
import type { Range } from '../drm/dispatch';
import { addrOf } from '../memory/client-memory';
import { driverRow } from './driver-row';

const HANDLE_SIZE = 4;

export const execbufferRow = driverRow('EXECBUFFER', V.drm_virtgpu_execbuffer, [ENOSYS, EINVAL, EOPNOTSUPP, EFAULT, ENOENT, ENOMEM], {
  pointers: (a) => {
    const r: Range[] = [];
    if (a.num_bo_handles * HANDLE_SIZE > KMALLOC_MAX || a.size > KMALLOC_MAX) return { in: [], out: [] };
    if (a.num_bo_handles) r.push({ addr: addrOf(a.bo_handles), len: a.num_bo_handles * HANDLE_SIZE });
    if (a.size) r.push({ addr: addrOf(a.command), len: a.size });
    return { in: r, out: [] };
  },
  handler: ({ dev, file: f, client, user }, a) => {
    if (!dev.profile.has3d) return ENOSYS;
    if (a.flags & ~V.VIRTGPU_EXECBUF_FLAGS) return EINVAL;
    let ringIdx = 0;
    if (a.flags & V.VIRTGPU_EXECBUF_RING_IDX) {
      const rings = f.priv.ctx?.numRings ?? f.priv.ctxParams.numRings ?? 0;
      if (a.ring_idx >= rings) return EINVAL;
      ringIdx = a.ring_idx;
    }
    a.fence_fd = -1;
    dev.ensureContext(f, client);
    // Fences and syncobjs are file descriptors / objects this transport cannot pass.
    if (a.num_in_syncobjs || a.num_out_syncobjs) return EOPNOTSUPP;
    if ((a.flags & (V.VIRTGPU_EXECBUF_FENCE_FD_IN | V.VIRTGPU_EXECBUF_FENCE_FD_OUT)) && !dev.caps.fdPassing) return EOPNOTSUPP;
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
    dev.host.submit({ cmd: 'SUBMIT_3D', ctxId: f.priv.ctx?.id ?? 0, ringIdx, data: cmd, resIds });
    return 0;
  },
});
