/* Blob mmap and fence fds over the preload transport (tests/preload/mmap-fence.test.ts), TAP-like lines:
 * a HOST3D MAPPABLE blob is VIRTGPU_MAPped and mmapped twice (the second MAP_FIXED over a PROT_NONE reservation of
 * our own), written through one mapping and read through the other; the server reads the bytes back (the test checks
 * its snapshot when we print "# written" and answers on stdin); BO close + munmap release the memory. EXECBUFFER
 * with FENCE_FD_OUT returns an fd libdrm's sync_wait(fd, -1) returns from; FENCE_FD_IN makes the submission wait for
 * an eventfd of ours (its out fence is not readable before we signal it).
 *   preload_mmap_fence [--delayed | --fence-fault | --no-pause]
 *     --delayed    the server's host completes late (--fence-delay-ms): the out fence must not be readable right after
 *                  the ioctl (the blob part is skipped)
 *     --fence-fault  the server delays the first submission's fence (--fault fence:nth=1:delay=MS): neither it nor
 *                  the next submission's fence (same context, completed by the host at once) is readable right after
 *                  the ioctls; sync_wait on the later one returns, and the delayed one is signalled by then (the
 *                  blob part is skipped)
 *     --no-pause   no stop for the server's view after the write (run alone, e.g. under `virtgpu-emu run`)
 */
#define _GNU_SOURCE
#include <libsync.h>
#include <sys/eventfd.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"
#include "tap.h"

#define BLOB_PAGES 4
#define BLOB_SIZE (BLOB_PAGES * EMU_PAGE)
#define PATTERN "virtgpu-emu blob mmap"

#define IOCTL_CREATE_BLOB_48 DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct virtgpu_emu_create_blob_48)

static int readable_now(int fd) {
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int memfd_mappings(void) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;
	while (f && fgets(line, sizeof line, f)) if (strstr(line, "/memfd:virtgpu-res")) n++;
	if (f) fclose(f);
	return n;
}

static void blob_mmap(int fd, int pause) {
	struct virtgpu_emu_create_blob_48 cb = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D, .blob_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE, .size = BLOB_SIZE };
	int rc = emu_ioctl(fd, IOCTL_CREATE_BLOB_48, &cb);
	report(rc == 0, "create_host3d_mappable_blob", emu_rc_name(rc));
	struct drm_virtgpu_map map = { .handle = cb.bo_handle };
	rc = emu_ioctl(fd, DRM_IOCTL_VIRTGPU_MAP, &map);
	report(rc == 0 && map.offset != 0, "virtgpu_map_gives_an_offset", emu_rc_name(rc));
	char *a = mmap(NULL, BLOB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map.offset);
	report(a != MAP_FAILED, "mmap_of_the_node_at_the_offset", strerror(errno));
	/* The second mapping MAP_FIXED over a reservation we own (a guard page either side stays PROT_NONE). */
	char *res = mmap(NULL, BLOB_SIZE + 2 * EMU_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *want = res + EMU_PAGE;
	char *b = mmap(want, BLOB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)map.offset);
	report(b == want, "mmap_fixed_over_a_reservation", b == MAP_FAILED ? strerror(errno) : "another address");
	if (a == MAP_FAILED || b != want) exit(1);
	strcpy(a, PATTERN);
	a[BLOB_SIZE - 1] = 0x5a;
	report(!strcmp(b, PATTERN) && b[BLOB_SIZE - 1] == 0x5a, "written_through_one_read_through_the_other", b);
	errno = 0;
	void *bad = mmap(NULL, BLOB_SIZE + EMU_PAGE, PROT_READ, MAP_SHARED, fd, (off_t)map.offset);
	report(bad == MAP_FAILED && errno == EINVAL, "a_range_past_the_object_is_einval", strerror(errno));
	bad = mmap(NULL, EMU_PAGE, PROT_READ, MAP_SHARED, fd, (off_t)(map.offset + 64 * BLOB_SIZE));
	report(bad == MAP_FAILED && errno == EINVAL, "an_offset_of_no_object_is_einval", strerror(errno));
	/* The test reads the server's view of the memory now. */
	printf("# written res %u\n", cb.res_handle);
	fflush(stdout);
	char line[16];
	if (pause && !fgets(line, sizeof line, stdin)) report(0, "server_view_checked", "no answer on stdin");
	/* BO close: the server lets go, our mappings keep the pages until munmap. */
	rc = emu_gem_close(fd, cb.bo_handle);
	report(rc == 0 && !strcmp(b, PATTERN), "gem_close_keeps_our_mappings", emu_rc_name(rc));
	report(memfd_mappings() == 2, "two_mappings_of_the_memfd_remain", "count");
	munmap(a, BLOB_SIZE);
	b = mmap(want, BLOB_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	report(memfd_mappings() == 0, "munmap_releases_the_rest", "a mapping of the memfd remains");
	munmap(res, BLOB_SIZE + 2 * EMU_PAGE);
}

