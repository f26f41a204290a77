// CUSE unrestricted ioctls, replayed as the kernel sends them (fs/fuse/ioctl.c): pass 1 carries no data; we RETRY
// with the struct; then with the embedded pointer's iovec; the last pass gets result + out data. Byte vectors by hand.
import test from 'ava';
import { createDevice, RecordingHost } from '../../core';
import { SimMachine, simProvider, type SimProcess } from '../../core/testing';
import { Session } from '../../cuse-dev/session/session';
import { tgidResolver } from '../../cuse-dev/session/tgid';
import * as H from './helpers/fuse-bytes';

const UNRESTRICTED = 2;
const RETRY = 4;
const TID = 1001; // a thread of process 1000

function setup() {
  const host = new RecordingHost();
  const dev = createDevice({ host, clients: simProvider(new SimMachine(), new Map<number, SimProcess>()) });
  const tgid = tgidResolver((p) => (p === `/proc/${TID}/status` ? 'Name:\tumd\nTgid:\t1000\nPid:\t1001\n' : 'Tgid:\t0\n'));
  const logs: string[] = [];
  const s = new Session({ kind: 'cuse', device: dev, cuse: { devname: 'dri/renderD128', major: 226, minor: 128, unrestricted: true }, tgid, log: (m) => logs.push(m) });
  let unique = 10n;
  const send = (op: number, body: Buffer, o: Parameters<typeof H.request>[3] = {}) => {
    const r = s.handle(H.request(op, ++unique, body, { pid: TID, ...o }));
    if (!r) return null;
    const out = H.parseOut(r);
    if (out.len !== r.length || out.unique !== unique) throw new Error('reply framing');
    return out;
  };
  const init = send(H.OP.CUSE_INIT, H.cuseInitIn(7, 38, 1))!;
  const open = send(H.OP.OPEN, H.openIn())!;
  const fh = open.body.readBigUInt64LE(0);
  return { s, dev, host, send, init, fh, logs };
}

test('CUSE_INIT: unrestricted granted, 7.38, DEVNAME info string, 226:128', (t) => {
  const { init, s } = setup();
  t.is(init.error, 0);
  const c = H.parseCuseInitOut(init.body);
  t.deepEqual(c, { major: 7, minor: 38, flags: 1, maxRead: 131072, maxWrite: 131072, devMajor: 226, devMinor: 128, info: 'DEVNAME=dri/renderD128\0' });
  t.is(s.state, 'ready');
});

test('GETPARAM over CUSE: 3 passes (no data → struct → value pointer as out iovec)', (t) => {
  const { send, fh, dev, s } = setup();
  const arg = 0x10000n, value = 0x20000n;
  // pass 1: the kernel decoded nothing
  const p1 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_GETPARAM, arg, 0))!.body);
  t.is(p1.flags, RETRY);
  t.deepEqual([p1.inIovs, p1.outIovs], [1, 1]);
  t.deepEqual(p1.iov, [{ base: arg, len: 16n }, { base: arg, len: 16n }]);
  // pass 2: struct copied in; the value pointer becomes a 4-byte out iovec (the kernel writes a C int)
  const sb = H.getparam(3n /* RESOURCE_BLOB */, value);
  const p2 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_GETPARAM, arg, 16, sb))!.body);
  t.is(p2.flags, RETRY);
  t.deepEqual(p2.iov, [{ base: arg, len: 16n }, { base: arg, len: 16n }, { base: value, len: 4n }]);
  // pass 3: everything mapped: result 0, struct (16) then the int (4)
  const p3 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_GETPARAM, arg, 20, sb))!.body);
  t.is(p3.flags, 0);
  t.is(p3.result, 0);
  t.is(p3.data.length, 20);
  t.deepEqual(p3.data.subarray(0, 16), sb);
  t.is(p3.data.readInt32LE(16), 1);
  t.is(s.stats.retries, 2);
  t.is((dev.counts() as { files: number }).files, 1);
});

