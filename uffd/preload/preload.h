// virtgpu-emu-preload.so: what its parts (one file per concern, all in uffd/preload/) share.
//   handoff.c   hands this process's userfaultfd to the server at load time (and a forked child's)
//   node.c      the render node over the preload transport: open/ioctl/mmap interposition, lanes (wire.h)
//   discovery.c libdrm's discovery and the stat family see the node as a virtio-gpu render node 226:128 on PCI
#ifndef VIRTGPU_EMU_PRELOAD_H
#define VIRTGPU_EMU_PRELOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VGE_EXPORT __attribute__((visibility("default")))

/** The render node path a client opens by default (besides $VIRTGPU_EMU_DEVICE). */
#define DEFAULT_NODE "/dev/dri/renderD128"

struct vge_req;
struct vge_reply;

/** 1 when fd is a node connection made by the preload transport (any copy of one: dup, fork, SCM_RIGHTS; node.c). */
int vge_node_fd(int fd);
/**
 * 1 when p names the node: the default render node path or $VIRTGPU_EMU_DEVICE, whatever the transport
 * (discovery.c). node.c serves opens of it only when the preload transport is on ($VIRTGPU_EMU_SOCK).
 */
int vge_node_path(const char *p);

/**
 * One request on the calling thread's lane (docs/preload-protocol.md): node_fd (when >= 0) then fds go as
 * SCM_RIGHTS; req->seq is set here. The body may be built in place in vge_frame()'s buffer. On 0, *reply is the
 * reply's header, *reply_body its rest (valid until this thread's next request) and rfds the fds it carried
 * (close-on-exec, owned by the caller). Returns 0 or -errno (-ENODEV: no server).
 */
int vge_request(int node_fd, struct vge_req *req, const void *body, size_t body_len, const int *fds, int nfds,
                struct vge_reply *reply, const uint8_t **reply_body, size_t *reply_len, int *rfds, int *nrfds);
/** The calling thread's frame buffer for a request body (cap bytes), or NULL with errno set. */
uint8_t *vge_frame(size_t *cap);

/** mmap of a node fd: the MAP request, then the object's memfd mapped at the caller's address and flags (map.c). */
void *vge_map(void *addr, size_t len, int prot, int flags, int fd, off_t off);

/** A SOCK_SEQPACKET, close-on-exec connection to the channel socket `path`, send/receive timeouts of timeout_s; -1 and errno. */
int vge_connect(const char *path, int timeout_s);
/**
 * One message on a channel socket: buf, then fds (at most VGE_MAX_FDS + 1) as SCM_RIGHTS and, with creds, this
 * process's credentials as SCM_CREDENTIALS. 0, or -errno (-ENODEV when the server is gone; handoff.c).
 */
int vge_send(int s, const void *buf, size_t len, const int *fds, int nfds, int creds);

/** Hand a userfaultfd of this process to the server ($VIRTGPU_EMU_UFFD_SOCK; handoff.c). */
void vge_handoff_uffd(void);

#endif
