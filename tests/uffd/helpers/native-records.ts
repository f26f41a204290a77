// Independent decoder of readerDrain() records for the tests, written from <linux/userfaultfd.h> and the record
// format documented above reader_record in uffd/abi.ts and struct RecordHeader in uffd/native/reader.cc (not the
// production decoder).

export interface TestRecord {
  event: number;
  batchSeq: bigint;
  readNs: bigint;
  /** pagefault: flags, address; fork: ufd; remap: from, to, len; remove/unmap: start, end */
  a: bigint;
  b: bigint;
  c: bigint;
  ufd: number;
  snapshot: string;
}

const HEADER = 24; // u32 recordSize, u32 snapshotLen, u64 batchSeq, u64 readNs
const MSG = 32; // struct uffd_msg: u8 event, 7 reserved bytes, 24-byte arg union

export function decodeRecords(buf: Buffer): TestRecord[] {
  const out: TestRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    const size = buf.readUInt32LE(off);
    const snapLen = buf.readUInt32LE(off + 4);
    if (size < HEADER + MSG || size % 8 !== 0 || off + size > buf.length) throw new Error(`bad record at ${off}`);
    const msg = off + HEADER;
    out.push({
      event: buf.readUInt8(msg),
      batchSeq: buf.readBigUInt64LE(off + 8),
      readNs: buf.readBigUInt64LE(off + 16),
      a: buf.readBigUInt64LE(msg + 8),
      b: buf.readBigUInt64LE(msg + 16),
      c: buf.readBigUInt64LE(msg + 24),
      ufd: buf.readUInt32LE(msg + 8),
      snapshot: buf.toString('latin1', msg + MSG, msg + MSG + snapLen),
    });
    off += size;
  }
  return out;
}