test('EXECBUFFER over CUSE: the command buffer arrives as an in iovec and reaches the host', (t) => {
  const { send, fh, host } = setup();
  const arg = 0x40000n, cmdAddr = 0x50000n;
  const command = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const eb = H.execbuffer(command.length, cmdAddr);
  const p1 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_EXECBUFFER, arg, 0))!.body);
  t.deepEqual(p1.iov, [{ base: arg, len: 64n }, { base: arg, len: 64n }]);
  const p2 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_EXECBUFFER, arg, 64, eb))!.body);
  t.is(p2.flags, RETRY);
  t.deepEqual([p2.inIovs, p2.outIovs], [2, 1]);
  t.deepEqual(p2.iov, [{ base: arg, len: 64n }, { base: cmdAddr, len: 8n }, { base: arg, len: 64n }]);
  const p3 = H.parseIoctlOut(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_EXECBUFFER, arg, 64, Buffer.concat([eb, command])))!.body);
  t.is(p3.flags, 0);
  t.is(p3.result, 0);
  t.is(p3.data.length, 64);
  const submits = host.ofType('SUBMIT_3D');
  t.is(submits.length, 1);
  t.deepEqual([...submits[0]!.head], [...command]);
  t.is(submits[0]!.size, command.length);
});

test('retry that would exceed 128 KiB per direction is answered ENOMEM (what the kernel would return)', (t) => {
  const { send, fh, logs } = setup();
  const eb = H.execbuffer(200 * 1024, 0x50000n);
  const r = send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_EXECBUFFER, 0x40000n, 64, eb))!;
  t.is(r.error, -12);
  t.true(logs.some((l) => /exceed CUSE limits/.test(l)));
});

test('unknown ioctl type on CUSE: ENOTTY without any retry', (t) => {
  const { send, fh } = setup();
  const r = send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, 0xc0045801, 0x1000n, 0))!;
  t.is(r.error, -25);
});

test('restricted CUSE (kernel did not offer UNRESTRICTED): one pass, like FUSE', (t) => {
  const host = new RecordingHost();
  const dev = createDevice({ host, clients: simProvider(new SimMachine(), new Map<number, SimProcess>()) });
  const s = new Session({ kind: 'cuse', device: dev, cuse: { devname: 'dri/renderD129', major: 0, minor: 0, unrestricted: true }, tgid: tgidResolver(() => 'Tgid:\t77\n') });
  const init = H.parseOut(s.handle(H.request(H.OP.CUSE_INIT, 1n, H.cuseInitIn(7, 38, 0)))!);
  t.is(H.parseCuseInitOut(init.body).flags, 0);
  const fh = H.parseOut(s.handle(H.request(H.OP.OPEN, 2n, H.openIn(), { pid: 77 }))!).body.readBigUInt64LE(0);
  // DRM_IOCTL_VERSION with zero lengths: no pointers touched, 64 bytes back
  const r = H.parseIoctlOut(H.parseOut(s.handle(H.request(H.OP.IOCTL, 3n, H.ioctlIn(fh, 0, H.DRM_IOCTL_VERSION, 0x1000n, 64, Buffer.alloc(64)), { pid: 77 }))!).body);
  t.is(r.flags, 0);
  t.is(r.result, 0);
  t.is(r.data.readInt32LE(4), 1); // version_minor
  t.is(r.data.readBigUInt64LE(16), 10n); // name_len = strlen("virtio_gpu")
});

test('RELEASE closes the DRM file (CUSE sends pid 0 there)', (t) => {
  const { send, fh, dev, s } = setup();
  t.is((dev.counts() as { files: number }).files, 1);
  const r = send(H.OP.RELEASE, H.releaseIn(fh), { pid: 0 })!;
  t.is(r.error, 0);
  t.is((dev.counts() as { files: number }).files, 0);
  t.is(s.openFiles(), 0);
  // the handle is gone: an ioctl on it is EBADF
  t.is(send(H.OP.IOCTL, H.ioctlIn(fh, UNRESTRICTED, H.DRM_IOCTL_VERSION, 0x1000n, 0))!.error, -9);
});
