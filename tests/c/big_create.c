// big_create: one big userptr create, and a probe client that measures another client's ioctls meanwhile.
// Commands are lines on stdin, results lines on stdout; times are CLOCK_MONOTONIC nanoseconds, comparable across
// processes of one machine, so a test can order events of two clients without comparing durations.
//   big_create create MIB [DEVICE]: CONTEXT_INIT HSAKMT, mmap MIB MiB untouched, print "ready pid=P addr=A";
//     on any line: print "create-start T", CREATE_BLOB(userptr) over the whole mapping, print
//     "create-done T rc=R ms=M"; on the next line (or EOF): GEM_CLOSE, munmap, close, print "closed", exit.
//   big_create probe [DEVICE]: print "ready pid=P"; per line:
//     "once": one DRM_IOCTL_VERSION (no pointers, no data) → "noop S E rc=R";
//     "loop": GETPARAM in a loop until the next line arrives → "lat n=N max_us=X p50_us=Y p99_us=Z", then handles
//             that line; "quit" or EOF: exit.
// Usage: big_create create MIB [DEVICE] | big_create probe [DEVICE]
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int read_line(char *buf, size_t n) {
	if (!fgets(buf, (int)n, stdin)) return 0;
	buf[strcspn(buf, "\n")] = 0;
	return 1;
}

static int stdin_ready(void) {
	struct pollfd p = { .fd = 0, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static int cmp_u64(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int create_main(long mib, const char *dev) {
	int fd = emu_open_device("big_create", dev);
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { fprintf(stderr, "big_create: CONTEXT_INIT returned %s\n", emu_rc_name(rc)); return 1; }
	size_t len = (size_t)mib << 20;
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) { perror("big_create: mmap"); return 2; }
	printf("ready pid=%d addr=%p\n", (int)getpid(), (void *)mem);
	char line[64];
	if (!read_line(line, sizeof line)) return 0;
	struct emu_bo bo;
	uint64_t t0 = now_ns();
	printf("create-start %llu\n", (unsigned long long)t0);
	rc = emu_create_userptr(fd, mem, len, 0, &bo);
	uint64_t t1 = now_ns();
	printf("create-done %llu rc=%s ms=%.1f\n", (unsigned long long)t1, emu_rc_name(rc), (double)(t1 - t0) / 1e6);
	read_line(line, sizeof line);
	if (rc == 0) emu_gem_close(fd, bo.handle);
	munmap(mem, len);
	close(fd);
	printf("closed\n");
	return 0;
}

static int probe_main(const char *dev) {
	int fd = emu_open_device("big_create", dev);
	printf("ready pid=%d\n", (int)getpid());
	char line[64];
	size_t cap = 1 << 16;
	uint64_t *lat = malloc(cap * sizeof *lat);
	if (!lat) return 2;
	int have = read_line(line, sizeof line);
	while (have) {
		if (strcmp(line, "once") == 0) {
			struct drm_version ver = { 0 };
			uint64_t s = now_ns();
			int rc = emu_ioctl(fd, DRM_IOCTL_VERSION, &ver);
			uint64_t e = now_ns();
			printf("noop %llu %llu rc=%s\n", (unsigned long long)s, (unsigned long long)e, emu_rc_name(rc));
		} else if (strcmp(line, "loop") == 0) {
			size_t n = 0;
			uint64_t max = 0;
			while (!stdin_ready()) {
				int v;
				uint64_t s = now_ns();
				emu_getparam(fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &v);
				uint64_t d = now_ns() - s;
				if (d > max) max = d;
				lat[n++ % cap] = d;
			}
			size_t k = n < cap ? n : cap;
			qsort(lat, k, sizeof *lat, cmp_u64);
			printf("lat n=%zu max_us=%.0f p50_us=%.1f p99_us=%.1f\n", n, max / 1e3, k ? lat[k / 2] / 1e3 : 0.0,
			       k ? lat[k * 99 / 100] / 1e3 : 0.0);
		} else if (strcmp(line, "quit") == 0) {
			break;
		}
		have = read_line(line, sizeof line);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "create") == 0) return create_main(strtol(argv[2], NULL, 0), argc > 3 ? argv[3] : NULL);
	if (argc >= 2 && strcmp(argv[1], "probe") == 0) return probe_main(argc > 2 ? argv[2] : NULL);
	fprintf(stderr, "usage: %s create MIB [DEVICE] | %s probe [DEVICE]\n", argv[0], argv[0]);
	return 2;
}
