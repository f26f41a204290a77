// The render node's ioctl table: core DRM rows + the virtio-gpu driver rows (all DRM_RENDER_ALLOW).
import { IoctlTable } from '../drm/dispatch';
import { gemCloseRow, getCapRow, versionRow } from '../drm/core-ioctls';
import { getCapsRow, getparamRow } from './getparam';
import { contextInitRow } from './context';
import { createBlobRow } from './blob';
import { mapRow, resourceCreateRow, resourceInfoRow, transferFromHostRow, transferToHostRow, waitRow } from './resource';
import { execbufferRow } from './execbuf';

export const virtgpuRows = [
  versionRow, gemCloseRow, getCapRow,
  mapRow, execbufferRow, getparamRow, resourceCreateRow, resourceInfoRow, transferFromHostRow, transferToHostRow,
  waitRow, getCapsRow, createBlobRow, contextInitRow,
];
export const virtgpuTable = new IoctlTable(virtgpuRows);
