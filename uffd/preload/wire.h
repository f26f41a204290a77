// The preload transport's frames on a lane (docs/preload-protocol.md; the TypeScript tables are
// cuse-dev/abi/preload.ts). Little endian, naturally aligned.
#ifndef VIRTGPU_EMU_PRELOAD_WIRE_H
#define VIRTGPU_EMU_PRELOAD_WIRE_H

#include <stdint.h>

enum { VGE_OP_OPEN = 1, VGE_OP_IOCTL = 2, VGE_OP_MAP = 3, VGE_OP_FORK = 4 };
enum { VGE_DONE = 1, VGE_NEED = 2 };
/** IOCTL flags: the request names the node fd this lane's previous IOCTL carried instead of attaching it. */
enum { VGE_IOCTL_SAME_FILE = 1 };

struct vge_req {
  uint32_t op, seq, nranges, nfds, flags, cmd;
  uint64_t arg;
};
struct vge_range {
  uint64_t addr;
  uint32_t len, pad;
};
struct vge_fd_item {
  int32_t fd;
  uint32_t attached;
};
struct vge_reply {
  uint32_t kind, seq;
  int32_t result;
  uint32_t err, nranges, nfds;
  uint64_t aux;
};
struct vge_install {
  uint32_t range, at;
};

_Static_assert(sizeof(struct vge_req) == 32, "vge_req");
_Static_assert(sizeof(struct vge_range) == 16, "vge_range");
_Static_assert(sizeof(struct vge_fd_item) == 8, "vge_fd_item");
_Static_assert(sizeof(struct vge_reply) == 32, "vge_reply");
_Static_assert(sizeof(struct vge_install) == 8, "vge_install");

/** Limits the server enforces too: ranges per direction, bytes per direction, fds per frame, plan rounds. */
#define VGE_MAX_RANGES 256
#define VGE_MAX_BYTES (32 * 4096)
#define VGE_MAX_FDS 8
#define VGE_MAX_ROUNDS 16
/** Longest frame either way: header, 256 ranges, 8 fd items, the bytes. */
#define VGE_MAX_FRAME (32 + VGE_MAX_RANGES * 16 + VGE_MAX_FDS * 8 + VGE_MAX_BYTES)

#endif