static int execbuf(int fd, uint32_t flags, int fence_in, int *fence_out) {
	static const uint32_t cmd[4] = { 1, 16, 1, 0 };
	struct virtgpu_emu_execbuffer eb = { .flags = flags, .size = sizeof cmd, .command = (uint64_t)(uintptr_t)cmd, .fence_fd = fence_in };
	int rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_EXECBUFFER, &eb);
	*fence_out = eb.fence_fd;
	return rc;
}

static void fences(int fd, int delayed) {
	int out = -1;
	int rc = execbuf(fd, VIRTGPU_EXECBUF_FENCE_FD_OUT, 0, &out);
	report(rc == 0 && out >= 0, "execbuffer_fence_fd_out_gives_an_fd", emu_rc_name(rc));
	if (delayed) report(!readable_now(out), "not_readable_before_the_host_completes", "readable at once");
	report(sync_wait(out, -1) == 0, "sync_wait_returns", strerror(errno));
	report(readable_now(out), "stays_readable", "not readable after sync_wait");
	close(out);

	int ev = eventfd(0, EFD_CLOEXEC);
	rc = execbuf(fd, VIRTGPU_EXECBUF_FENCE_FD_IN | VIRTGPU_EXECBUF_FENCE_FD_OUT, ev, &out);
	report(rc == 0 && out >= 0, "execbuffer_fence_fd_in_returns", emu_rc_name(rc));
	report(!readable_now(out), "the_submission_waits_for_our_fd", "its out fence is readable before the in fence");
	uint64_t one = 1;
	report(write(ev, &one, sizeof one) == sizeof one, "signal_the_in_fence", strerror(errno));
	report(sync_wait(out, -1) == 0, "then_its_out_fence_signals", strerror(errno));
	close(out);
	close(ev);
	rc = execbuf(fd, VIRTGPU_EXECBUF_FENCE_FD_IN, 12345, &out);
	report(rc == -EINVAL, "a_closed_in_fence_fd_is_einval", emu_rc_name(rc));
}

/* A delayed fence and a later one of the same context: the later one does not signal first. */
static void delayed_first(int fd) {
	int first = -1, later = -1;
	int rc = execbuf(fd, VIRTGPU_EXECBUF_FENCE_FD_OUT, 0, &first);
	report(rc == 0 && first >= 0, "first_submission_gives_an_fd", emu_rc_name(rc));
	rc = execbuf(fd, VIRTGPU_EXECBUF_FENCE_FD_OUT, 0, &later);
	report(rc == 0 && later >= 0, "later_submission_gives_an_fd", emu_rc_name(rc));
	report(!readable_now(first), "the_delayed_fence_is_not_readable", "readable at once");
	report(!readable_now(later), "the_later_fence_waits_for_it", "the later fence signalled before the delayed one");
	report(sync_wait(later, -1) == 0, "sync_wait_on_the_later_returns", strerror(errno));
	report(readable_now(first), "the_delayed_one_signalled_by_then", "the later fence signalled first");
	close(first);
	close(later);
}

int main(int argc, char **argv) {
	int delayed = argc > 1 && !strcmp(argv[1], "--delayed");
	int fence_fault = argc > 1 && !strcmp(argv[1], "--fence-fault");
	int pause = !(argc > 1 && !strcmp(argv[1], "--no-pause"));
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = emu_open_device("preload_mmap_fence", NULL);
	int rc = emu_context_init_hsakmt(fd);
	report(rc == 0, "context_init_hsakmt", emu_rc_name(rc));
	if (fence_fault) delayed_first(fd);
	else if (!delayed) blob_mmap(fd, pause);
	fences(fd, delayed);
	close(fd);
	return tap_done();
}
