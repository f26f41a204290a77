// userptr_scenarios: docs/semantics.md §7 (and the §2/§3 error rules) as named sub-tests against a virtgpu-emu render node,
// driven the way a UMD would: libdrm's drmIoctl/drmGetVersion, real mmap/munmap/madvise/mprotect/mremap/fork.
// Output is TAP-like: "ok N - name" / "not ok N - name: details"; exit status 1 if any sub-test failed.
// Usage: userptr_scenarios [--list] [DEVICE]   (device from $VIRTGPU_EMU_DEVICE first; $VIRTGPU_EMU_MODE=pin → docs/semantics.md §7.3)
//   --list prints the scenario names, one a line, and exits (the e2e test declares one test per name).
// The scenarios share one open file and run in order, like a UMD: context init must precede the first create.
// In notifier mode the munmap/madvise/mremap outcomes need the server to watch this process's memory (uffd or
// /proc watcher); a failure there says so.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"

#define PG EMU_PAGE

static int fd = -1;
/* What the revision the node speaks does (docs/uapi-revisions.md §2, §4), from $VIRTGPU_EMU_UAPI and $VIRTGPU_EMU_MODE:
 * v1 and libhsakmt-72 dedup and have the notifier unless --mode pin; v2 dedups without a notifier; v3-v6 do neither;
 * a failed pin is ENOMEM in v1, v2 and libhsakmt-72, the pin's own EFAULT in v3-v6; v3 and v4 have no USERPTR_RDONLY;
 * v6 takes page-aligned ranges only (emu_create_userptr widens them there). */
static int pin;              /* no notifier: munmap/madvise change nothing (docs/semantics.md §7.3) */
static int dedup;            /* a create inside a valid userptr returns +3 with its handle and the offset */
static int pin_errno;        /* what a create whose pages cannot be pinned returns */
static int has_rdonly;       /* USERPTR_RDONLY is in the flag mask */
static char why[1024];       /* first failed expectation of the running scenario */
static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
	if (why[0]) return; /* keep the first: later ones are usually consequences */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
}
#define EXPECT(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)
#define EXPECT_RC(got, want, what) \
	do { int g_ = (got), w_ = (want); if (g_ != w_) fail("%s: got %s, want %s", (what), emu_rc_name(g_), emu_rc_name(w_)); } while (0)
static const char *const NOTIFIER_HINT = " (BO still alive after the flushing create: is the server watching this client's memory?)";

/* The anchor: a userptr BO that stays for the whole run; a create inside it is a flush with no new handle. */
static char *anchor;
static struct emu_bo anchor_bo;

/* Spec §3.4: a create flushes the work list. Notifier mode: dedup inside the anchor (+3, no new handle);
 * pin mode: a new BO that is closed again. */
static void flush_by_create(void) {
	struct emu_bo b;
	int rc = emu_create_userptr(fd, anchor + 0x200, 0x10, 0, &b);
	if (!dedup) {
		EXPECT_RC(rc, 0, "flushing create inside the anchor BO (no dedup: a new BO)");
		if (rc == 0) emu_gem_close(fd, b.handle);
	} else {
		EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "flushing create inside the anchor BO (dedup)");
		EXPECT(rc != VIRTGPU_EMU_USERPTR_EXISTS || b.handle == anchor_bo.handle,
		       "flushing create: dedup returned handle %u, the anchor is %u", b.handle, anchor_bo.handle);
	}
}

/* After an invalidating event and a flush: notifier mode → the BO is gone (RESOURCE_INFO ENOENT, GEM_CLOSE EINVAL);
 * pin mode → it is still there and GEM_CLOSE frees it. */
