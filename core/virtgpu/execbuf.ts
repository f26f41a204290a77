// EXECBUFFER: checks as virtio_gpu_execbuffer_ioctl, then SUBMIT_3D to the host.
import { EFAULT, EINVAL, ENOENT, ENOMEM, ENOSYS, EOPNOTSUPP, isErr } from '../errno';
import { IOC_READ, IOC_WRITE } from '../abi/ioc';
import * as V from '../abi/virtgpu';
import { defineRow, type Range } from '../drm/dispatch';

const HANDLE_SIZE = 4;
/** kvmalloc() refuses anything above INT_MAX bytes: the kernel answers ENOMEM before touching user memory. */
export const KMALLOC_MAX = 0x7fffffff;

export const execbufferRow = defineRow({
  nr: V.DRM_COMMAND_BASE_OFFSET + V.DRM_VIRTGPU_EXECBUFFER, name: 'DRM_IOCTL_VIRTGPU_EXECBUFFER', layout: V.drm_virtgpu_execbuffer, dir: IOC_READ | IOC_WRITE, renderAllow: true,
  errnos: [ENOSYS, EINVAL, EOPNOTSUPP, EFAULT, ENOENT, ENOMEM],
  pointers: (a) => {
    const r: Range[] = [];
    if (a.num_bo_handles * HANDLE_SIZE > KMALLOC_MAX || a.size > KMALLOC_MAX) return { in: [], out: [] };
    if (a.num_bo_handles) r.push({ addr: Number(a.bo_handles), len: a.num_bo_handles * HANDLE_SIZE });
    if (a.size) r.push({ addr: Number(a.command), len: a.size });
    return { in: r, out: [] };
  },
  handler: ({ file: f, client, user }, a) => {
    const dev = f.device;
    if (!dev.profile.has3d) return ENOSYS;
    if (a.flags & ~V.VIRTGPU_EXECBUF_FLAGS) return EINVAL;
    let ringIdx = 0;
    if (a.flags & V.VIRTGPU_EXECBUF_RING_IDX) {
      const rings = f.ctx?.numRings ?? f.ctxParams.numRings ?? 0;
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
      const hb = user.read(Number(a.bo_handles), a.num_bo_handles * HANDLE_SIZE);
      if (isErr(hb)) return EFAULT;
      const dv = new DataView(hb.buffer, hb.byteOffset, hb.byteLength);
      for (let i = 0; i < a.num_bo_handles; i++) {
        const bo = f.handles.get(dv.getUint32(i * HANDLE_SIZE, true));
        if (!bo) return ENOENT;
        resIds.push(bo.resId);
      }
    }
    const cmd = a.size ? user.read(Number(a.command), a.size) : new Uint8Array(0);
    if (isErr(cmd)) return EFAULT;
    dev.host.submit({ cmd: 'SUBMIT_3D', ctxId: f.ctx?.id ?? 0, ringIdx, data: cmd, resIds });
    return 0;
  },
});
