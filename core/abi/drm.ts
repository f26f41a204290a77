// drm.h structs used by a virtio-gpu render node (names 1:1 with the header).
import { struct, u32, i32, u64, pad } from './layout';

export const drm_version = struct('drm_version', {
  version_major: i32, version_minor: i32, version_patchlevel: i32,
  name_len: u64, name: u64, date_len: u64, date: u64, desc_len: u64, desc: u64,
});
export const drm_gem_close = struct('drm_gem_close', { handle: u32, pad: pad(4, 4) });
export const drm_get_cap = struct('drm_get_cap', { capability: u64, value: u64 });

export const DRM_CAP_PRIME = 0x5;
export const DRM_CAP_TIMESTAMP_MONOTONIC = 0x6;
export const DRM_CAP_SYNCOBJ = 0x13;
export const DRM_CAP_SYNCOBJ_TIMELINE = 0x14;
export const DRM_PRIME_CAP_IMPORT = 0x1;
export const DRM_PRIME_CAP_EXPORT = 0x2;

export const DRM_NR_VERSION = 0x00;
export const DRM_NR_GEM_CLOSE = 0x09;
export const DRM_NR_GET_CAP = 0x0c;

/**
 * Core ioctls the kernel's drm_ioctls[] table has but a render node refuses (no DRM_RENDER_ALLOW) → EACCES,
 * and those it allows but this emulator cannot serve without fd passing / syncobjs → EOPNOTSUPP.
 * Every other core nr has no entry (or no func) → EINVAL. Source: drivers/gpu/drm/drm_ioctl.c (6.x, no legacy).
 */
export const DRM_CORE_NOT_RENDER: Readonly<Record<number, string>> = {
  0x01: 'GET_UNIQUE', 0x02: 'GET_MAGIC', 0x03: 'IRQ_BUSID', 0x05: 'GET_CLIENT', 0x06: 'GET_STATS',
  0x07: 'SET_VERSION', 0x08: 'MODESET_CTL', 0x0a: 'GEM_FLINK', 0x0b: 'GEM_OPEN', 0x0d: 'SET_CLIENT_CAP',
  0x10: 'SET_UNIQUE', 0x11: 'AUTH_MAGIC', 0x12: 'BLOCK', 0x13: 'UNBLOCK', 0x1e: 'SET_MASTER', 0x1f: 'DROP_MASTER',
  0x2f: 'FINISH', 0x3a: 'WAIT_VBLANK', 0x3b: 'CRTC_GET_SEQUENCE', 0x3c: 'CRTC_QUEUE_SEQUENCE', 0x3f: 'UPDATE_DRAW',
  0xa0: 'MODE_GETRESOURCES', 0xa1: 'MODE_GETCRTC', 0xa2: 'MODE_SETCRTC', 0xa3: 'MODE_CURSOR', 0xa4: 'MODE_GETGAMMA',
  0xa5: 'MODE_SETGAMMA', 0xa6: 'MODE_GETENCODER', 0xa7: 'MODE_GETCONNECTOR', 0xa8: 'MODE_ATTACHMODE',
  0xa9: 'MODE_DETACHMODE', 0xaa: 'MODE_GETPROPERTY', 0xab: 'MODE_SETPROPERTY', 0xac: 'MODE_GETPROPBLOB',
  0xad: 'MODE_GETFB', 0xae: 'MODE_ADDFB', 0xaf: 'MODE_RMFB', 0xb0: 'MODE_PAGE_FLIP', 0xb1: 'MODE_DIRTYFB',
  0xb2: 'MODE_CREATE_DUMB', 0xb3: 'MODE_MAP_DUMB', 0xb4: 'MODE_DESTROY_DUMB', 0xb5: 'MODE_GETPLANERESOURCES',
  0xb6: 'MODE_GETPLANE', 0xb7: 'MODE_SETPLANE', 0xb8: 'MODE_ADDFB2', 0xb9: 'MODE_OBJ_GETPROPERTIES',
  0xba: 'MODE_OBJ_SETPROPERTY', 0xbb: 'MODE_CURSOR2', 0xbc: 'MODE_ATOMIC', 0xbd: 'MODE_CREATEPROPBLOB',
  0xbe: 'MODE_DESTROYPROPBLOB', 0xc6: 'MODE_CREATE_LEASE', 0xc7: 'MODE_LIST_LESSEES', 0xc8: 'MODE_GET_LEASE',
  0xc9: 'MODE_REVOKE_LEASE', 0xce: 'MODE_GETFB2', 0xd0: 'MODE_CLOSEFB',
};
export const DRM_CORE_RENDER_UNSUPPORTED: Readonly<Record<number, string>> = {
  0x2d: 'PRIME_HANDLE_TO_FD', 0x2e: 'PRIME_FD_TO_HANDLE',
  0xbf: 'SYNCOBJ_CREATE', 0xc0: 'SYNCOBJ_DESTROY', 0xc1: 'SYNCOBJ_HANDLE_TO_FD', 0xc2: 'SYNCOBJ_FD_TO_HANDLE',
  0xc3: 'SYNCOBJ_WAIT', 0xc4: 'SYNCOBJ_RESET', 0xc5: 'SYNCOBJ_SIGNAL', 0xca: 'SYNCOBJ_TIMELINE_WAIT',
  0xcb: 'SYNCOBJ_QUERY', 0xcc: 'SYNCOBJ_TRANSFER', 0xcd: 'SYNCOBJ_TIMELINE_SIGNAL', 0xcf: 'SYNCOBJ_EVENTFD',
};
