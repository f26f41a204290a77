// fuse.h tables: sizeof per the header, and byte vectors built by hand (helpers/fuse-bytes.ts) vs the codec.
import test from 'ava';
import * as F from '../../cuse-dev/abi/fuse';
import { OPCODES, opcodeName, opcodeRow, FuseOpcode } from '../../cuse-dev/abi/opcodes';
import { replyError, replyIoctl, replyIoctlRetry, replyOk } from '../../cuse-dev/session/reply';
import { EINVAL, ENOSYS, Errno } from '../../core/errno';
import * as H from './helpers/fuse-bytes';

const SIZEOF: Record<string, [{ size: number }, number]> = {
  fuse_in_header: [F.fuse_in_header, 40], fuse_out_header: [F.fuse_out_header, 16],
  fuse_init_in: [F.fuse_init_in, 64], fuse_init_out: [F.fuse_init_out, 64],
  cuse_init_in: [F.cuse_init_in, 16], cuse_init_out: [F.cuse_init_out, 72],
  fuse_open_in: [F.fuse_open_in, 8], fuse_open_out: [F.fuse_open_out, 16], fuse_release_in: [F.fuse_release_in, 24],
  fuse_flush_in: [F.fuse_flush_in, 24], fuse_read_in: [F.fuse_read_in, 40], fuse_write_in: [F.fuse_write_in, 40],
  fuse_write_out: [F.fuse_write_out, 8], fuse_poll_in: [F.fuse_poll_in, 24], fuse_poll_out: [F.fuse_poll_out, 8],
  fuse_interrupt_in: [F.fuse_interrupt_in, 8], fuse_ioctl_in: [F.fuse_ioctl_in, 32], fuse_ioctl_out: [F.fuse_ioctl_out, 16],
  fuse_ioctl_iovec: [F.fuse_ioctl_iovec, 16], fuse_attr: [F.fuse_attr, 88], fuse_entry_out: [F.fuse_entry_out, 128],
  fuse_attr_out: [F.fuse_attr_out, 104], fuse_getattr_in: [F.fuse_getattr_in, 16], fuse_forget_in: [F.fuse_forget_in, 8],
  fuse_forget_one: [F.fuse_forget_one, 16], fuse_batch_forget_in: [F.fuse_batch_forget_in, 8], fuse_dirent: [F.fuse_dirent, 24],
};

for (const [name, [layout, size]] of Object.entries(SIZEOF)) {
  test(`sizeof(struct ${name}) == ${size}`, (t) => { t.is(layout.size, size); });
}

test('fuse_in_header decodes a hand-built header', (t) => {
  const b = H.inHeader(H.OP.IOCTL, 0x1122334455667788n, 32, { nodeid: 2n, uid: 1000, gid: 100, pid: 4242 });
  t.deepEqual(F.fuse_in_header.decode(b), { len: 72, opcode: 39, unique: 0x1122334455667788n, nodeid: 2n, uid: 1000, gid: 100, pid: 4242, total_extlen: 0 });
});

test('fuse_ioctl_in decodes a hand-built request body', (t) => {
  const b = H.ioctlIn(7n, F.FUSE_IOCTL_UNRESTRICTED, H.DRM_IOCTL_VIRTGPU_GETPARAM, 0x7fff0000_1000n, 16, Buffer.alloc(16, 0xab));
  t.deepEqual(F.fuse_ioctl_in.decode(b), { fh: 7n, flags: 2, cmd: 0xc0106443, arg: 0x7fff00001000n, in_size: 16, out_size: 16 });
});

test('replyError: header only, error = -errno, unique echoed', (t) => {
  t.deepEqual(Buffer.from(replyError(99n, EINVAL)), H.outHeader(16, -22, 99n));
  t.deepEqual(Buffer.from(replyError(1n, ENOSYS)), H.outHeader(16, -38, 1n));
});

test('replyError rejects errnos outside 1..4095 (EIO instead, reported)', (t) => {
  const seen: string[] = [];
  for (const bad of [0, -5, 4096, 1e9]) t.deepEqual(Buffer.from(replyError(3n, new Errno(bad, 'EBOGUS'), (w) => seen.push(w))), H.outHeader(16, -5, 3n));
  t.is(seen.length, 4);
});

