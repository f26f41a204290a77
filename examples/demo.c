// demo: what `npm start` shows a new user: the life of a userptr BO on a virtgpu-emu render node, step by step,
// each ioctl printed with what it returned and what that means. A plain libdrm client: nothing in it knows it
// talks to an emulator. Exit status 0 when every step behaved as the spec says for the mode ($VIRTGPU_EMU_MODE).
// Usage: demo [DEVICE]
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"

#define PG EMU_PAGE
static int fd, pin, surprises;

static void step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void step(const char *fmt, ...) {
	static int n;
	va_list ap;
	va_start(ap, fmt);
	printf("\n%d. ", ++n);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}
/* One indented result line: "   <call> → <result>   <meaning>"; counts it when it is not what the spec says. */
static void said(int as_expected, const char *call, int rc, const char *meaning, ...) __attribute__((format(printf, 4, 5)));
static void said(int as_expected, const char *call, int rc, const char *meaning, ...) {
	va_list ap;
	va_start(ap, meaning);
	printf("   %-44s -> %-7s ", call, emu_rc_name(rc));
	vprintf(meaning, ap);
	printf("%s\n", as_expected ? "" : "   [UNEXPECTED]");
	va_end(ap);
	if (!as_expected) surprises++;
}

static void info(uint32_t handle, int expect_alive, const char *why_gone) {
	struct virtgpu_emu_resource_info ri;
	char call[64];
	snprintf(call, sizeof call, "RESOURCE_INFO(handle %u)", handle);
	int rc = emu_resource_info(fd, handle, &ri);
	if (rc == 0) said(expect_alive, call, rc, "alive: res %u, %u bytes", ri.res_handle, ri.size);
	else said(!expect_alive, call, rc, "gone: %s", why_gone);
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	pin = emu_pin_mode();
	fd = emu_open_device("demo", argc > 1 ? argv[1] : NULL);
	const char *dev = getenv("VIRTGPU_EMU_DEVICE");
	printf("virtgpu-emu demo: a userptr BO's life on %s (mode %s)\n", dev && *dev ? dev : argv[1], pin ? "pin" : "notifier");
	printf("Every line below is a real ioctl from this process (pid %d) through libdrm.\n", (int)getpid());

	step("Who is there? (drmGetVersion, GETPARAM)");
	drmVersionPtr v = drmGetVersion(fd);
	if (v) {
		printf("   drmGetVersion -> driver \"%s\" %d.%d.%d, \"%s\"\n", v->name, v->version_major, v->version_minor,
		       v->version_patchlevel, v->desc);
		drmFreeVersion(v);
	}
	int val = 0;
	int rc = emu_getparam(fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &val);
	said(rc == 0 && (val & (1 << VIRTIO_GPU_CAPSET_HSAKMT)), "GETPARAM(SUPPORTED_CAPSET_IDs)", rc, "mask 0x%x: the HSAKMT capset (8) is there", val);

	step("Create an HSAKMT context (userptrs live in one)");
	rc = emu_context_init_hsakmt(fd);
	said(rc == 0, "CONTEXT_INIT(CAPSET_ID=HSAKMT)", rc, "%s", rc == 0 ? "context ready" : "no context: the creates below will fail");

	step("Register 16 pages of ordinary malloc-like memory as a GPU buffer");
	char *mem = emu_map(16, 1);
	strcpy(mem, "hello from the CPU side");
	struct emu_bo bo, d;
	rc = emu_create_userptr(fd, mem, 16 * PG, 0, &bo);
	said(rc == 0, "CREATE_BLOB(USE_USERPTR, 16 pages)", rc, "new BO: handle %u, host resource %u; the pages are pinned", bo.handle, bo.res);
	if (rc != 0) { printf("\nCannot continue without a BO.\n"); return 1; }

	step("Register a small piece inside it again (what a UMD does for sub-allocations)");
	rc = emu_create_userptr(fd, mem + 3 * PG + 0x20, 0x100, 0, &d);
	if (pin) said(rc == 0, "CREATE_BLOB(page 3 + 0x20, 256 bytes)", rc, "pin mode has no dedup: another BO, handle %u", d.handle);
	else said(rc == VIRTGPU_EMU_USERPTR_EXISTS && d.handle == bo.handle && d.offset == 3 * PG, "CREATE_BLOB(page 3 + 0x20, 256 bytes)", rc,
	          "already registered: same handle %u, offset 0x%llx inside it, no new host resource", d.handle, (unsigned long long)d.offset);
	if (pin && rc == 0) emu_gem_close(fd, d.handle);

	step("Free the last 4 pages (munmap pages 12..15): %s", pin ? "pin mode keeps the BO whole (the pages stay pinned)" : "the BO shrinks to pages 0..11");
	munmap(mem + 12 * PG, 4 * PG);
	rc = emu_create_userptr(fd, mem + 2 * PG, 0x10, 0, &d);
	if (pin) {
		said(rc == 0, "CREATE_BLOB(page 2)", rc, "pin mode: nothing was split; a new BO %u", d.handle);
		if (rc == 0) emu_gem_close(fd, d.handle);
	} else
		said(rc == VIRTGPU_EMU_USERPTR_EXISTS && d.handle == bo.handle, "CREATE_BLOB(page 2)", rc,
		     "page 2 is still in the BO (handle %u, offset 0x%llx)", d.handle, (unsigned long long)d.offset);
	mmap(mem + 12 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	memset(mem + 12 * PG, 1, 4 * PG);
	struct emu_bo tail;
	rc = emu_create_userptr(fd, mem + 12 * PG, 4 * PG, 0, &tail);
	said(rc == 0 && tail.handle != bo.handle, "mmap pages 12..15 again, CREATE_BLOB there", rc,
	     "new memory at the old address is a new BO (handle %u, resource %u), never the stale one", tail.handle, tail.res);

	step("Tell the kernel the first 12 pages are not needed (madvise DONTNEED): %s",
	     pin ? "pin mode: the BO keeps its pinned pages" : "their contents are gone, so is the BO");
	madvise(mem, 12 * PG, MADV_DONTNEED);
	rc = emu_create_userptr(fd, mem + 12 * PG + 0x10, 0x10, 0, &d); /* any create flushes the notifier's work first */
	if (pin) { if (rc == 0) emu_gem_close(fd, d.handle); }
	info(bo.handle, pin, "the notifier saw the pages removed and evicted the BO");

	step("Free the re-mapped tail (munmap pages 12..15): %s", pin ? "pin mode: its BO lives until GEM_CLOSE" : "its BO is deleted without a GEM_CLOSE");
	munmap(mem + 12 * PG, 4 * PG);
	int wv;
	emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &wv); /* any ioctl entry applies what the notifier queued */
	info(tail.handle, pin, "munmap of the whole range deleted it (GEM_CLOSE would now say EINVAL)");

	step("Close the device: everything left is released");
	if (pin) { emu_gem_close(fd, bo.handle); emu_gem_close(fd, tail.handle); }
	munmap(mem, 12 * PG);
	rc = close(fd) == 0 ? 0 : -errno;
	said(rc == 0, "close(fd)", rc, "file released");

	if (surprises)
		printf("\n%d step(s) did not behave as the spec says for %s mode%s.\n", surprises, pin ? "pin" : "notifier",
		       pin ? "" : " (is the server watching this process's memory? see `virtgpu-emu doctor`)");
	else
		printf("\nDone: every step behaved as the spec says for %s mode.\n", pin ? "pin" : "notifier");
	return surprises ? 1 : 0;
}
