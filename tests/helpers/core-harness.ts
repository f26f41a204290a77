// A core device over simulated processes, with uAPI-level helpers (tests talk to core only through ioctls + snapshot).
import { createDevice, RecordingHost, type Device, type DeviceFile, type DeviceOptions, isErr, type Errno } from '../../core';
import { SimMachine, SimProcess } from '../../core/testing';
import * as B from './bytes';

export const HSAKMT = 8;
export const BLOB_GUEST = 1, BLOB_HOST3D = 2, BLOB_HOST3D_GUEST = 3;
export const USE_MAPPABLE = 1, USE_SHAREABLE = 2, USE_CROSS_DEVICE = 4, USE_USERPTR = 8, USERPTR_RDONLY = 0x10;

export interface Call { ret: number | string; out: Uint8Array }

export class Harness {
  readonly machine = new SimMachine();
  readonly procs = new Map<number, SimProcess>();
  readonly host = new RecordingHost();
  readonly dev: Device;
  readonly released = new Map<number, number>();

  constructor(opts: Partial<DeviceOptions> = {}) {
    this.dev = createDevice({
      host: this.host, ...opts,
      clients: (pid) => {
        const p = this.procs.get(pid) ?? this.proc();
        const env = p.env();
        return { ...env, release: () => { env.release(); this.released.set(pid, (this.released.get(pid) ?? 0) + 1); } };
      },
    });
  }

  proc(mode: 'uffd' | 'proc' = 'uffd'): SimProcess { const p = this.machine.process(mode); this.procs.set(p.pid, p); return p; }
  adopt(p: SimProcess): SimProcess { this.procs.set(p.pid, p); return p; }
  open(p: SimProcess): DeviceFile { return this.dev.open(p.pid); }

  ioctl(f: DeviceFile, p: SimProcess, cmd: number, arg: Uint8Array): Call {
    const r = f.ioctl(p.pid, cmd, arg, p);
    return { ret: isErr(r.result) ? (r.result as Errno).code : r.result, out: r.out };
  }

  /** CONTEXT_INIT with capset HSAKMT (params placed in the client's memory). */
  initHsakmt(f: DeviceFile, p: SimProcess, capset = HSAKMT): number | string {
    const params = B.ctxParams([[1, capset]]);
    const at = p.mmap(4096);
    p.write(at, params);
    return this.ioctl(f, p, B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, at)).ret;
  }

  create(f: DeviceFile, p: SimProcess, userptr: number, size: number, flags = USE_USERPTR, blobMem = BLOB_HOST3D_GUEST, cmd = B.VIRTGPU_RESOURCE_CREATE_BLOB, blobId: number = 0x1234): { ret: number | string; handle: number; resId: number; offset: bigint } {
    const arg = B.createBlob({ blobMem, flags, size, userptr, blobId: blobMem === BLOB_GUEST ? 0 : blobId, offset: 0x5a5a });
    const r = this.ioctl(f, p, cmd, arg.subarray(0, (cmd >>> 16) & 0x3fff));
    return { ret: r.ret, ...B.blobOut(r.out) };
  }

  close(f: DeviceFile, p: SimProcess, h: number): number | string { return this.ioctl(f, p, B.DRM_IOCTL_GEM_CLOSE, B.gemClose(h)).ret; }
  info(f: DeviceFile, p: SimProcess, h: number): { ret: number | string; resId: number; size: number; blobMem: number } {
    const r = this.ioctl(f, p, B.VIRTGPU_RESOURCE_INFO, B.resourceInfo(h));
    const rr = new B.R(r.out.length >= 16 ? r.out : new Uint8Array(16)); // nothing copied back on a closed file
    return { ret: r.ret, resId: rr.u32(4), size: rr.u32(8), blobMem: rr.u32(12) };
  }
  /** A harmless ioctl: its entry drains events and runs the worker. */
  poke(f: DeviceFile, p: SimProcess): void {
    const at = p.mmap(4096);
    this.ioctl(f, p, B.VIRTGPU_GETPARAM, B.getparam(1, at));
  }
  alive(f: DeviceFile, p: SimProcess, h: number): boolean { return this.info(f, p, h).ret === 0; }
  hostOf(resId: number): string[] {
    return this.host.log.filter((c) => 'resId' in c && c.resId === resId).map((c) => c.cmd);
  }
  userptrOf(f: DeviceFile, h: number) { return this.dev.snapshot().files.find((x) => x.id === f.id)?.handles.find((x) => x.handle === h)?.userptr; }
}