test('replyOk concatenates payload after the header in one buffer', (t) => {
  const r = Buffer.from(replyOk(5n, Uint8Array.of(1, 2), Uint8Array.of(3)));
  t.deepEqual(r, Buffer.concat([H.outHeader(19, 0, 5n), Buffer.from([1, 2, 3])]));
});

test('replyIoctl: fuse_ioctl_out{result} + out data; Errno becomes a negative result, data still sent', (t) => {
  const ok = Buffer.from(replyIoctl(8n, 3, [Uint8Array.of(9, 9)]));
  const exp = Buffer.alloc(16 + 16 + 2); H.outHeader(34, 0, 8n).copy(exp); exp.writeInt32LE(3, 16); exp[32] = 9; exp[33] = 9;
  t.deepEqual(ok, exp);
  const err = H.parseIoctlOut(H.parseOut(replyIoctl(8n, EINVAL, [Uint8Array.of(1)])).body);
  t.is(err.result, -22);
  t.deepEqual([...err.data], [1]);
});

test('replyIoctlRetry: RETRY flag, counts, then in iovecs before out iovecs (16 bytes each)', (t) => {
  const r = Buffer.from(replyIoctlRetry(4n, [{ addr: 0x1000, len: 16 }], [{ addr: 0x1000, len: 16 }, { addr: 0x2000, len: 4 }]));
  const exp = Buffer.alloc(16 + 16 + 3 * 16);
  H.outHeader(exp.length, 0, 4n).copy(exp);
  exp.writeUInt32LE(4, 20); exp.writeUInt32LE(1, 24); exp.writeUInt32LE(2, 28);
  [[0x1000n, 16n], [0x1000n, 16n], [0x2000n, 4n]].forEach(([b, l], i) => { exp.writeBigUInt64LE(b!, 32 + i * 16); exp.writeBigUInt64LE(l!, 40 + i * 16); });
  t.deepEqual(r, exp);
});

test('cuse_init_out encodes the header offsets (dev_major @24, dev_minor @28, 72 bytes)', (t) => {
  const b = Buffer.from(F.cuse_init_out.encode({ major: 7, minor: 38, unused: 0, flags: 1, max_read: 4096, max_write: 8192, dev_major: 226, dev_minor: 128, spare: [] }));
  t.is(b.length, 72);
  t.deepEqual(H.parseCuseInitOut(Buffer.concat([b, Buffer.from('DEVNAME=x\0')])), { major: 7, minor: 38, flags: 1, maxRead: 4096, maxWrite: 8192, devMajor: 226, devMinor: 128, info: 'DEVNAME=x\0' });
});

test('fuse_init_out encodes u16 fields at their header offsets', (t) => {
  const b = Buffer.from(F.fuse_init_out.encode({ major: 7, minor: 38, max_readahead: 65536, flags: 0x40000000, max_background: 16, congestion_threshold: 12, max_write: 131072, time_gran: 1, max_pages: 32, map_alignment: 0, flags2: 5, max_stack_depth: 0, request_timeout: 0 }));
  t.deepEqual(H.parseInitOut(b), { major: 7, minor: 38, maxReadahead: 65536, flags: 0x40000000, maxBackground: 16, congestion: 12, maxWrite: 131072, timeGran: 1, maxPages: 32, flags2: 5 });
});

test('opcode table: C names, FORGET/BATCH_FORGET/INTERRUPT/NOTIFY_REPLY marked no-reply', (t) => {
  t.is(opcodeName(FuseOpcode.FUSE_IOCTL), 'FUSE_IOCTL');
  t.is(opcodeName(FuseOpcode.CUSE_INIT), 'CUSE_INIT');
  t.is(opcodeName(9999), 'FUSE_OP_9999');
  t.deepEqual(OPCODES.filter((r) => r.noReply).map((r) => r.name).sort(), ['FUSE_BATCH_FORGET', 'FUSE_FORGET', 'FUSE_INTERRUPT', 'FUSE_NOTIFY_REPLY']);
  t.is(opcodeRow(39)?.decode, F.fuse_ioctl_in);
  t.is(H.OP.CUSE_INIT, FuseOpcode.CUSE_INIT);
});
