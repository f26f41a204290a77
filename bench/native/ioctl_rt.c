// ioctl_rt: N× one ioctl(fd, CMD, arg) on any file, for bench/transport's rows that tests/c/bin/ioctl_bench does not
// have (an arbitrary cmd against the libfuse3 server and the emulator alike). Prints one JSON line:
//   {"cmd":"0x6400","n":100000,"us_per_op":24.1,"cpu_us_per_op":1.2,"result":0,"errno":0}
// cpu_us_per_op: this thread's CPU time over the timed calls (the client's share of a round trip; other load on the
// machine does not count in it, unlike us_per_op's wall time).
// arg is a 64-byte buffer whose first u64 is VALUE (e.g. a GET_CAP capability); every call must give the same
// result and errno as the first one, else exit 1 (a server that changes its answer mid-run is not a benchmark).
// Usage: ioctl_rt [-n N (100000)] [-w WARMUP (1000)] [-v VALUE (0)] PATH CMD
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t id) {
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

int main(int argc, char **argv) {
	long n = 100000, warmup = 1000;
	uint64_t value = 0;
	int opt;
	while ((opt = getopt(argc, argv, "n:w:v:")) != -1) {
		if (opt == 'n') n = strtol(optarg, NULL, 0);
		else if (opt == 'w') warmup = strtol(optarg, NULL, 0);
		else if (opt == 'v') value = strtoull(optarg, NULL, 0);
		else { fprintf(stderr, "usage: %s [-n N] [-w WARMUP] [-v VALUE] PATH CMD\n", argv[0]); return 2; }
	}
	if (optind + 2 != argc) { fprintf(stderr, "usage: %s [-n N] [-w WARMUP] [-v VALUE] PATH CMD\n", argv[0]); return 2; }
	const char *path = argv[optind];
	unsigned long cmd = strtoul(argv[optind + 1], NULL, 0);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) { fprintf(stderr, "ioctl_rt: open %s: %s\n", path, strerror(errno)); return 2; }
	uint64_t arg[8]; /* 64 bytes: ≥ every _IOC_SIZE used by the bench */
	memset(arg, 0, sizeof arg);
	arg[0] = value;
	errno = 0;
	int first = ioctl(fd, cmd, arg), first_errno = first < 0 ? errno : 0;
	for (long k = 0; k < warmup; k++) {
		arg[0] = value;
		int r = ioctl(fd, cmd, arg);
		if (r != first || (r < 0 && errno != first_errno)) { fprintf(stderr, "ioctl_rt: warmup %ld: result %d errno %d, first was %d/%d\n", k, r, errno, first, first_errno); return 1; }
	}
	double t0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	for (long k = 0; k < n; k++) {
		arg[0] = value;
		int r = ioctl(fd, cmd, arg);
		if (r != first || (r < 0 && errno != first_errno)) { fprintf(stderr, "ioctl_rt: call %ld: result %d errno %d, first was %d/%d\n", k, r, errno, first, first_errno); return 1; }
	}
	double dt = now_s() - t0, dc = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	printf("{\"cmd\":\"0x%lx\",\"n\":%ld,\"us_per_op\":%.3f,\"cpu_us_per_op\":%.3f,\"result\":%d,\"errno\":%d}\n", cmd, n, dt * 1e6 / (double)n, dc * 1e6 / (double)n, first, first_errno);
	close(fd);
	return 0;
}
