// Pure parts of uffd/: /proc/PID/maps lines → Mapping, pagemap entries, reader records, the MADV_FREE/DONTNEED verdict.
import test from 'ava';
import { parseMaps, parseMapsLine, backingOf } from '../../uffd/proc-maps';
import { decodeEntry } from '../../uffd/pagemap';
import { decodeReaderRecords, removeVerdict, UFFD_EVENT_FORK, UFFD_EVENT_REMAP, UFFD_EVENT_REMOVE } from '../../uffd/abi';

const MAPS = [
  '55d0c0a00000-55d0c0a04000 r--p 00000000 fe:00 260368                     /usr/bin/grep',
  '55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]',
  '7f0000000000-7f0000004000 rw-s 00000000 00:01 1234                       /memfd:buf (deleted)',
  '7f0000010000-7f0000012000 rw-s 00000000 00:01 99                         /dev/zero (deleted)',
  '7f0000020000-7f0000021000 rw-s 00000000 00:06 5                          /SYSV00000000 (deleted)',
  '7f0000030000-7f0000031000 rw-p 00000000 00:00 0 ',
  '7f0000040000-7f0000041000 rw-s 00000000 00:05 321                        /dev/dri/renderD128',
  '7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]',
  '7ffd00100000-7ffd00104000 r--p 00000000 00:00 0                          [vvar]',
  '7ffd00104000-7ffd00106000 r-xp 00000000 00:00 0                          [vdso]',
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
].join('\n');

test('maps lines: fields and backing (anon, shmem: memfd, /dev/zero shared, SYSV; file; special)', (t) => {
  const all = parseMaps(MAPS);
  t.is(all.length, 11);
  t.like(all[0], { start: 0x55d0c0a00000, end: 0x55d0c0a04000, read: true, write: false, exec: false, shared: false, backing: 'file', path: '/usr/bin/grep', inode: 260368 });
  t.deepEqual(all.map((m) => m.backing), ['file', 'anon', 'shmem', 'shmem', 'shmem', 'anon', 'special', 'anon', 'special', 'special', 'special']);
  t.like(all[9], { exec: true, read: true });
  t.is(parseMapsLine('garbage'), null);
  t.is(backingOf('', true), 'shmem');
  t.is(backingOf('/dev/shm/x', true), 'shmem');
  t.is(backingOf('[anon:jit]', false), 'anon');
});

test('maps window: only mappings overlapping [start, end)', (t) => {
  t.deepEqual(parseMaps(MAPS, 0x7f0000003000, 0x7f0000020001).map((m) => m.start), [0x7f0000000000, 0x7f0000010000, 0x7f0000020000]);
  t.deepEqual(parseMaps(MAPS, 0x7f0000004000, 0x7f0000010000), []);
});

test('pagemap entry decode', (t) => {
  const e = decodeEntry((1n << 63n) | (1n << 56n) | (1n << 55n) | 0x1234n);
  t.like(e, { present: true, swapped: false, exclusive: true, softDirty: true, file: false, pfn: 0x1234 });
  t.like(decodeEntry((1n << 62n) | 0x55n), { present: false, swapped: true, pfn: 0 });
  t.like(decodeEntry((1n << 63n) | (1n << 61n)), { present: true, file: true, pfn: 0 });
});

function record(event: number, a: bigint, b: bigint, c: bigint, snap = ''): Buffer {
  const size = Math.ceil((24 + 32 + snap.length) / 8) * 8;
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(size, 0); buf.writeUInt32LE(snap.length, 4); buf.writeBigUInt64LE(7n, 8); buf.writeBigUInt64LE(9n, 16);
  buf.writeUInt8(event, 24); buf.writeBigUInt64LE(a, 32); buf.writeBigUInt64LE(b, 40); buf.writeBigUInt64LE(c, 48);
  buf.write(snap, 56, 'latin1');
  return buf;
}

test('reader records decode (REMOVE with snapshot, REMAP, FORK)', (t) => {
  const recs = decodeReaderRecords(Buffer.concat([
    record(UFFD_EVENT_REMOVE, 0x1000n, 0x3000n, 0n, '12 28 0x1000 0x2000 0x8 0x0 0x0 0x0 0x7ffd 0x7f01\n'),
    record(UFFD_EVENT_REMAP, 0x1000n, 0x9000n, 0x2000n),
    record(UFFD_EVENT_FORK, 17n, 0n, 0n),
  ]));
  t.like(recs[0], { kind: 'REMOVE', start: 0x1000, end: 0x3000, batchSeq: 7n, readNs: 9n });
  t.like(recs[1], { kind: 'REMAP', from: 0x1000, to: 0x9000, len: 0x2000 });
  t.like(recs[2], { kind: 'FORK', ufd: 17 });
  const bad = record(UFFD_EVENT_FORK, 0n, 0n, 0n);
  bad.writeUInt32LE(200, 0); // recordSize beyond the buffer
  t.throws(() => decodeReaderRecords(bad), { message: /bad reader record/ });
});

test('REMOVE verdict from /proc/TID/syscall: FREE not removed, DONTNEED/REMOVE removed, unknown or conflicting → removed + note', (t) => {
  const line = (tid: number, start: number, len: number, adv: number) => `${tid} 28 0x${start.toString(16)} 0x${len.toString(16)} 0x${adv.toString(16)} 0x0 0x0 0x0 0x7ffd 0x7f01\n`;
  t.deepEqual(removeVerdict(line(5, 0x1000, 0x4000, 8) + '6 running\n', 0x2000, 0x3000), { removed: false, note: 'uffd REMOVE, madvise FREE' });
  t.true(removeVerdict(line(5, 0x1000, 0x4000, 4), 0x1000, 0x5000).removed);
  t.is(removeVerdict(line(5, 0x1000, 0x4000, 9), 0x1000, 0x2000).note, 'uffd REMOVE, madvise REMOVE');
  t.is(removeVerdict('', 0x1000, 0x2000).note, 'uffd REMOVE, advice unknown: treated as DONTNEED');
  t.is(removeVerdict(line(5, 0x9000, 0x1000, 8), 0x1000, 0x2000).note, 'uffd REMOVE, advice unknown: treated as DONTNEED');
  t.true(removeVerdict(line(5, 0x1000, 0x4000, 8) + line(6, 0x0, 0x10000, 4), 0x1000, 0x2000).removed);
  t.true(removeVerdict('5 7 0x1000 0x4000 0x8 0x0 0x0 0x0 0x7ffd 0x7f01\n', 0x1000, 0x2000).removed, 'not madvise (nr 7)');
});
