// CONTEXT_INIT (virtio_gpu_context_init_ioctl): params stick to the file as they are parsed, as in the kernel.
import { EEXIST, EFAULT, EINVAL, isErr } from '../errno';
import * as V from '../abi/virtgpu';
import type { Range } from '../drm/dispatch';
import { addrOf, PAGE_SIZE } from '../memory/client-memory';
import { driverRow } from './driver-row';

const MAX_PARAMS = 4; // "Number of unique parameters supported at this time."
const MAX_CAPSET_ID = 63;
const P = V.drm_virtgpu_context_set_param;

/** DEBUG_NAME strings are read up to 64 bytes, clipped at the page end (strncpy_from_user stops at the NUL). */
function nameRange(addr: number): Range { return { addr, len: Math.min(V.VIRTGPU_DEBUG_NAME_MAX, PAGE_SIZE - (addr % PAGE_SIZE)) }; }

export const contextInitRow = driverRow('CONTEXT_INIT', V.drm_virtgpu_context_init, [EINVAL, EFAULT, EEXIST], {
  pointers: (a, { user }) => {
    if (a.num_params === 0 || a.num_params > MAX_PARAMS) return { in: [], out: [] };
    const arr: Range = { addr: addrOf(a.ctx_set_params), len: a.num_params * P.size };
    const bytes = user.read(arr.addr, arr.len);
    const r = [arr];
    if (!isErr(bytes)) for (let i = 0; i < a.num_params; i++) {
      const p = P.decode(bytes, i * P.size);
      if (p.param === BigInt(V.VIRTGPU_CONTEXT_PARAM_DEBUG_NAME)) r.push(nameRange(addrOf(p.value)));
    }
    return { in: r, out: [] };
  },
  handler: ({ dev, file, client, user }, a) => {
    const prof = dev.profile;
    if (!prof.contextInit || !prof.has3d) return EINVAL;
    if (a.num_params > MAX_PARAMS) return EINVAL;
    let bytes: Uint8Array = new Uint8Array(0);
    if (a.num_params) {
      const b = user.read(addrOf(a.ctx_set_params), a.num_params * P.size);
      if (isErr(b)) return EFAULT;
      bytes = b;
    }
    if (file.priv.ctx) return EEXIST;
    const st = file.priv.ctxParams;
    for (let i = 0; i < a.num_params; i++) {
      const p = P.decode(bytes, i * P.size);
      const value32 = Number(p.value & 0xffffffffn);
      switch (p.param) {
        case BigInt(V.VIRTGPU_CONTEXT_PARAM_CAPSET_ID):
          if (value32 > MAX_CAPSET_ID) return EINVAL;
          if (!prof.capsets.some((c) => c.id === value32)) return EINVAL; // capset_id_mask & (1 << value)
          if (st.capsetId !== null) return EINVAL;
          st.capsetId = value32;
          break;
        case BigInt(V.VIRTGPU_CONTEXT_PARAM_NUM_RINGS):
          if (st.numRings !== null) return EINVAL;
          if (value32 > V.VIRTGPU_MAX_RINGS) return EINVAL;
          st.numRings = value32;
          break;
        case BigInt(V.VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK):
          if (st.ringMask !== null) return EINVAL;
          st.ringMask = p.value;
          break;
        case BigInt(V.VIRTGPU_CONTEXT_PARAM_DEBUG_NAME): {
          if (st.debugName !== null) return EINVAL;
          const r = nameRange(addrOf(p.value));
          const s = user.read(r.addr, r.len);
          if (isErr(s)) return EFAULT;
          const nul = s.indexOf(0);
          st.debugName = Buffer.from(s.subarray(0, nul < 0 ? V.VIRTGPU_DEBUG_NAME_MAX - 1 : Math.min(nul, V.VIRTGPU_DEBUG_NAME_MAX - 1))).toString('latin1');
          break;
        }
        default:
          return EINVAL;
      }
    }
    if (st.ringMask !== null && st.ringMask !== 0n) {
      const valid = (1n << BigInt(st.numRings ?? 0)) - 1n;
      if ((st.ringMask & ~valid) !== 0n) return EINVAL;
    }
    dev.createContext(file, client, st.capsetId ?? 0, st.numRings ?? 0, st.ringMask ?? 0n, st.debugName);
    return 0;
  },
});
