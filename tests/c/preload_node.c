/* The node's file semantics over the preload transport (tests/preload/node.test.ts), TAP-like lines:
 * dup/dup2/dup3/fcntl(F_DUPFD_CLOEXEC) share one file, O_CLOEXEC and exec behave, a forked child shares the file and
 * its requests are its own (a userptr of memory only the child has), 4 threads of ioctls, a fork while another
 * thread is inside an ioctl, a non-dumpable client, a bad embedded pointer is EFAULT. Every fd is closed at the end:
 * the server's counts must come back to zero. Run with the preload library (virtgpu-emu run --transport preload).
 *   preload_node [DEVICE]          the scenarios
 *   preload_node --exec-check FD   (internal) exit 0 if FD is open, 3 if not
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_client.h"
#include "tap.h"


static int works(int fd) {
	int v = -1;
	return emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v) == 0;
}

static const char *dev_path;

static void dup_family(void) {
	int fd = emu_open_device("preload_node", dev_path);
	int a = dup(fd), b = dup2(fd, 40), c = dup3(fd, 41, O_CLOEXEC), d = fcntl(fd, F_DUPFD_CLOEXEC, 50);
	int ok = a >= 0 && b == 40 && c == 41 && d >= 50 && works(a) && works(b) && works(c) && works(d);
	report(ok, "dup_dup2_dup3_fcntl_copies_work", "a copy of the node fd failed");
	/* one file: a context made through one copy is seen through another (CONTEXT_INIT twice: EEXIST) */
	int rc1 = emu_context_init_hsakmt(a), rc2 = emu_context_init_hsakmt(d);
	report(rc1 == 0 && rc2 == -EEXIST, "copies_share_one_file", emu_rc_name(rc2));
	close(fd); close(a); close(b); close(c);
	report(works(d), "last_copy_still_works_after_the_others_close", "the last copy failed");
	close(d);
	report(fcntl(d, F_GETFD) < 0 && errno == EBADF, "closed_copy_is_ebadf", "fd still open");
}

