// uffd_msg (<linux/userfaultfd.h>) and the addon's reader record header, as layout tables, plus the
// production decoder of readerDrain() buffers.
import { pad, struct, u8, u32, u64, view } from '../core/abi/layout';

/** struct uffd_msg: u8 event; u8 reserved1; u16 reserved2; u32 reserved3; union arg (24 bytes), packed. */
export const uffd_msg = struct('uffd_msg', { event: u8, reserved: pad(7), a: u64, b: u64, c: u64 });
/**
 * readerDrain()/readerStop() return concatenated records, each 8-byte aligned, little-endian:
 *
 *   off  size  field
 *     0     4  recordSize   u32  total bytes of this record including header and padding (multiple of 8)
 *     4     4  snapshotLen  u32  bytes of syscall snapshot text at off 56 (0 = none)
 *     8     8  batchSeq     u64  increments per read(); records of one read() share it (and one snapshot)
 *    16     8  readNs       u64  CLOCK_MONOTONIC ns right after the read() that returned this message
 *    24    32  msg          struct uffd_msg exactly as read from the uffd (event at byte 0; arg at byte 8)
 *    56     n  snapshot     ASCII, only on UFFD_EVENT_REMOVE records when opts.taskSyscallsPid was given;
 *                           zero padding follows up to recordSize
 *
 * Snapshot text: for each entry of /proc/<pid>/task (readdir order) one line "<tid> <raw contents of
 * /proc/<pid>/task/<tid>/syscall>", i.e. "<tid> <nr> 0x<a0> .. 0x<a5> 0x<sp> 0x<pc>", "<tid> running" or
 * "<tid> -1 0x<sp> 0x<pc>". It is taken just BEFORE the read() (a thread in madvise stays blocked until the REMOVE
 * is read, so its line shows nr 28 with start, len, advice). Race: an event queued between snapshot and read() may
 * have no matching line; the TS side must treat an unmatched REMOVE conservatively.
 * UFFD_EVENT_FORK: msg.arg.fork.ufd is a new uffd fd already installed in THIS process; the drainer owns it.
 */
export const reader_record = struct('reader_record', { recordSize: u32, snapshotLen: u32, batchSeq: u64, readNs: u64 });

/** Sizes as the addon reports them in its constants (a test compares). */
export const UFFD_MSG_SIZE = uffd_msg.size;
export const READER_RECORD_HEADER_SIZE = reader_record.size;

// Event numbers (UFFD_EVENT_*), x86-64 and every other arch.
export const UFFD_EVENT_PAGEFAULT = 0x12;
export const UFFD_EVENT_FORK = 0x13;
export const UFFD_EVENT_REMAP = 0x14;
export const UFFD_EVENT_REMOVE = 0x15;
export const UFFD_EVENT_UNMAP = 0x16;

export type UffdRecord =
  | { kind: 'UNMAP' | 'REMOVE'; start: number; end: number; snapshot: string; batchSeq: bigint; readNs: bigint }
  | { kind: 'REMAP'; from: number; to: number; len: number; batchSeq: bigint; readNs: bigint }
  | { kind: 'FORK'; ufd: number; batchSeq: bigint; readNs: bigint }
  | { kind: 'PAGEFAULT'; flags: number; address: number; batchSeq: bigint; readNs: bigint }
  | { kind: 'UNKNOWN'; event: number; batchSeq: bigint; readNs: bigint };

