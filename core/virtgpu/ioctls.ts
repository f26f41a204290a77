// The render node's ioctl table: core DRM rows + the virtio-gpu driver rows (all DRM_RENDER_ALLOW). The
// create_blob row's struct is the uAPI revision's (uapi.ts): one table per create_blob layout.
import { IoctlTable, type IoctlRow } from '../drm/dispatch';
import type { Struct } from '../abi/layout';
import type { CreateBlobArgs } from '../abi/virtgpu';
import { gemCloseRow, getCapRow, versionRow } from '../drm/core-ioctls';
import { getCapsRow, getparamRow } from './getparam';
import { contextInitRow } from './context';
import { createBlobRow } from './blob';
import { mapRow, resourceCreateRow, resourceInfoRow, transferFromHostRow, transferToHostRow, waitRow } from './resource';
import { execbufferRow } from './execbuf';
import { DEFAULT_UAPI, UAPI, type UapiRevision } from './uapi';

function rowsFor(blob: Struct<CreateBlobArgs>): IoctlRow[] {
  return [
    versionRow, gemCloseRow, getCapRow,
    mapRow, execbufferRow, getparamRow, resourceCreateRow, resourceInfoRow, transferFromHostRow, transferToHostRow,
    waitRow, getCapsRow, createBlobRow(blob), contextInitRow,
  ];
}

const tables = new Map<Struct<CreateBlobArgs>, IoctlTable>();

/** The table a device of revision `r` dispatches with (shared by every device with the same create_blob struct). */
export function virtgpuTableFor(r: UapiRevision): IoctlTable {
  let t = tables.get(r.layout);
  if (!t) { t = new IoctlTable(rowsFor(r.layout)); tables.set(r.layout, t); }
  return t;
}

/** The default revision's table and rows. */
export const virtgpuTable = virtgpuTableFor(UAPI[DEFAULT_UAPI]);
export const virtgpuRows = virtgpuTable.all();
