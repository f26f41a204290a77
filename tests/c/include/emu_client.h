/* emu_client.h: small helpers shared by the C clients (device open, errno-returning ioctl wrappers, TAP output). */
#ifndef VIRTGPU_EMU_CLIENT_H
#define VIRTGPU_EMU_CLIENT_H

#include <stdint.h>
#include <stddef.h>
#include "virtgpu_userptr.h"

#define EMU_PAGE 4096UL

/* Opens the render node named by $VIRTGPU_EMU_DEVICE, else `fallback` (argv[1]); exits 2 with a message if neither. */
int emu_open_device(const char *prog, const char *fallback);
/* "pin" when $VIRTGPU_EMU_MODE=pin (docs/semantics.md §7.3), else "notifier". */
int emu_pin_mode(void);
/* The uAPI revision the node speaks: $VIRTGPU_EMU_UAPI (set by `virtgpu-emu run`), default "v1". */
const char *emu_uapi(void);
/* 1 when $VIRTGPU_EMU_WATCH=proc: the /proc checker alone (docs/semantics.md §4: a changed frame is the only signal, approximate). */
int emu_proc_watch(void);

/* Each wrapper returns the ioctl's non-negative result, or -errno (drmIoctl already retries EINTR/EAGAIN). */
int emu_ioctl(int fd, unsigned long req, void *arg);
int emu_getparam(int fd, uint64_t param, int *value);
int emu_context_init_hsakmt(int fd);
struct emu_bo { uint32_t handle, res; uint64_t offset; };
/* CREATE_BLOB HOST3D_GUEST + USE_USERPTR (| extra_flags) over [ptr, ptr+size) with a fresh blob_id, as the HSAKMT UMD does,
 * in the struct of emu_uapi(): v1's 64 bytes (v1, v2), 56 (v3-v5), 72 (libhsakmt-72; offset @64); docs/uapi-revisions.md. */
int emu_create_userptr(int fd, const void *ptr, uint64_t size, uint32_t extra_flags, struct emu_bo *out);
/* v6 takes page-aligned ranges only (and HINT_USERPTR / HINT_USERPTR_RDONLY in its 64-byte struct): emu_create_userptr
 * widens a range to its pages there, as a v6 UMD must, unless this is 0. */
extern int emu_v6_widen;
int emu_gem_close(int fd, uint32_t handle);
int emu_resource_info(int fd, uint32_t handle, struct virtgpu_emu_resource_info *out);

/* An errno as its name ("EINVAL"), or "0" / "+3" for results. */
const char *emu_rc_name(int rc);

/* Anonymous private RW mapping of `pages` pages (touched when `touch`); exits 2 if mmap fails. */
void *emu_map(size_t pages, int touch);

#endif