static int exec_check(const char *self, int fd) {
	char arg[16];
	snprintf(arg, sizeof arg, "%d", fd);
	pid_t p = fork();
	if (p == 0) { execl(self, self, "--exec-check", arg, (char *)NULL); _exit(127); }
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cloexec(const char *self) {
	int kept = open(dev_path, O_RDWR);
	int gone = open(dev_path, O_RDWR | O_CLOEXEC);
	report(kept >= 0 && gone >= 0 && (fcntl(kept, F_GETFD) & FD_CLOEXEC) == 0 && (fcntl(gone, F_GETFD) & FD_CLOEXEC) != 0,
	       "o_cloexec_sets_fd_cloexec", "flags differ from open(2)'s");
	report(exec_check(self, kept) == 0, "fd_without_cloexec_survives_exec", "not open after exec");
	report(exec_check(self, gone) == 3, "o_cloexec_fd_closed_by_exec", "still open after exec");
	/* FIOCLEX/FIONCLEX are the kernel's for every fd (do_vfs_ioctl), never the driver's */
	int r1 = ioctl(kept, FIOCLEX), set = fcntl(kept, F_GETFD) & FD_CLOEXEC;
	int r2 = ioctl(kept, FIONCLEX), cleared = !(fcntl(kept, F_GETFD) & FD_CLOEXEC);
	report(r1 == 0 && set && r2 == 0 && cleared && works(kept), "fioclex_fionclex_act_on_the_fd", "not the kernel's generic ioctls");
	close(kept);
	close(gone);
}

/* A userptr of memory mapped after the fork exists only in the process that mapped it: it succeeds only when the
 * server attributes the request to that process. */
static void fork_attribution(void) {
	int fd = emu_open_device("preload_node", dev_path);
	int rc = emu_context_init_hsakmt(fd);
	int p2c[2];
	if (pipe(p2c) < 0) { report(0, "fork_child_requests_are_its_own", "pipe"); return; }
	pid_t child = fork();
	if (child == 0) {
		char *mine = mmap(NULL, 8 * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(mine, 0x5a, 8 * EMU_PAGE);
		struct emu_bo bo;
		int r = emu_create_userptr(fd, mine, 8 * EMU_PAGE, 0, &bo);
		if (r == 0) r = emu_gem_close(fd, bo.handle);
		_exit(r == 0 ? 0 : 10 + (-r & 0x7f));
	}
	char *ours = mmap(NULL, 4 * EMU_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(ours, 0xa5, 4 * EMU_PAGE);
	struct emu_bo bo;
	int pr = emu_create_userptr(fd, ours, 4 * EMU_PAGE, 0, &bo);
	int st;
	waitpid(child, &st, 0);
	char why[64];
	snprintf(why, sizeof why, "child exit %d, parent %s, ctx %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, emu_rc_name(pr), emu_rc_name(rc));
	report(rc == 0 && pr == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork_child_requests_are_its_own", why);
	if (pr == 0) emu_gem_close(fd, bo.handle);
	report(works(fd), "parent_file_works_after_child_exit", "parent's ioctl failed after the child exited");
	munmap(ours, 4 * EMU_PAGE);
	close(fd);
	close(p2c[0]);
	close(p2c[1]);
}

struct thr { int fd; int id; int bad; };
static volatile int stop_spin;

static void *thread_loop(void *p) {
	struct thr *t = p;
	uint32_t caps[6];
	for (int i = 0; i < 300; i++) {
		int v = -1;
		if (emu_getparam(t->fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &v) != 0 || v == -1) t->bad++;
		memset(caps, 0xee, sizeof caps);
		struct drm_virtgpu_get_caps gc = { .cap_set_id = 8, .cap_set_ver = 0, .addr = (uintptr_t)caps, .size = sizeof caps };
		if (emu_ioctl(t->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc) != 0 || caps[4] != 1) t->bad++;
	}
	return NULL;
}

static void threads4(void) {
	int fd = emu_open_device("preload_node", dev_path);
	pthread_t th[4];
	struct thr t[4];
	for (int i = 0; i < 4; i++) { t[i] = (struct thr){ fd, i, 0 }; pthread_create(&th[i], NULL, thread_loop, &t[i]); }
	int bad = 0;
	for (int i = 0; i < 4; i++) { pthread_join(th[i], NULL); bad += t[i].bad; }
	char why[32];
	snprintf(why, sizeof why, "%d wrong answers", bad);
	report(bad == 0, "four_threads_each_get_their_own_replies", why);
	close(fd);
}

static void *spin_ioctls(void *p) {
	int fd = *(int *)p;
	while (!__atomic_load_n(&stop_spin, __ATOMIC_RELAXED)) { int v; emu_getparam(fd, VIRTGPU_PARAM_3D_FEATURES, &v); }
	return NULL;
}

static void fork_during_ioctl(void) {
	int fd = emu_open_device("preload_node", dev_path);
	pthread_t th;
	stop_spin = 0;
	pthread_create(&th, NULL, spin_ioctls, &fd);
	int bad = 0;
	for (int i = 0; i < 20; i++) {
		pid_t c = fork();
		if (c == 0) _exit(works(fd) ? 0 : 1); /* the child's locks were re-initialised: no deadlock, its own lane */
		int st;
		waitpid(c, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
	}
	__atomic_store_n(&stop_spin, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	report(bad == 0 && works(fd), "fork_while_another_thread_is_in_an_ioctl", "a child failed or hung");
	close(fd);
}

static void bad_pointer(void) {
	int fd = emu_open_device("preload_node", dev_path);
	errno = 0;
	int r = ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, (void *)8);
	report(r == -1 && errno == EFAULT, "bad_struct_pointer_efault_not_sigsegv", strerror(errno));
	struct drm_virtgpu_getparam gp = { .param = VIRTGPU_PARAM_3D_FEATURES, .value = 16 };
	errno = 0;
	r = ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
	report(r == -1 && errno == EFAULT, "bad_embedded_pointer_efault", strerror(errno));
	errno = 1234;
	int v;
	struct drm_virtgpu_getparam ok = { .param = VIRTGPU_PARAM_3D_FEATURES, .value = (uintptr_t)&v };
	r = ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &ok);
	report(r == 0 && errno == 1234, "errno_untouched_on_success", "errno changed");
	close(fd);
}

static void non_dumpable(void) {
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		int fd = emu_open_device("preload_node", dev_path);
		int ok = works(fd) && emu_context_init_hsakmt(fd) == 0;
		uint32_t caps[6] = {0};
		struct drm_virtgpu_get_caps gc = { .cap_set_id = 8, .addr = (uintptr_t)caps, .size = sizeof caps };
		ok = ok && emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc) == 0 && caps[4] == 1;
		close(fd);
		_exit(ok ? 0 : 1);
	}
	int st;
	waitpid(c, &st, 0);
	report(WIFEXITED(st) && WEXITSTATUS(st) == 0, "non_dumpable_client_works", "ioctls failed");
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "--exec-check") == 0) return fcntl(atoi(argv[2]), F_GETFD) >= 0 ? 0 : 3;
	setvbuf(stdout, NULL, _IOLBF, 0);
	dev_path = argc > 1 ? argv[1] : getenv("VIRTGPU_EMU_DEVICE");
	if (!dev_path) dev_path = "/dev/dri/renderD128";
	dup_family();
	cloexec(argv[0]);
	fork_attribution();
	threads4();
	fork_during_ioctl();
	bad_pointer();
	non_dumpable();
	return tap_done();
}