static void expect_deleted_unless_pin(const struct emu_bo *bo, const char *event) {
	struct virtgpu_emu_resource_info ri;
	int rc = emu_resource_info(fd, bo->handle, &ri);
	if (pin) {
		EXPECT_RC(rc, 0, "pin mode: RESOURCE_INFO(handle) after the event");
		EXPECT_RC(emu_gem_close(fd, bo->handle), 0, "pin mode: GEM_CLOSE(handle) after the event");
		return;
	}
	if (rc == 0)
		fail("after %s: RESOURCE_INFO(old handle %u) returned 0 (res %u), want ENOENT%s", event, bo->handle, ri.res_handle, NOTIFIER_HINT);
	else
		EXPECT_RC(rc, -ENOENT, "RESOURCE_INFO(old handle) after the event");
	EXPECT_RC(emu_gem_close(fd, bo->handle), -EINVAL, "GEM_CLOSE(old handle) after the event");
}

/* After a non-invalidating event and a flush: the BO is alive and (notifier mode) still found by dedup. */
static void expect_unchanged(const struct emu_bo *bo, char *mem, const char *event) {
	struct virtgpu_emu_resource_info ri;
	EXPECT_RC(emu_resource_info(fd, bo->handle, &ri), 0, "RESOURCE_INFO(handle) after the event");
	struct emu_bo d;
	int rc = emu_create_userptr(fd, mem + 0x10, 0x10, 0, &d);
	if (!dedup) {
		EXPECT_RC(rc, 0, "no dedup: create inside the BO makes a new one");
		if (rc == 0) emu_gem_close(fd, d.handle);
	} else {
		if (rc == 0) {
			fail("after %s: create inside the BO returned 0 (new handle %u), want +3 with handle %u: the event "
			     "invalidated or evicted a BO whose pages did not change", event, d.handle, bo->handle);
			emu_gem_close(fd, d.handle);
		} else {
			EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "create inside the BO after the event (dedup)");
			EXPECT(d.handle == bo->handle, "dedup after %s returned handle %u, want %u", event, d.handle, bo->handle);
		}
	}
	EXPECT_RC(emu_gem_close(fd, bo->handle), 0, "GEM_CLOSE(handle)");
}

/* ---- scenarios ---- */

static void t_version(void) {
	drmVersionPtr v = drmGetVersion(fd);
	if (!v) { fail("drmGetVersion failed: %s", strerror(errno)); return; }
	EXPECT(v->name && strcmp(v->name, "virtio_gpu") == 0, "name '%s', want 'virtio_gpu'", v->name ? v->name : "(null)");
	EXPECT(v->version_major == 0 && v->version_minor == 1 && v->version_patchlevel == 0,
	       "version %d.%d.%d, want 0.1.0", v->version_major, v->version_minor, v->version_patchlevel);
	EXPECT(v->date && strcmp(v->date, "0") == 0, "date '%s', want '0'", v->date ? v->date : "(null)");
	EXPECT(v->desc && strcmp(v->desc, "virtio GPU") == 0, "desc '%s', want 'virtio GPU'", v->desc ? v->desc : "(null)");
	drmFreeVersion(v);
}

static void t_get_cap(void) {
	uint64_t v = 0;
	int rc = drmGetCap(fd, DRM_CAP_PRIME, &v);
	EXPECT(rc == 0 && v == 3, "GET_CAP PRIME: rc %d value %llu, want 0 and 3 (import|export)", rc, (unsigned long long)v);
	v = 0;
	rc = drmGetCap(fd, DRM_CAP_SYNCOBJ, &v);
	EXPECT(rc == 0 && v == 1, "GET_CAP SYNCOBJ: rc %d value %llu, want 0 and 1", rc, (unsigned long long)v);
	struct drm_get_cap gc = { .capability = 0x7fff };
	EXPECT_RC(emu_ioctl(fd, DRM_IOCTL_GET_CAP, &gc), -EINVAL, "GET_CAP of an unknown capability");
}