export function decodeReaderRecords(buf: Uint8Array): UffdRecord[] {
  const out: UffdRecord[] = [];
  const dv = view(buf); // one view for every record (the checks below keep each read inside buf)
  let off = 0;
  while (off + READER_RECORD_HEADER_SIZE + UFFD_MSG_SIZE <= buf.length) {
    const h = reader_record.read(dv, off);
    if (h.recordSize < READER_RECORD_HEADER_SIZE + UFFD_MSG_SIZE || off + h.recordSize > buf.length) throw new Error(`bad reader record at ${off}`);
    const m = uffd_msg.read(dv, off + READER_RECORD_HEADER_SIZE);
    const { batchSeq, readNs } = h;
    const textAt = off + READER_RECORD_HEADER_SIZE + UFFD_MSG_SIZE;
    switch (m.event) {
      case UFFD_EVENT_UNMAP:
      case UFFD_EVENT_REMOVE:
        out.push({ kind: m.event === UFFD_EVENT_UNMAP ? 'UNMAP' : 'REMOVE', start: Number(m.a), end: Number(m.b), batchSeq, readNs,
          snapshot: h.snapshotLen ? Buffer.from(buf.buffer, buf.byteOffset + textAt, h.snapshotLen).toString('latin1') : '' });
        break;
      case UFFD_EVENT_REMAP: out.push({ kind: 'REMAP', from: Number(m.a), to: Number(m.b), len: Number(m.c), batchSeq, readNs }); break;
      case UFFD_EVENT_FORK: out.push({ kind: 'FORK', ufd: Number(m.a & 0xffffffffn), batchSeq, readNs }); break;
      // pagefault: u64 flags; u64 address; union { u32 ptid }
      case UFFD_EVENT_PAGEFAULT: out.push({ kind: 'PAGEFAULT', flags: Number(m.a), address: Number(m.b), batchSeq, readNs }); break;
      default: out.push({ kind: 'UNKNOWN', event: m.event, batchSeq, readNs });
    }
    off += h.recordSize;
  }
  return out;
}

// ---- /proc/TID/syscall snapshot: telling MADV_FREE from DONTNEED (docs/semantics.md §4) ----

/** x86-64 syscall number of madvise (arch/x86/entry/syscalls/syscall_64.tbl). */
export const SYS_MADVISE_X86_64 = 28;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTNEED_LOCKED = 24;

export interface BlockedMadvise { tid: number; start: number; len: number; advice: number }

/** Threads shown in madvise by a snapshot ("<tid> 28 0x<start> 0x<len> 0x<advice> ..." lines). */
export function parseSyscallSnapshot(text: string): BlockedMadvise[] {
  const out: BlockedMadvise[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5 || Number(f[1]) !== SYS_MADVISE_X86_64) continue;
    out.push({ tid: Number(f[0]), start: parseInt(f[2], 16), len: parseInt(f[3], 16), advice: parseInt(f[4], 16) });
  }
  return out;
}

/**
 * CLEAR's `removed` for a REMOVE event over [start, end): the advice of the madvise call whose range covers it.
 * FREE → not removed; DONTNEED/DONTNEED_LOCKED/REMOVE → removed; no matching thread or conflicting advices → removed
 * (conservative, docs/semantics.md §4) with a note for the trace.
 */
export function removeVerdict(snapshot: string, start: number, end: number): { removed: boolean; note: string } {
  const hits = parseSyscallSnapshot(snapshot).filter((m) => m.start <= start && m.start + m.len >= end);
  const advices = new Set(hits.map((h) => h.advice));
  if (advices.size === 1) {
    const adv = [...advices][0];
    if (adv === MADV_FREE) return { removed: false, note: 'uffd REMOVE, madvise FREE' };
    if (adv === MADV_DONTNEED || adv === MADV_REMOVE || adv === MADV_DONTNEED_LOCKED) return { removed: true, note: `uffd REMOVE, madvise ${adv === MADV_REMOVE ? 'REMOVE' : 'DONTNEED'}` };
    return { removed: true, note: `uffd REMOVE, madvise advice ${adv}: treated as DONTNEED` };
  }
  if (advices.size > 1) return { removed: true, note: 'uffd REMOVE, several threads in madvise with different advice: treated as DONTNEED' };
  return { removed: true, note: 'uffd REMOVE, advice unknown: treated as DONTNEED' };
}
