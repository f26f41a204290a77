// soak: random (cmd, bytes) ioctls against the render node from one process, then one summary line:
//   soak n=1000000 seconds=61.2 ioctls_per_s=16340 ok=12345 EINVAL=... (every errno seen, by name)
// (after a first line "soak pid=PID").
// Commands are biased towards the driver's: type 'd' mostly, nr near 0x00-0x0d / 0x40-0x4b, any direction, sizes near
// the uAPI structs' or random up to 16 KiB. Argument words are 0, small numbers, pointers into a scratch area owned by
// this process (so embedded pointers sometimes succeed), or random. Types the VFS answers itself ('T', 'X', 'f', 0x94:
// FIONBIO, FIFREEZE, FS_IOC_*, FICLONE) are left out: they would test the kernel, not the server.
// With -x COUNT:MIB it instead sends COUNT EXECBUFFERs of MIB MiB each, then (with -w) waits for a line on stdin
// before closing, so a test can look at the server while the file is open.
// Usage: soak [-n N (1000000)] [-s SEED (1)] [-x COUNT:MIB] [-w] [DEVICE]
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

#define ARG_BYTES (1u << 14)       /* _IOC_SIZE is 14 bits: every size fits */
#define SCRATCH_PAGES 16
#define MAX_ERRNO 4096

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64* */
	rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}
static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }
static int chance(double p) { return (double)(rnd() >> 11) / 9007199254740992.0 < p; }

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long random_cmd(void) {
	static const uint32_t sizes[] = { 0, 8, 12, 16, 24, 32, 40, 44, 48, 56, 64, 72 };
	uint32_t type = 0x64, nr, dir = below(4), size;
	if (chance(0.07)) {
		do type = below(256); while (type == 'T' || type == 'X' || type == 'f' || type == 0x94);
	}
	double r = (double)below(1000) / 1000.0;
	if (r < 0.5) nr = 0x40 + below(12);
	else if (r < 0.8) nr = below(14);
	else nr = below(256);
	double s = (double)below(1000) / 1000.0;
	if (s < 0.6) size = sizes[below(sizeof sizes / sizeof sizes[0])];
	else if (s < 0.9) size = below(256);
	else size = below(ARG_BYTES);
	return ((unsigned long)dir << 30) | ((unsigned long)size << 16) | (type << 8) | nr;
}

static void random_arg(uint64_t *w, size_t words, uint8_t *scratch) {
	for (size_t i = 0; i < words; i++) {
		double r = (double)below(1000) / 1000.0;
		if (r < 0.3) w[i] = 0;
		else if (r < 0.5) w[i] = below(16) | ((uint64_t)below(16) << 32);
		else if (r < 0.65) w[i] = (uint64_t)(uintptr_t)(scratch + below(SCRATCH_PAGES * EMU_PAGE - 64));
		else if (r < 0.7) w[i] = ~0ULL;
		else w[i] = rnd();
	}
}

static int execbufs(int fd, long count, long mib, int wait_line) {
	size_t size = (size_t)mib << 20;
	uint8_t *cmd = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cmd == MAP_FAILED) { perror("soak: mmap"); return 2; }
	for (size_t i = 0; i < size; i++) cmd[i] = (uint8_t)(i * 31 + 7);
	double t0 = now_s();
	for (long i = 0; i < count; i++) {
		cmd[0] = (uint8_t)i; /* a different payload each time */
		struct virtgpu_emu_execbuffer eb = { .size = (uint32_t)size, .command = (uint64_t)(uintptr_t)cmd };
		int rc = ioctl(fd, VIRTGPU_EMU_IOCTL_EXECBUFFER, &eb) < 0 ? -errno : 0;
		if (rc != 0) { printf("execbuf %ld of %ld MiB -> %s\n", i, mib, emu_rc_name(rc)); fflush(stdout); return 1; }
	}
	printf("submitted %ld x %ld MiB pid=%d seconds=%.3f\n", count, mib, (int)getpid(), now_s() - t0);
	fflush(stdout);
	if (wait_line) { char line[16]; if (!fgets(line, sizeof line, stdin)) { /* EOF: close as well */ } }
	munmap(cmd, size);
	close(fd);
	printf("closed\n");
	return 0;
}

int main(int argc, char **argv) {
	long n = 1000000, xcount = 0, xmib = 0;
	uint64_t seed = 1;
	int opt, wait_line = 0;
	while ((opt = getopt(argc, argv, "n:s:x:w")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'x': if (sscanf(optarg, "%ld:%ld", &xcount, &xmib) != 2 || xcount < 1 || xmib < 1) { fprintf(stderr, "soak: -x COUNT:MIB\n"); return 2; } break;
		case 'w': wait_line = 1; break;
		default: fprintf(stderr, "usage: soak [-n N] [-s SEED] [-x COUNT:MIB] [-w] [DEVICE]\n"); return 2;
		}
	}
	int fd = emu_open_device("soak", optind < argc ? argv[optind] : NULL);
	if (xcount) return execbufs(fd, xcount, xmib, wait_line);
	printf("soak pid=%d\n", (int)getpid()); /* who to kill on a timeout when started detached */
	fflush(stdout);
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	static uint64_t arg[ARG_BYTES / 8 + 8];
	uint8_t *scratch = emu_map(SCRATCH_PAGES, 1);
	static long counts[MAX_ERRNO + 1];
	long ok = 0;
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		unsigned long cmd = random_cmd();
		random_arg(arg, 1 + ((cmd >> 16) & 0x3fff) / 8, scratch);
		int r = ioctl(fd, cmd, arg);
		if (r >= 0) ok++;
		else if (errno > 0 && errno <= MAX_ERRNO) counts[errno]++;
		else counts[0]++;
		if (r < 0 && (errno == ENOTCONN || errno == ENODEV || errno == ECONNABORTED)) {
			printf("soak: server gone after %ld ioctls (%s)\n", i, emu_rc_name(-errno));
			return 1;
		}
	}
	double dt = now_s() - t0;
	printf("soak n=%ld seconds=%.3f ioctls_per_s=%.0f ok=%ld", n, dt, n / dt, ok);
	for (int e = 0; e <= MAX_ERRNO; e++) if (counts[e]) printf(" %s=%ld", e ? emu_rc_name(-e) : "other", counts[e]);
	printf("\n");
	close(fd);
	return 0;
}