static void t_getparams(void) {
	static const struct { uint64_t param; const char *name; } ones[] = {
		{ VIRTGPU_PARAM_3D_FEATURES, "3D_FEATURES" }, { VIRTGPU_PARAM_RESOURCE_BLOB, "RESOURCE_BLOB" },
		{ VIRTGPU_PARAM_HOST_VISIBLE, "HOST_VISIBLE" }, { VIRTGPU_PARAM_CONTEXT_INIT, "CONTEXT_INIT" },
	};
	for (size_t i = 0; i < sizeof ones / sizeof ones[0]; i++) {
		int v = -1;
		int rc = emu_getparam(fd, ones[i].param, &v);
		EXPECT(rc == 0 && v == 1, "GETPARAM %s: rc %s value %d, want 0 and 1", ones[i].name, emu_rc_name(rc), v);
	}
	int mask = 0;
	int rc = emu_getparam(fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &mask);
	unsigned want = (1u << VIRTIO_GPU_CAPSET_VIRGL2) | (1u << VIRTIO_GPU_CAPSET_HSAKMT);
	EXPECT(rc == 0 && ((unsigned)mask & want) == want, "GETPARAM SUPPORTED_CAPSET_IDs: rc %s mask 0x%x, want bits 2 and 8 (0x%x)",
	       emu_rc_name(rc), mask, want);
	/* The kernel writes a C int: exactly 4 bytes at `value`, the next 4 stay as they were. */
	uint64_t wide = 0xa5a5a5a5a5a5a5a5ULL;
	struct drm_virtgpu_getparam gp = { .param = VIRTGPU_PARAM_3D_FEATURES, .value = (uint64_t)(uintptr_t)&wide };
	rc = emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
	EXPECT(rc == 0 && wide == 0xa5a5a5a500000001ULL, "GETPARAM into a u64 pre-filled with 0xa5: rc %s, u64 now 0x%016llx, "
	       "want 0xa5a5a5a500000001 (4 bytes written)", emu_rc_name(rc), (unsigned long long)wide);
	int v = 0;
	EXPECT_RC(emu_getparam(fd, 0x1000, &v), -EINVAL, "GETPARAM of an unknown param");
	/* Parameter 9 is the uAPI revision's (docs/uapi-revisions.md): none in v1 (the default), v2, v4, v5 and
	 * libhsakmt-72; RESOURCE_USERPTR = 1 in v3; BLOB_ALIGNMENT = 4096 (the default device's) in mainline and v6. */
	const char *uapi = getenv("VIRTGPU_EMU_UAPI");
	uapi = uapi && *uapi ? uapi : "v1";
	int want9 = !strcmp(uapi, "v3") ? 1 : (!strcmp(uapi, "v6") || !strcmp(uapi, "mainline")) ? 4096 : -1;
	v = -1;
	rc = emu_getparam(fd, 9, &v);
	if (want9 < 0) EXPECT_RC(rc, -EINVAL, "GETPARAM 9 (no such parameter in this revision)");
	else EXPECT(rc == 0 && v == want9, "GETPARAM 9 under %s: rc %s value %d, want 0 and %d", uapi, emu_rc_name(rc), v, want9);
}

static void t_get_caps_hsakmt(void) {
	struct virtgpu_emu_hsakmt_capset cs;
	memset(&cs, 0xee, sizeof cs);
	struct drm_virtgpu_get_caps gc = { .cap_set_id = VIRTIO_GPU_CAPSET_HSAKMT, .cap_set_ver = 0,
	                                   .addr = (uint64_t)(uintptr_t)&cs, .size = sizeof cs };
	int rc = emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc);
	EXPECT_RC(rc, 0, "GET_CAPS HSAKMT (24 bytes)");
	if (rc == 0)
		EXPECT(cs.context_type == VIRTGPU_EMU_HSAKMT_CONTEXT_AMDGPU, "HSAKMT capset context_type %u, want 1 (amdgpu)", cs.context_type);
	gc.size = 0;
	EXPECT_RC(emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc), -EINVAL, "GET_CAPS with size 0");
	gc.size = sizeof cs;
	gc.cap_set_id = 3; /* not in the default profile */
	EXPECT_RC(emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc), -EINVAL, "GET_CAPS of capset 3 (absent)");
}

