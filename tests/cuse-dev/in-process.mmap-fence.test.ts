// Blob mmap and fence fds with real fds in this process (the in-process transport passes fds as the preload does):
// a HOST3D MAPPABLE blob's memfd mapped twice (the second MAP_FIXED over a reservation), written through one mapping
// and read through the other and by the host; release with the BO while a mapping keeps the pages; fence fds that
// are readable from completion on (pollable eventfds), and a submission that waits for one of our fds.
import test from 'ava';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { openDevice } from '../../cuse-dev/transport/in-process';
import { RecordingHost, type HostCommand } from '../../core';
import { loadTestkit } from '../../uffd/load';
import * as B from '../helpers/bytes';
import { reservation } from '../uffd/helpers/reservation';

const u = loadTestkit();
const C = u.constants;
const PG = 4096;
const RW = C.PROT_READ | C.PROT_WRITE;

function hsakmtNode(host = new RecordingHost()) {
  const node = openDevice({ host });
  const params = Buffer.from(B.ctxParams([[1, 8]]));
  if (node.ioctl(B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, u.bufferAddress(params))) !== 0) throw new Error('CONTEXT_INIT');
  return { node, host };
}
const memfdMappings = (): number => fs.readFileSync('/proc/self/maps', 'latin1').split('\n').filter((l) => l.includes('/memfd:virtgpu-res')).length;
const readable = (fd: number): boolean => u.pollReadable([fd], 0) !== 0;

test.serial('a HOST3D MAPPABLE blob: VIRTGPU_MAP, the memfd mapped twice (once MAP_FIXED over a reservation), one memory for both and the host', (t) => {
  const { node, host } = hsakmtNode();
  const R = reservation();
  const base = memfdMappings();
  try {
    const blob = B.createBlob({ blobMem: 2, flags: 1, size: 4 * PG, blobId: 0 });
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_CREATE_BLOB, blob), 0);
    const bo = B.blobOut(blob);
    const map = B.virtgpuMap(bo.handle);
    t.is(node.ioctl(B.VIRTGPU_MAP, map), 0);
    const target = node.map(new B.R(map).u64(0), 4 * PG);
    if ('errno' in target) return t.fail(target.code);
    const fd = target.memory.fd!;
    t.true(fd >= 0, 'a memfd');
    const first = u.mmap(0, 4 * PG, RW, C.MAP_SHARED, fd, target.offset);
    const fixed = R.take(4 * PG);
    t.is(u.mmap(fixed, 4 * PG, RW, C.MAP_SHARED | C.MAP_FIXED, fd, target.offset), fixed);
    u.poke(first + 123, Buffer.from('hello'));
    t.is(u.peek(fixed + 123, 5).toString(), 'hello', 'written through one mapping, read through the other');
    t.is(Buffer.from(host.blobBytes(bo.resId)!.subarray(123, 128)).toString(), 'hello', 'the host reads it back');
    host.blobBytes(bo.resId)!.set(Buffer.from('host'), 3 * PG);
    t.is(u.peek(first + 3 * PG, 4).toString(), 'host', 'and the client sees what the host wrote');
    t.like(node.device.counts(), { blobMemory: 1, blobMemoryBytes: 4 * PG });
    // BO close: the server lets go; our mappings keep the pages (as a driver keeps them until munmap).
    t.is(node.ioctl(B.DRM_IOCTL_GEM_CLOSE, B.gemClose(bo.handle)), 0);
    t.like(node.device.counts(), { blobMemory: 0, blobMemoryBytes: 0, handles: 0 });
    t.is(target.memory.bytes.length, 0, 'the server\'s view is detached');
    t.is(u.peek(fixed + 123, 5).toString(), 'hello');
    t.is(memfdMappings(), base + 2, 'our two mappings remain, the server\'s is gone');
    u.munmap(first, 4 * PG);
    R.unmap(fixed, 4 * PG);
    t.is(memfdMappings(), base, 'munmap releases the rest');
  } finally {
    node.close();
  }
});

