// linux/fuse.h tables, names 1:1 with the header (protocol 7.45 as offered by 6.18; CUSE from 7.38 kernels).
// Every offset comes from core/abi/layout.ts; sizes are asserted against sizeof in tests/cuse-dev/abi.test.ts.
import { struct, u16, u32, i32, u64, pad, array } from '../../core/abi/layout';

export const FUSE_KERNEL_VERSION = 7;
/** The minor we answer with: ≥ 16 so RETRY iovecs use the 16-byte fuse_ioctl_iovec; 38 is what 6.1 (the VM kernel) speaks. */
export const FUSE_KERNEL_MINOR_VERSION = 38;
/** The kernel refuses CUSE servers below 7.11 and we rely on ≥ 7.16 iovec semantics. */
export const FUSE_MIN_MINOR = 16;

export const fuse_in_header = struct('fuse_in_header', {
  len: u32, opcode: u32, unique: u64, nodeid: u64, uid: u32, gid: u32, pid: u32, total_extlen: u16, padding: pad(2, 2),
});
export const fuse_out_header = struct('fuse_out_header', { len: u32, error: i32, unique: u64 });

// ---- INIT ----
/** 7.36+ kernels send 64 bytes; older ones only the first 16 (major, minor, max_readahead, flags): decode zero-fills. */
export const fuse_init_in = struct('fuse_init_in', {
  major: u32, minor: u32, max_readahead: u32, flags: u32, flags2: u32, unused: pad(44, 4),
});
export const fuse_init_out = struct('fuse_init_out', {
  major: u32, minor: u32, max_readahead: u32, flags: u32, max_background: u16, congestion_threshold: u16,
  max_write: u32, time_gran: u32, max_pages: u16, map_alignment: u16, flags2: u32, max_stack_depth: u32,
  request_timeout: u16, unused: pad(22, 2),
});
/** INIT flags we may ask for (fuse.h FUSE_*); we answer 0 or a subset of what the kernel offered. */
export const FUSE_ASYNC_READ = 1 << 0;
export const FUSE_BIG_WRITES = 1 << 5;
export const FUSE_MAX_PAGES = 1 << 22;
export const FUSE_INIT_EXT = 1 << 30;

export const cuse_init_in = struct('cuse_init_in', { major: u32, minor: u32, unused: u32, flags: u32 });
export const cuse_init_out = struct('cuse_init_out', {
  major: u32, minor: u32, unused: u32, flags: u32, max_read: u32, max_write: u32, dev_major: u32, dev_minor: u32,
  spare: array(u32, 10),
});
export const CUSE_UNRESTRICTED_IOCTL = 1 << 0;
/** The packed "KEY=VAL\0" info string after cuse_init_out may be at most this long (fs/fuse/cuse.c). */
export const CUSE_INIT_INFO_MAX = 4096;

// ---- files ----
export const fuse_open_in = struct('fuse_open_in', { flags: u32, open_flags: u32 });
export const fuse_open_out = struct('fuse_open_out', { fh: u64, open_flags: u32, backing_id: i32 });
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;

export const fuse_release_in = struct('fuse_release_in', { fh: u64, flags: u32, release_flags: u32, lock_owner: u64 });
export const fuse_flush_in = struct('fuse_flush_in', { fh: u64, unused: u32, padding: pad(4, 4), lock_owner: u64 });
export const fuse_read_in = struct('fuse_read_in', {
  fh: u64, offset: u64, size: u32, read_flags: u32, lock_owner: u64, flags: u32, padding: pad(4, 4),
});
export const fuse_write_in = struct('fuse_write_in', {
  fh: u64, offset: u64, size: u32, write_flags: u32, lock_owner: u64, flags: u32, padding: pad(4, 4),
});
export const fuse_write_out = struct('fuse_write_out', { size: u32, padding: pad(4, 4) });
export const fuse_poll_in = struct('fuse_poll_in', { fh: u64, kh: u64, flags: u32, events: u32 });
export const fuse_poll_out = struct('fuse_poll_out', { revents: u32, padding: pad(4, 4) });
export const fuse_interrupt_in = struct('fuse_interrupt_in', { unique: u64 });

// ---- ioctl ----
export const fuse_ioctl_in = struct('fuse_ioctl_in', { fh: u64, flags: u32, cmd: u32, arg: u64, in_size: u32, out_size: u32 });
export const fuse_ioctl_out = struct('fuse_ioctl_out', { result: i32, flags: u32, in_iovs: u32, out_iovs: u32 });
export const fuse_ioctl_iovec = struct('fuse_ioctl_iovec', { base: u64, len: u64 });
export const FUSE_IOCTL_COMPAT = 1 << 0;
export const FUSE_IOCTL_UNRESTRICTED = 1 << 1;
export const FUSE_IOCTL_RETRY = 1 << 2;
export const FUSE_IOCTL_32BIT = 1 << 3;
export const FUSE_IOCTL_DIR = 1 << 4;
export const FUSE_IOCTL_COMPAT_X32 = 1 << 5;
/** Max in_iovs + out_iovs of one RETRY (fs/fuse/ioctl.c); more → the caller gets ENOMEM. */
export const FUSE_IOCTL_MAX_IOV = 256;
/** Bytes per direction of one CUSE ioctl: fc->max_pages (32, not negotiable on CUSE) × 4 KiB; more → ENOMEM. */
export const FUSE_IOCTL_MAX_BYTES = 32 * 4096;

// ---- a minimal inode tree (FUSE transport) ----
export const fuse_attr = struct('fuse_attr', {
  ino: u64, size: u64, blocks: u64, atime: u64, mtime: u64, ctime: u64, atimensec: u32, mtimensec: u32, ctimensec: u32,
  mode: u32, nlink: u32, uid: u32, gid: u32, rdev: u32, blksize: u32, flags: u32,
});
export const fuse_entry_out = struct('fuse_entry_out', {
  nodeid: u64, generation: u64, entry_valid: u64, attr_valid: u64, entry_valid_nsec: u32, attr_valid_nsec: u32, attr: fuse_attr,
});
export const fuse_attr_out = struct('fuse_attr_out', { attr_valid: u64, attr_valid_nsec: u32, dummy: u32, attr: fuse_attr });
export const fuse_getattr_in = struct('fuse_getattr_in', { getattr_flags: u32, dummy: u32, fh: u64 });
export const FUSE_GETATTR_FH = 1 << 0;
export const fuse_forget_in = struct('fuse_forget_in', { nlookup: u64 });
export const fuse_forget_one = struct('fuse_forget_one', { nodeid: u64, nlookup: u64 });
export const fuse_batch_forget_in = struct('fuse_batch_forget_in', { count: u32, dummy: u32 });
/** READDIR entry: fixed part, then `namelen` name bytes, padded to 8 (FUSE_DIRENT_ALIGN). */
export const fuse_dirent = struct('fuse_dirent', { ino: u64, off: u64, namelen: u32, type: u32 });
export const FUSE_DIRENT_ALIGN = 8;
export const FUSE_ROOT_ID = 1;

/** sys/stat.h file type bits and dirent d_type values used by the tree. */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const DT_DIR = 4;
export const DT_REG = 8;

/** Read buffer for /dev/fuse: at least max(8192, header + max_write) or the kernel answers EINVAL to read(2). */
export const FUSE_MIN_READ_BUFFER = 8192;