static void t_context_init(void) {
	EXPECT_RC(emu_context_init_hsakmt(fd), 0, "CONTEXT_INIT {CAPSET_ID HSAKMT, NUM_RINGS 1}");
	EXPECT_RC(emu_context_init_hsakmt(fd), -EEXIST, "second CONTEXT_INIT on the same file");
}

static void t_create_userptr(void) {
	anchor = emu_map(4, 1);
	if (!strcmp(emu_uapi(), "v6")) { /* v6 refuses an unaligned range; the client widens it to its pages below */
		emu_v6_widen = 0;
		EXPECT_RC(emu_create_userptr(fd, anchor + 0x123, 0x2000, 0, &anchor_bo), -EINVAL, "v6: unaligned userptr range");
		emu_v6_widen = 1;
	}
	/* Unaligned pointer inside the mapping: pages 0..2 (0x123 + 0x2000 spills into a third page). */
	int rc = emu_create_userptr(fd, anchor + 0x123, 0x2000, 0, &anchor_bo);
	EXPECT_RC(rc, 0, "CREATE_BLOB HOST3D_GUEST|USE_USERPTR at mmap+0x123, size 0x2000");
	if (rc != 0) return;
	EXPECT(anchor_bo.handle >= 1, "bo_handle %u, want >= 1", anchor_bo.handle);
	EXPECT(anchor_bo.res >= 2, "res_handle %u, want >= 2 (resource ids start at 2)", anchor_bo.res);
	struct virtgpu_emu_resource_info ri;
	rc = emu_resource_info(fd, anchor_bo.handle, &ri);
	EXPECT_RC(rc, 0, "RESOURCE_INFO(new handle)");
	EXPECT(rc != 0 || (ri.size == 3 * PG && ri.res_handle == anchor_bo.res && ri.blob_mem == VIRTGPU_BLOB_MEM_HOST3D_GUEST),
	       "RESOURCE_INFO: size 0x%x res %u blob_mem %u, want size 0x3000 (3 pages) res %u blob_mem 3",
	       ri.size, ri.res_handle, ri.blob_mem, anchor_bo.res);
}

static void t_dedup(void) {
	struct emu_bo d;
	int rc = emu_create_userptr(fd, anchor + 0x1010, 0x100, 0, &d);
	if (!dedup) {
		EXPECT_RC(rc, 0, "no dedup: create inside an existing userptr makes a new BO");
		EXPECT(rc != 0 || d.handle != anchor_bo.handle, "no dedup: create returned the existing handle %u", d.handle);
		if (rc == 0) emu_gem_close(fd, d.handle);
		return;
	}
	EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "create inside an existing userptr (anchor+0x1010, size 0x100)");
	EXPECT(d.handle == anchor_bo.handle && d.res == anchor_bo.res, "dedup returned handle %u res %u, want %u / %u",
	       d.handle, d.res, anchor_bo.handle, anchor_bo.res);
	EXPECT(d.offset == 0x1000, "dedup offset 0x%llx, want 0x1000 (align_down(ptr) - align_down(original ptr))",
	       (unsigned long long)d.offset);
	/* Not fully contained (runs past the BO's last page) → a new BO. */
	rc = emu_create_userptr(fd, anchor + 0x2f00, 0x200, 0, &d);
	EXPECT_RC(rc, 0, "create overlapping the end of an existing userptr (not contained → new BO)");
	if (rc == 0) {
		EXPECT(d.handle != anchor_bo.handle, "overlapping create returned the existing handle %u", d.handle);
		EXPECT_RC(emu_gem_close(fd, d.handle), 0, "GEM_CLOSE(overlapping BO)");
	}
}

