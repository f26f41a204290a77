// virtgpu-emu-preload.so: what its parts (one file per concern, all in uffd/preload/) share.
//   handoff.c   hands this process's userfaultfd to the server at load time
#ifndef VIRTGPU_EMU_PRELOAD_H
#define VIRTGPU_EMU_PRELOAD_H

#define VGE_EXPORT __attribute__((visibility("default")))

#endif
