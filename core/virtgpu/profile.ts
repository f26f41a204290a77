// Device profiles are data (drm-shim style): what the device and host offer, as GETPARAM and GET_CAPS report it.
// How the kernel reads the client's bytes is the other axis, the uAPI revision (uapi.ts).
import { virtio_gpu_hsakmt_capset, VIRTIO_GPU_CAPSET_HSAKMT, VIRTIO_GPU_CAPSET_VIRGL2, VIRTIO_GPU_CAPSET_VIRGL } from '../abi/virtgpu';

export interface Capset { id: number; maxVersion: number; blob: Uint8Array }

export interface DeviceProfile {
  readonly name: string;
  readonly has3d: boolean;          // VIRTGPU_PARAM_3D_FEATURES (has_virgl_3d)
  readonly resourceBlob: boolean;   // VIRTGPU_PARAM_RESOURCE_BLOB
  readonly hostVisible: boolean;    // VIRTGPU_PARAM_HOST_VISIBLE
  /** Size of the host-visible region MAPPABLE HOST3D blobs are mapped into; a blob that does not fit → ENOSPC. */
  readonly hostVisibleBytes?: number;
  readonly crossDevice: boolean;    // VIRTGPU_PARAM_CROSS_DEVICE (resource uuids)
  readonly contextInit: boolean;    // VIRTGPU_PARAM_CONTEXT_INIT (also EXPLICIT_DEBUG_NAME)
  readonly resourceUserptr: boolean;// v3's GETPARAM 9 (RESOURCE_USERPTR): the device takes userptrs
  /** VIRTIO_GPU_F_BLOB_ALIGNMENT: blob sizes must be a multiple of it on 7.2-based revisions (GETPARAM 9 there); absent: not declared. */
  readonly blobAlignment?: number;
  readonly capsets: readonly Capset[];
}

function hsakmtCapset(): Uint8Array {
  return virtio_gpu_hsakmt_capset.encode({ wire_format_version: 1, version_major: 1, version_minor: 0, version_patchlevel: 0, context_type: 1 });
}
/** Placeholder virgl caps: a zeroed virgl_caps_v2-sized blob (no renderer behind it; the recording host has no GPU). */
function virglCapset(size: number): Uint8Array { const b = new Uint8Array(size); b[0] = 2; return b; }

export const PROFILES: Readonly<Record<string, DeviceProfile>> = {
  /** Default: what the HSAKMT UMD expects from a userptr-capable node. */
  hsakmt: {
    name: 'hsakmt', has3d: true, resourceBlob: true, hostVisible: true, hostVisibleBytes: 16 * 2 ** 30, crossDevice: false, contextInit: true, resourceUserptr: true, blobAlignment: 4096,
    capsets: [
      { id: VIRTIO_GPU_CAPSET_VIRGL2, maxVersion: 2, blob: virglCapset(1160) },
      { id: VIRTIO_GPU_CAPSET_HSAKMT, maxVersion: 1, blob: hsakmtCapset() },
    ],
  },
  /** A plain virgl device without blob/context-init (older hosts). */
  virgl: {
    name: 'virgl', has3d: true, resourceBlob: false, hostVisible: false, crossDevice: false, contextInit: false, resourceUserptr: false,
    capsets: [{ id: VIRTIO_GPU_CAPSET_VIRGL, maxVersion: 1, blob: virglCapset(308) }, { id: VIRTIO_GPU_CAPSET_VIRGL2, maxVersion: 2, blob: virglCapset(1160) }],
  },
  /** A 2D-only device: no 3D, no capsets (GET_CAPS → ENOSYS). */
  '2d': {
    name: '2d', has3d: false, resourceBlob: false, hostVisible: false, crossDevice: false, contextInit: false, resourceUserptr: false, capsets: [],
  },
};

export function profileByName(name: string): DeviceProfile {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown device profile '${name}' (valid: ${Object.keys(PROFILES).join(', ')})`);
  return p;
}

export function capsetMask(p: DeviceProfile): number {
  let m = 0;
  for (const c of p.capsets) m |= 2 ** c.id;
  return m;
}
