// The preload transport's frames on a lane (docs/preload-protocol.md), 1:1 with uffd/preload/wire.h.
import { i32, struct, u32, u64 } from '../../core/abi/layout';

export const vge_req = struct('vge_req', { op: u32, seq: u32, nranges: u32, nfds: u32, flags: u32, cmd: u32, arg: u64 });
export const vge_range = struct('vge_range', { addr: u64, len: u32, pad: u32 });
export const vge_fd_item = struct('vge_fd_item', { fd: i32, attached: u32 });
export const vge_reply = struct('vge_reply', { kind: u32, seq: u32, result: i32, err: u32, nranges: u32, nfds: u32, aux: u64 });
export const vge_install = struct('vge_install', { range: u32, at: u32 });

export const enum VgeOp { VGE_OP_OPEN = 1, VGE_OP_IOCTL = 2, VGE_OP_MAP = 3, VGE_OP_FORK = 4 }
export const enum VgeReplyKind { VGE_DONE = 1, VGE_NEED = 2 }
/** IOCTL flags: the request names the node fd its lane's previous IOCTL carried instead of attaching it. */
export const VGE_IOCTL_SAME_FILE = 1;

/** Ranges per direction, bytes per direction, fds per frame (the C library's own limits: wire.h). */
export const VGE_MAX_RANGES = 256;
export const VGE_MAX_BYTES = 32 * 4096;
export const VGE_MAX_FDS = 8;
/** Longest frame either way. */
export const VGE_MAX_FRAME = vge_req.size + VGE_MAX_RANGES * vge_range.size + VGE_MAX_FDS * vge_fd_item.size + VGE_MAX_BYTES;
/** The lane handshake's kind on the client channel, and the protocol version its OK names. */
export const LANE_KIND = 'lane';
export const PRELOAD_PROTOCOL_VERSION = 1;