static void t_full_munmap(void) {
	char *m = emu_map(2, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 2 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a 2-page mapping");
	if (rc != 0) return;
	munmap(m, 2 * PG);
	flush_by_create(); /* a dedup: takes no new handle, so the old number cannot be reused behind our back */
	expect_deleted_unless_pin(&bo, "munmap of the whole range");
}

static void t_partial_munmap_tail(void) {
	char *m = emu_map(16, 1);
	struct emu_bo bo, d;
	int rc = emu_create_userptr(fd, m, 16 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a 16-page mapping");
	if (rc != 0) return;
	munmap(m + 12 * PG, 4 * PG); /* drop the tail: the userptr keeps pages 0..11 */
	rc = emu_create_userptr(fd, m + 2 * PG + 0x40, 0x100, 0, &d);
	if (!dedup) {
		EXPECT_RC(rc, 0, "no dedup: create inside the kept part makes a new BO");
		if (rc == 0) emu_gem_close(fd, d.handle);
	} else {
		EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "create inside the kept part (page 2) after munmap of pages 12..15");
		EXPECT(rc != VIRTGPU_EMU_USERPTR_EXISTS || (d.handle == bo.handle && d.offset == 2 * PG),
		       "dedup in the kept part: handle %u offset 0x%llx, want %u and 0x2000", d.handle, (unsigned long long)d.offset, bo.handle);
	}
	/* Map the dropped part again: a create there is a new BO (notifier: the split dropped it; pin: no dedup). */
	void *again = mmap(m + 12 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	EXPECT(again == m + 12 * PG, "re-mmap of the dropped tail failed: %s", strerror(errno));
	memset(m + 12 * PG, 1, 4 * PG);
	rc = emu_create_userptr(fd, m + 13 * PG, 0x100, 0, &d);
	if (dedup && pin) {
		/* dedup without a notifier (v2): nothing saw the munmap, the BO still covers the tail and is found again. */
		EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "dedup without a notifier: create in the re-mapped tail finds the stale BO");
		EXPECT(rc != VIRTGPU_EMU_USERPTR_EXISTS || d.handle == bo.handle, "stale BO: handle %u, want %u", d.handle, bo.handle);
		rc = -1;
	} else if (rc == VIRTGPU_EMU_USERPTR_EXISTS)
		fail("create in the dropped part (page 13) after re-mmap: got +3 handle %u (the stale BO), want 0 and a new handle%s",
		     d.handle, pin ? "" : " (was the partial munmap seen?)");
	else
		EXPECT_RC(rc, 0, "create in the dropped part (page 13) after re-mmap");
	if (rc == 0) {
		EXPECT(d.handle != bo.handle && d.res != bo.res, "new BO in the dropped part has handle %u res %u, same as the split BO",
		       d.handle, d.res);
		EXPECT_RC(emu_gem_close(fd, d.handle), 0, "GEM_CLOSE(new BO)");
	}
	EXPECT_RC(emu_gem_close(fd, bo.handle), 0, "GEM_CLOSE(split BO)");
	munmap(m, 16 * PG);
}

static void t_partial_munmap_head(void) {
	char *m = emu_map(8, 1);
	struct emu_bo bo, d;
	int rc = emu_create_userptr(fd, m, 8 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over an 8-page mapping");
	if (rc != 0) return;
	munmap(m, 2 * PG); /* drop the head: the userptr keeps pages 2..7, offsets stay relative to the original start */
	rc = emu_create_userptr(fd, m + 5 * PG, 0x10, 0, &d);
	if (!dedup) {
		EXPECT_RC(rc, 0, "no dedup: create inside the kept part makes a new BO");
		if (rc == 0) emu_gem_close(fd, d.handle);
	} else {
		EXPECT_RC(rc, VIRTGPU_EMU_USERPTR_EXISTS, "create inside the kept part (page 5) after munmap of pages 0..1");
		EXPECT(rc != VIRTGPU_EMU_USERPTR_EXISTS || (d.handle == bo.handle && d.offset == 5 * PG),
		       "dedup in the kept part: handle %u offset 0x%llx, want %u and 0x5000 (relative to the original start)",
		       d.handle, (unsigned long long)d.offset, bo.handle);
	}
	EXPECT_RC(emu_gem_close(fd, bo.handle), 0, "GEM_CLOSE(split BO)");
	munmap(m + 2 * PG, 6 * PG);
}

static void t_madvise_dontneed(void) {
	char *m = emu_map(8, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 8 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a populated 8-page mapping");
	if (rc != 0) return;
	EXPECT(madvise(m, 8 * PG, MADV_DONTNEED) == 0, "madvise(DONTNEED): %s", strerror(errno));
	flush_by_create();
	expect_deleted_unless_pin(&bo, "madvise(DONTNEED) over the whole range (pages removed → EVICT → UNMAP)");
	/* The memory is still mapped: registering it again makes a new BO. */
	struct emu_bo again;
	rc = emu_create_userptr(fd, m, 8 * PG, 0, &again);
	EXPECT_RC(rc, 0, "create over the same (still mapped) range after DONTNEED");
	if (rc == 0) EXPECT_RC(emu_gem_close(fd, again.handle), 0, "GEM_CLOSE(new BO)");
	munmap(m, 8 * PG);
}

static void t_madvise_free(void) {
	char *m = emu_map(8, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 8 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a populated 8-page mapping");
	if (rc != 0) return;
	EXPECT(madvise(m, 8 * PG, MADV_FREE) == 0, "madvise(FREE): %s", strerror(errno));
	flush_by_create();
	expect_unchanged(&bo, m, "madvise(FREE) (pinned lazy-free pages are not removed)");
	munmap(m, 8 * PG);
}

static void t_mprotect(void) {
	char *m = emu_map(4, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 4 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a populated 4-page mapping");
	if (rc != 0) return;
	EXPECT(mprotect(m, 4 * PG, PROT_READ) == 0, "mprotect(READ): %s", strerror(errno));
	int v;
	EXPECT_RC(emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v), 0, "GETPARAM while read-only (an ioctl entry: drains events)");
	EXPECT(mprotect(m, 4 * PG, PROT_READ | PROT_WRITE) == 0, "mprotect(READ|WRITE): %s", strerror(errno));
	m[0] = 7;
	flush_by_create();
	expect_unchanged(&bo, m, "mprotect RO then RW (same frames → EVICT finds nothing)");
	munmap(m, 4 * PG);
}

static void t_fork(void) {
	char *m = emu_map(4, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 4 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a populated 4-page mapping");
	if (rc != 0) return;
	pid_t child = fork();
	if (child == 0) { /* the child writes its copy and exits without touching the device */
		memset(m, 0xc4, 4 * PG);
		_exit(0);
	}
	EXPECT(child > 0, "fork: %s", strerror(errno));
	int status = 0;
	if (child > 0) {
		waitpid(child, &status, 0);
		EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
	}
	memset(m, 0x9a, 4 * PG); /* the parent's copy-on-write after fork is not an invalidation */
	flush_by_create();
	if (emu_proc_watch() && !pin) {
		/* /proc checker alone: if the parent's write copied its page (the kernel may reuse it or copy it), the changed
		 * frame is the only signal and counts as changed (docs/semantics.md §4, approximate) — both outcomes are the contract. */
		struct virtgpu_emu_resource_info ri;
		int r = emu_resource_info(fd, bo.handle, &ri);
		EXPECT(r == 0 || r == -ENOENT, "RESOURCE_INFO after fork under /proc: %s, want 0 (same frames) or ENOENT (copied)", emu_rc_name(r));
		if (r == 0) emu_gem_close(fd, bo.handle);
	} else {
		expect_unchanged(&bo, m, "fork + writes in child and parent");
	}
	munmap(m, 4 * PG);
}

static void t_mremap_move(void) {
	char *m = emu_map(4, 1);
	struct emu_bo bo;
	int rc = emu_create_userptr(fd, m, 4 * PG, 0, &bo);
	EXPECT_RC(rc, 0, "create over a populated 4-page mapping");
	if (rc != 0) return;
	char *dst = mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *moved = mremap(m, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	EXPECT(moved == dst, "mremap(MAYMOVE|FIXED): %s", strerror(errno));
	flush_by_create();
	expect_deleted_unless_pin(&bo, "mremap move (UNMAP of the old range)");
	struct emu_bo nb;
	rc = emu_create_userptr(fd, dst, 4 * PG, 0, &nb);
	EXPECT_RC(rc, 0, "create at the new address");
	if (rc == 0) EXPECT_RC(emu_gem_close(fd, nb.handle), 0, "GEM_CLOSE(BO at the new address)");
	munmap(dst, 4 * PG);
}

static void t_rdonly(void) {
	char *m = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct emu_bo bo;
	EXPECT_RC(emu_create_userptr(fd, m, 2 * PG, 0, &bo), pin_errno, "writable userptr of PROT_READ memory (pin fails)");
	int rc = emu_create_userptr(fd, m, 2 * PG, VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, &bo);
	EXPECT_RC(rc, has_rdonly ? 0 : -EINVAL, has_rdonly ? "USERPTR_RDONLY userptr of PROT_READ memory" : "USERPTR_RDONLY: not in this revision's flag mask");
	if (rc == 0) EXPECT_RC(emu_gem_close(fd, bo.handle), 0, "GEM_CLOSE(read-only BO)");
	munmap(m, 2 * PG);
}

static void t_pin_failures(void) {
	struct emu_bo bo;
	char *none = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT_RC(emu_create_userptr(fd, none, 2 * PG, 0, &bo), pin_errno, "userptr of PROT_NONE memory");
	munmap(none, 2 * PG);
	char *gone = emu_map(2, 0);
	munmap(gone, 2 * PG);
	EXPECT_RC(emu_create_userptr(fd, gone, 2 * PG, 0, &bo), pin_errno, "userptr of unmapped memory");
	char *half = emu_map(2, 1);
	munmap(half + PG, PG);
	EXPECT_RC(emu_create_userptr(fd, half, 2 * PG, 0, &bo), pin_errno, "userptr whose second page is unmapped");
	munmap(half, PG);
}

static void t_bad_args(void) {
	struct emu_bo bo;
	EXPECT_RC(emu_create_userptr(fd, anchor, 0, 0, &bo), -EINVAL, "userptr with size 0");
	EXPECT_RC(emu_create_userptr(fd, (void *)(uintptr_t)(VIRTGPU_EMU_USER_ADDR_MAX - PG), 2 * PG, 0, &bo), -EFAULT,
	          "userptr range ending above 0x7ffffffff000");
	EXPECT_RC(emu_create_userptr(fd, (void *)(uintptr_t)0xffffffffffff0000ULL, 0x20000, 0, &bo), strcmp(emu_uapi(), "v6") ? -EFAULT : -EINVAL,
	          "userptr range that wraps (v6: EINVAL before access_ok)");
	struct virtgpu_emu_create_blob cb = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR,
	                                      .size = PG, .blob_id = 0x7777, .userptr = 0 };
	EXPECT_RC(emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb), -EINVAL, "USE_USERPTR with userptr 0");
	cb.blob_flags = VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;
	cb.userptr = (uint64_t)(uintptr_t)anchor;
	EXPECT_RC(emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb), -EINVAL, "USERPTR_RDONLY without USE_USERPTR");
	cb.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | 0x80;
	EXPECT_RC(emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb), -EINVAL, "unknown blob flag 0x80");
}

static void t_getparam_efault(void) {
	struct drm_virtgpu_getparam gp = { .param = VIRTGPU_PARAM_3D_FEATURES, .value = 0x10 };
	EXPECT_RC(emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp), -EFAULT, "GETPARAM with value pointing at address 0x10");
}

static void t_unknown_ioctl(void) {
	struct drm_virtgpu_getparam gp = { 0 };
	EXPECT_RC(emu_ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + 0x3f, struct drm_virtgpu_getparam), &gp), -EINVAL,
	          "driver ioctl nr 0x7f (unknown)");
	EXPECT_RC(emu_ioctl(fd, _IOWR('x', 1, uint64_t), &gp), -ENOTTY, "ioctl of type 'x' (not DRM)");
}

