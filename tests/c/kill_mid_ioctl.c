// kill_mid_ioctl: a client made to be SIGKILLed in the middle of an ioctl. It inits an HSAKMT context, creates
// -k userptr BOs (default 8) that it never closes, prints "ready pid=P handles=K res=R1,R2,..." and then issues
// ioctls in a tight loop for ever (GETPARAM with a pointer, a dedup create, a create + GEM_CLOSE, VERSION with
// strings), printing "progress N" every 10000 iterations, so a test can kill it at any moment and then check that
// the server still serves others and released everything this client held. -n N stops after N iterations.
// Usage: kill_mid_ioctl [-k BOS] [-n ITERATIONS] [DEVICE]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "emu_client.h"

int main(int argc, char **argv) {
	long bos = 8, iterations = -1;
	int opt;
	while ((opt = getopt(argc, argv, "k:n:")) != -1) {
		if (opt == 'k') bos = strtol(optarg, NULL, 0);
		else if (opt == 'n') iterations = strtol(optarg, NULL, 0);
		else { fprintf(stderr, "usage: %s [-k BOS] [-n ITERATIONS] [DEVICE]\n", argv[0]); return 2; }
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = emu_open_device("kill_mid_ioctl", optind < argc ? argv[optind] : NULL);
	int rc = emu_context_init_hsakmt(fd);
	if (rc != 0) { fprintf(stderr, "kill_mid_ioctl: CONTEXT_INIT returned %s\n", emu_rc_name(rc)); return 1; }
	char *mem = emu_map((size_t)bos * 2 + 4, 1);
	printf("ready pid=%d handles=%ld res=", (int)getpid(), bos);
	for (long i = 0; i < bos; i++) {
		struct emu_bo bo;
		rc = emu_create_userptr(fd, mem + i * 2 * EMU_PAGE, 2 * EMU_PAGE, 0, &bo);
		if (rc != 0) { fprintf(stderr, "\nkill_mid_ioctl: create %ld returned %s\n", i, emu_rc_name(rc)); return 1; }
		printf("%s%u", i ? "," : "", bo.res);
	}
	printf("\n");
	char *scratch = mem + bos * 2 * EMU_PAGE; /* 4 pages for the create + close in the loop */
	char name[32], date[32], desc[32];
	for (long it = 0; iterations < 0 || it < iterations; it++) {
		int v;
		emu_getparam(fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &v);
		struct emu_bo bo;
		if (bos > 0) emu_create_userptr(fd, mem + 0x40, 0x40, 0, &bo);
		if (emu_create_userptr(fd, scratch, 4 * EMU_PAGE, 0, &bo) == 0) emu_gem_close(fd, bo.handle);
		struct drm_version ver = { .name_len = sizeof name, .name = name, .date_len = sizeof date, .date = date,
		                           .desc_len = sizeof desc, .desc = desc };
		emu_ioctl(fd, DRM_IOCTL_VERSION, &ver);
		if (it % 10000 == 9999) printf("progress %ld\n", it + 1);
	}
	close(fd);
	return 0;
}
