// virtgpu-emu-preload.so: what its parts (one file per concern, all in uffd/preload/) share.
//   handoff.c   hands this process's userfaultfd to the server at load time
//   discovery.c libdrm's discovery and the stat family see the node as a virtio-gpu render node 226:128 on PCI
#ifndef VIRTGPU_EMU_PRELOAD_H
#define VIRTGPU_EMU_PRELOAD_H

#define VGE_EXPORT __attribute__((visibility("default")))

// Node identity (node.c; discovery.c has weak fallbacks so that it links alone).
int vge_node_fd(int fd);           // 1 when fd is a node connection made by the preload
int vge_node_path(const char *p);  // 1 when p names the served node path

#endif