static void t_gem_close_bogus(void) {
	EXPECT_RC(emu_gem_close(fd, 0xdeadbeef), -EINVAL, "GEM_CLOSE(0xdeadbeef)");
	EXPECT_RC(emu_gem_close(fd, 0), -EINVAL, "GEM_CLOSE(0)");
}

static void t_close(void) {
	if (anchor_bo.handle) EXPECT_RC(emu_gem_close(fd, anchor_bo.handle), 0, "GEM_CLOSE(anchor)");
	EXPECT(close(fd) == 0, "close: %s", strerror(errno));
	fd = -1;
}

static const struct scenario { const char *name; void (*fn)(void); } scenarios[] = {
	{ "version", t_version },
	{ "get_cap", t_get_cap },
	{ "getparams", t_getparams },
	{ "get_caps_hsakmt", t_get_caps_hsakmt },
	{ "context_init_hsakmt_then_eexist", t_context_init },
	{ "create_userptr_unaligned", t_create_userptr },
	{ "dedup_returns_3_with_offset", t_dedup },
	{ "7.1_full_munmap_deletes", t_full_munmap },
	{ "7.2_partial_munmap_tail_splits", t_partial_munmap_tail },
	{ "7.2_partial_munmap_head_splits", t_partial_munmap_head },
	{ "7.4_madvise_dontneed_evicts", t_madvise_dontneed },
	{ "7.4_madvise_free_unchanged", t_madvise_free },
	{ "7.4_mprotect_ro_rw_unchanged", t_mprotect },
	{ "fork_writes_unchanged", t_fork },
	{ "mremap_move_deletes", t_mremap_move },
	{ "rdonly_userptr_of_readonly_memory", t_rdonly },
	{ "pin_failure_enomem", t_pin_failures },
	{ "bad_args_einval_efault", t_bad_args },
	{ "getparam_bad_pointer_efault", t_getparam_efault },
	{ "unknown_ioctl_einval", t_unknown_ioctl },
	{ "gem_close_bogus_einval", t_gem_close_bogus },
	{ "close", t_close },
};

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	size_t n = sizeof scenarios / sizeof scenarios[0];
	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < n; i++) printf("%s\n", scenarios[i].name);
		return 0;
	}
	const char *u = emu_uapi();
	int v1ish = !strcmp(u, "v1") || !strcmp(u, "libhsakmt-72");
	if (!v1ish && strcmp(u, "v2") && strcmp(u, "v3") && strcmp(u, "v4") && strcmp(u, "v5") && strcmp(u, "v6")) {
		fprintf(stderr, "userptr_scenarios: uapi %s has no userptr to test\n", u);
		return 2;
	}
	pin = emu_pin_mode();
	dedup = !strcmp(u, "v2") || (v1ish && !pin);
	pin_errno = v1ish || !strcmp(u, "v2") ? -ENOMEM : -EFAULT;
	has_rdonly = strcmp(u, "v3") && strcmp(u, "v4");
	fd = emu_open_device("userptr_scenarios", argc > 1 ? argv[1] : NULL);
	printf("# virtgpu-emu userptr scenarios, uapi=%s mode=%s\n1..%zu\n", u, pin ? "pin" : "notifier", n);
	for (size_t i = 0; i < n; i++) {
		why[0] = 0;
		scenarios[i].fn();
		if (why[0]) { failures++; printf("not ok %zu - %s: %s\n", i + 1, scenarios[i].name, why); }
		else printf("ok %zu - %s\n", i + 1, scenarios[i].name);
	}
	printf("# %zu passed, %d failed\n", n - (size_t)failures, failures);
	return failures ? 1 : 0;
}