test.serial('FENCE_FD_OUT: a real fd, readable once the host completed the submission (at once, or when a delaying host does), and stays so', async (t) => {
  const { node, host } = hsakmtNode(new RecordingHost({ fences: 'manual' }));
  const cmd = Buffer.from([1, 2, 3, 4]);
  try {
    const arg = B.execbuffer({ flags: B.FENCE_FD_OUT, size: 4, command: u.bufferAddress(cmd) });
    t.is(node.ioctl(B.VIRTGPU_EXECBUFFER, arg), 0);
    const fd = new B.R(arg).i32(B.EXECBUF_FENCE_FD_AT);
    t.true(fd >= 0);
    t.false(readable(fd), 'not readable before completion');
    t.like(node.device.counts(), { fences: 1 });
    t.is(host.completeFences(), 1);
    t.true(readable(fd));
    t.is(u.eventfdDrain(fd), 1, 'a read does no harm');
    t.true(readable(fd), 'still signalled after a read');
    t.like(node.device.counts(), { fences: 0 });
    t.like(node.fences!.stats, { outLive: 0 }, 'the server closed its side once signalled and handed over');
    u.close(fd);
  } finally {
    node.close();
  }
});

test.serial('FENCE_FD_OUT of fences completed during the ioctl: fds of their file\'s one signalled eventfd, each its caller\'s own, readable, reads and closes harmless; one file\'s fds reach no other file\'s; released with the file', (t) => {
  const a = hsakmtNode();
  const b = hsakmtNode();
  const cmd = Buffer.from([1, 2, 3, 4]);
  const fence = (n: typeof a.node): number => {
    const arg = B.execbuffer({ flags: B.FENCE_FD_OUT, size: 4, command: u.bufferAddress(cmd) });
    t.is(n.ioctl(B.VIRTGPU_EXECBUFFER, arg), 0);
    return new B.R(arg).i32(B.EXECBUF_FENCE_FD_AT);
  };
  const inode = (fd: number): string => /^eventfd-id:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1] ?? `? ${fd}`;
  try {
    const [x, y, z] = [fence(a.node), fence(a.node), fence(b.node)];
    t.true(x >= 0 && y >= 0 && z >= 0 && new Set([x, y, z]).size === 3, 'three fds of the caller\'s own');
    t.true(readable(x) && readable(y) && readable(z));
    t.is(a.node.fences!.signalledFiles, 1);
    t.is(b.node.fences!.signalledFiles, 1);
    t.is(inode(x), inode(y), 'one file\'s signalled fences share its eventfd');
    t.not(inode(x), inode(z), 'another file has its own');
    for (let i = 0; i < 1000; i++) u.eventfdDrain(x);
    u.close(x);
    t.true(readable(y), 'reads and a close of one fd leave the other readable');
    u.close(y);
    t.true(readable(z));
    u.close(z);
    t.like(a.node.fences!.stats, { outLive: 0 });
  } finally {
    a.node.close();
    b.node.close();
  }
  t.is(a.node.fences!.signalledFiles, 0, 'released with the file');
  t.is(b.node.fences!.signalledFiles, 0);
});

