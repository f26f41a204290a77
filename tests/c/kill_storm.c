// kill_storm: driver of the kill-storm stress test (tests/stress/kill-storm.test.ts). For each line "DELAY_US" read
// on stdin it runs one round: fork a victim (no exec: it runs with this process's environment, so without the preload
// library unless the caller set one) that opens DEVICE, inits a context and issues ioctls (userptr create + close,
// GETPARAM) until killed; SIGKILL the victim DELAY_US microseconds after the fork; reap it, polling, and time how
// long that took (a victim left traced by the server is a zombie its parent cannot reap); then check the server
// still serves: open DEVICE, one VERSION ioctl, close. One reply line per round:
//   "round N reaped_us=U signaled=SIG check=ok|<error> at1s=S tracer=T"  (S, T: state and TracerPid after 1 s
//                                                                          when not reaped by then, else '-' and 0)
//   "round N unreaped state=S tracer=T"                                    (not reaped after 6 s)
// Usage: kill_storm DEVICE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

static long now_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static void sleep_us(long us) {
	struct timespec ts = {us / 1000000L, (us % 1000000L) * 1000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static void victim(const char *dev) {
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) _exit(3);
	emu_context_init_hsakmt(fd);
	char *mem = emu_map(8, 1);
	for (;;) {
		struct emu_bo bo;
		int v;
		if (emu_create_userptr(fd, mem, 4 * EMU_PAGE, 0, &bo) == 0) emu_gem_close(fd, bo.handle);
		emu_getparam(fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &v);
	}
}

/* State letter and TracerPid of a process from /proc/PID/status ('-' when gone). */
static char proc_state(pid_t pid, int *tracer) {
	char path[64], line[256];
	char st = '-';
	*tracer = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f) return st;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "State:", 6)) sscanf(line + 6, " %c", &st);
		else if (!strncmp(line, "TracerPid:", 10)) *tracer = atoi(line + 10);
	}
	fclose(f);
	return st;
}

int main(int argc, char **argv) {
	if (argc != 2) { fprintf(stderr, "usage: %s DEVICE\n", argv[0]); return 2; }
	const char *dev = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	char line[64];
	for (long round = 0; fgets(line, sizeof line, stdin); round++) {
		long delay = strtol(line, NULL, 10);
		long t0 = now_us();
		pid_t pid = fork();
		if (pid < 0) { printf("round %ld fork=%s\n", round, strerror(errno)); continue; }
		if (pid == 0) victim(dev);
		long left = delay - (now_us() - t0);
		if (left > 0) sleep_us(left);
		kill(pid, SIGKILL);
		long killed = now_us();
		int st = 0, reaped = 0;
		while (now_us() - killed < 1000000L) {
			pid_t r = waitpid(pid, &st, WNOHANG);
			if (r == pid) { reaped = 1; break; }
			sleep_us(200);
		}
		char late = 0;
		int tracer = 0;
		if (!reaped) {
			// Not reapable after 1 s: a zombie still traced (the server never reaped its tracee) is the failure; a
			// victim still exiting (a loaded machine) is reported and waited for, bounded.
			late = proc_state(pid, &tracer);
			for (long end = now_us() + 5000000L; !reaped && now_us() < end;) { if (waitpid(pid, &st, WNOHANG) == pid) reaped = 1; else sleep_us(1000); }
			if (!reaped) { printf("round %ld unreaped state=%c tracer=%d\n", round, late, tracer); continue; }
		}
		long reaped_us = now_us() - killed;
		const char *check = "ok";
		int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0) check = strerror(errno);
		else {
			char name[32], date[32], desc[32];
			struct drm_version ver = { .name_len = sizeof name, .name = name, .date_len = sizeof date, .date = date,
			                           .desc_len = sizeof desc, .desc = desc };
			int rc = emu_ioctl(fd, DRM_IOCTL_VERSION, &ver);
			if (rc != 0) check = emu_rc_name(rc);
			close(fd);
		}
		printf("round %ld reaped_us=%ld signaled=%d check=%s at1s=%c tracer=%d\n", round, reaped_us, WIFSIGNALED(st) ? WTERMSIG(st) : 0, check, late ? late : '-', tracer);
	}
	return 0;
}
