// tid_reuse: the pieces of the thread-id reuse attack on caller attribution (tests/security/tid-reuse.test.ts), plus
// a thread whose exit a test controls (tests/cuse-dev/callers.test.ts). One line of output per step.
//
//   tid_reuse thread             a second thread prints "thread TID", exits at the first line on stdin
//                                ("thread exited"); the process exits at EOF.
//   tid_reuse victim NODE ADDR   maps a canary page at ADDR (MAP_FIXED_NOREPLACE, every byte CANARY); a second
//                                thread opens NODE, makes a GETPARAM into the process's scratch word and exits:
//                                "victim thread TID getparam RC value V". Then, at each line on stdin, the canary is
//                                checked ("canary intact" / "canary changed at +OFF: XX…") and the main thread makes a
//                                GETPARAM on the same file ("victim getparam RC value V"); EOF ends it.
//   tid_reuse attack NODE ADDR TID MAXFORKS
//                                maps its own page at ADDR (every byte OWN), opens NODE and proves it reached the
//                                server with a GETPARAM into that page ("reached RC value V"); then forks until a
//                                child's pid is TID (at most MAXFORKS children). That child, holding the inherited
//                                file, makes GETPARAM (value at ADDR) and VERSION (name at ADDR+64): the pointers are
//                                valid in the victim too, so a stale tid → process mapping would write there.
//                                "child TID after N forks: getparam RC value V version RC name S" or
//                                "no child got TID in N forks".
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>
#include "emu_client.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CANARY 0xa5
#define OWN 0x5a
#define NAME_OFF 64
#define NAME_LEN 32

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static uint8_t *map_at(const char *addr_s, uint8_t fill) {
	uintptr_t addr = (uintptr_t)strtoull(addr_s, NULL, 0);
	void *p = mmap((void *)addr, EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED || (uintptr_t)p != addr) {
		fprintf(stderr, "tid_reuse: mmap at %#lx: %s\n", (unsigned long)addr, p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
		exit(2);
	}
	memset(p, fill, EMU_PAGE);
	return p;
}

static int open_node(const char *node) {
	int fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tid_reuse: open %s: %s\n", node, strerror(errno));
		exit(2);
	}
	return fd;
}

// ---- thread ----

static int hold_pipe[2];

static void *held_thread(void *arg) {
	(void)arg;
	printf("thread %d\n", my_tid());
	fflush(stdout);
	char c;
	while (read(hold_pipe[0], &c, 1) < 0 && errno == EINTR) {}
	return NULL;
}

static int run_thread(void) {
	if (pipe(hold_pipe) < 0) return 2;
	pthread_t t;
	if (pthread_create(&t, NULL, held_thread, NULL) != 0) return 2;
	char line[64];
	if (fgets(line, sizeof line, stdin)) {
		(void)!write(hold_pipe[1], "x", 1);
		pthread_join(t, NULL);
		printf("thread exited\n");
		fflush(stdout);
		while (fgets(line, sizeof line, stdin)) {}
		return 0;
	}
	(void)!write(hold_pipe[1], "x", 1);
	pthread_join(t, NULL);
	return 0;
}

// ---- victim ----

struct victim { const char *node; int fd; int value; };

static void *victim_thread(void *arg) {
	struct victim *v = arg;
	v->fd = open_node(v->node);
	int rc = emu_getparam(v->fd, VIRTGPU_PARAM_3D_FEATURES, &v->value);
	printf("victim thread %d getparam %s value %d\n", my_tid(), emu_rc_name(rc), v->value);
	fflush(stdout);
	return NULL;
}

static int run_victim(const char *node, const char *addr_s) {
	uint8_t *canary = map_at(addr_s, CANARY);
	struct victim v = { .node = node, .fd = -1, .value = -1 };
	pthread_t t;
	if (pthread_create(&t, NULL, victim_thread, &v) != 0) return 2;
	pthread_join(t, NULL);  // the thread has exited: its tid is free for anyone to get
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		size_t off = 0;
		while (off < EMU_PAGE && canary[off] == CANARY) off++;
		if (off == EMU_PAGE) {
			printf("canary intact\n");
		} else {
			printf("canary changed at +%zu:", off);
			for (size_t k = off; k < off + 16 && k < EMU_PAGE; k++) printf(" %02x", canary[k]);
			printf("\n");
		}
		int value = -1;
		int rc = emu_getparam(v.fd, VIRTGPU_PARAM_3D_FEATURES, &value);
		printf("victim getparam %s value %d\n", emu_rc_name(rc), value);
		fflush(stdout);
	}
	return 0;
}

// ---- attack ----

// In the child that got the tid: the ioctls whose embedded pointers the server follows, into ADDR.
static int child_ioctls(int fd, uint8_t *page, pid_t tid, long forks) {
	int *value = (int *)page;
	int rc1 = emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, value);
	struct drm_version ver;
	memset(&ver, 0, sizeof ver);
	ver.name_len = NAME_LEN;
	ver.name = (char *)page + NAME_OFF;
	int rc2 = emu_ioctl(fd, DRM_IOCTL_VERSION, &ver);
	char name[NAME_LEN + 1];
	memcpy(name, page + NAME_OFF, NAME_LEN);
	name[NAME_LEN] = 0;
	for (int k = 0; k < NAME_LEN && name[k]; k++) if ((uint8_t)name[k] == OWN) { name[k] = 0; break; }
	printf("child %d after %ld forks: getparam %s value %d version %s name %s\n", tid, forks, emu_rc_name(rc1),
	       *value, emu_rc_name(rc2), name[0] ? name : "-");
	fflush(stdout);
	return 0;
}

static int run_attack(const char *node, const char *addr_s, pid_t tid, long max_forks) {
	uint8_t *page = map_at(addr_s, OWN);
	int fd = open_node(node);
	int value = -1;
	int rc = emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &value);
	printf("reached %s value %d\n", emu_rc_name(rc), value);
	fflush(stdout);
	memset(page, OWN, EMU_PAGE);
	for (long n = 1; n <= max_forks; n++) {
		pid_t c = fork();
		if (c < 0) {
			if (errno == EAGAIN || errno == EINTR) { n--; continue; }
			fprintf(stderr, "tid_reuse: fork: %s\n", strerror(errno));
			return 2;
		}
		if (c == 0) _exit(getpid() == tid ? child_ioctls(fd, page, tid, n) : 0);
		int st;
		while (waitpid(c, &st, 0) < 0 && errno == EINTR) {}
		if (c == tid) return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
	}
	printf("no child got %d in %ld forks\n", tid, max_forks);
	return 4;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && strcmp(argv[1], "thread") == 0) return run_thread();
	if (argc == 4 && strcmp(argv[1], "victim") == 0) return run_victim(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "attack") == 0) return run_attack(argv[2], argv[3], (pid_t)atoi(argv[4]), atol(argv[5]));
	fprintf(stderr, "usage: tid_reuse thread | victim NODE ADDR | attack NODE ADDR TID MAXFORKS\n");
	return 2;
}