test.serial('FENCE_FD_IN: the ioctl returns, the submission reaches the host once our eventfd is signalled; a non-fence fd → EINVAL', async (t) => {
  const { node, host } = hsakmtNode();
  const cmd = Buffer.from([9, 9, 9, 9]);
  const submitted = new Promise<HostCommand>((resolve) => { host.onCommand = (c) => { if (c.cmd === 'SUBMIT_3D') resolve(c); }; });
  const ev = u.eventfd();
  const file = fs.openSync('/proc/self/maps', 'r');
  // fd watches do not keep the process alive (a server has its own reasons to live): this test holds it open.
  const alive = setInterval(() => undefined, 1 << 30);
  try {
    const arg = B.execbuffer({ flags: B.FENCE_FD_IN, size: 4, command: u.bufferAddress(cmd), fenceFd: ev });
    t.is(node.ioctl(B.VIRTGPU_EXECBUFFER, arg), 0);
    await new Promise((r) => setImmediate(r));
    t.is(host.ofType('SUBMIT_3D').length, 0, 'waiting for our fd');
    t.like(node.fences!.stats, { inLive: 1 });
    u.writeFd(ev, Buffer.from(new BigUint64Array([1n]).buffer));
    const c = await submitted;
    t.true(c.cmd === 'SUBMIT_3D' && c.data[0] === 9);
    t.like(node.fences!.stats, { inLive: 0 }, 'the server closed its copy');
    const bad = B.execbuffer({ flags: B.FENCE_FD_IN, size: 4, command: u.bufferAddress(cmd), fenceFd: file });
    t.is(node.ioctl(B.VIRTGPU_EXECBUFFER, bad), -22, 'EINVAL: not a fence');
    t.is(node.ioctl(B.VIRTGPU_EXECBUFFER, B.execbuffer({ flags: B.FENCE_FD_IN, fenceFd: 1 << 30 })), -22, 'EINVAL: no such fd');
    t.like(node.fences!.stats, { inLive: 0 });
  } finally {
    clearInterval(alive);
    u.close(ev);
    fs.closeSync(file);
    node.close();
  }
});

test.serial('a blob above 4 GiB (an ArrayBuffer\'s limit): the memfd is handed out whole, the server maps none of it, release closes it', (t) => {
  const { node } = hsakmtNode();
  const size = 8 * 2 ** 30;
  try {
    const blob = B.createBlob({ blobMem: 2, flags: 1, size, blobId: 0 });
    t.is(node.ioctl(B.VIRTGPU_RESOURCE_CREATE_BLOB, blob), 0);
    const bo = B.blobOut(blob);
    const map = B.virtgpuMap(bo.handle);
    t.is(node.ioctl(B.VIRTGPU_MAP, map), 0);
    const target = node.map(new B.R(map).u64(0) + BigInt(size - PG), PG);
    if ('errno' in target) return t.fail(target.code);
    t.is(target.offset, size - PG, 'the last page');
    t.is(target.memory.bytes.length, 0, 'no server mapping');
    const last = u.mmap(0, PG, RW, C.MAP_SHARED, target.memory.fd!, target.offset);
    u.poke(last, Buffer.from('end'));
    t.is(u.peek(last, 3).toString(), 'end');
    u.munmap(last, PG);
    t.like(node.device.counts(), { blobMemory: 1, blobMemoryBytes: size });
    t.is(node.ioctl(B.DRM_IOCTL_GEM_CLOSE, B.gemClose(bo.handle)), 0);
    t.like(node.device.counts(), { blobMemory: 0, blobMemoryBytes: 0 });
    t.is(memfdMappings(), 0);
  } finally {
    node.close();
  }
});

test.serial('FENCE_FD_OUT with the server out of fds: EMFILE before anything is submitted, never after; a pending fence\'s fd and its copy come from the spares', (t) => {
  const child = path.join(__dirname, '..', 'helpers', 'fence-fd-exhaust.js');
  const out = JSON.parse(execFileSync('bash', ['-c', 'ulimit -n 96 && exec "$0" "$1"', process.execPath, child], { encoding: 'utf8' }).trim()) as {
    fillers: number; full: { rc: number; submits: number }; two: { rc: number; fd: number; submits: number; readableBefore: boolean };
    completed: { readable: boolean; outLive: number }; one: { rc: number; submits: number };
  };
  t.true(out.fillers > 0, 'the child filled its fd table');
  t.deepEqual(out.full, { rc: -24, fd: -1, submits: 0 }, 'no fd at all: EMFILE, the host got nothing');
  t.like(out.two, { rc: 0, submits: 1, readableBefore: false }, 'two fds free: submitted, a pending fence fd');
  t.true(out.two.fd >= 0);
  t.deepEqual(out.completed, { readable: true, outLive: 0 }, 'completed: readable, the server\'s own fd closed');
  t.deepEqual(out.one, { rc: -24, fd: -1, submits: 1 }, 'one fd free is not enough for a pending fence: EMFILE, nothing more submitted');
});
