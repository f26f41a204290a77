// free_reregister_loop: the ordering acceptance of docs/semantics.md §5. A UMD that frees memory and registers new memory at
// the same address must never get the stale BO back. Each cycle: mmap (MAP_FIXED at the first cycle's address),
// write it, CREATE_BLOB userptr → must be 0 with a resource id never seen before (never +3 with the stale
// handle), munmap. Notifier mode leaves the deletion to the notifier; pin mode ($VIRTGPU_EMU_MODE=pin) closes
// each handle itself. Fails on the first stale result.
// Usage: free_reregister_loop [-n CYCLES (10000)] [-p PAGES (4)] [DEVICE]
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	long cycles = 10000, pages = 4;
	int opt;
	while ((opt = getopt(argc, argv, "n:p:")) != -1) {
		if (opt == 'n') cycles = strtol(optarg, NULL, 0);
		else if (opt == 'p') pages = strtol(optarg, NULL, 0);
		else { fprintf(stderr, "usage: %s [-n CYCLES] [-p PAGES] [DEVICE]\n", argv[0]); return 2; }
	}
	if (cycles < 1 || pages < 1) { fprintf(stderr, "free_reregister_loop: -n and -p must be >= 1\n"); return 2; }
	setvbuf(stdout, NULL, _IOLBF, 0);
	int pin = emu_pin_mode();
	int fd = emu_open_device("free_reregister_loop", optind < argc ? argv[optind] : NULL);
	size_t len = (size_t)pages * EMU_PAGE;
	printf("# free/re-register loop: %ld cycles of %ld pages, mode=%s\n1..1\n", cycles, pages, pin ? "pin" : "notifier");
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { printf("not ok 1 - free_reregister_loop: CONTEXT_INIT HSAKMT returned %s\n", emu_rc_name(rc)); return 1; }

	char *addr = NULL;
	uint32_t last_res = 0;
	double t0 = now_s();
	for (long i = 0; i < cycles; i++) {
		char *m = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (addr ? MAP_FIXED : 0), -1, 0);
		if (m == MAP_FAILED) { printf("not ok 1 - free_reregister_loop: cycle %ld: mmap: %s\n", i, strerror(errno)); return 1; }
		addr = m;
		for (long p = 0; p < pages; p++) m[p * EMU_PAGE] = (char)i;
		struct emu_bo bo;
		rc = emu_create_userptr(fd, m, len, 0, &bo);
		if (rc == VIRTGPU_EMU_USERPTR_EXISTS) {
			printf("not ok 1 - free_reregister_loop: cycle %ld: create at %p returned +3 with the stale handle %u (res %u, "
			       "offset 0x%llx): the munmap of cycle %ld was not applied before this create\n",
			       i, (void *)m, bo.handle, bo.res, (unsigned long long)bo.offset, i - 1);
			return 1;
		}
		if (rc != 0) { printf("not ok 1 - free_reregister_loop: cycle %ld: create returned %s, want 0\n", i, emu_rc_name(rc)); return 1; }
		if (bo.res <= last_res) {
			printf("not ok 1 - free_reregister_loop: cycle %ld: res_handle %u not above the previous %u (resource ids are never reused)\n",
			       i, bo.res, last_res);
			return 1;
		}
		last_res = bo.res;
		if (munmap(m, len) != 0) { printf("not ok 1 - free_reregister_loop: cycle %ld: munmap: %s\n", i, strerror(errno)); return 1; }
		if (pin && (rc = emu_gem_close(fd, bo.handle)) != 0) {
			printf("not ok 1 - free_reregister_loop: cycle %ld: pin mode GEM_CLOSE returned %s\n", i, emu_rc_name(rc));
			return 1;
		}
	}
	double dt = now_s() - t0;
	printf("ok 1 - free_reregister_loop %ld cycles, %.0f cycles/s (%.1f us/cycle)\n", cycles, (double)cycles / dt, dt * 1e6 / (double)cycles);
	close(fd);
	return 0;
}
