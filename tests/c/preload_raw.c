/* Malformed traffic on the preload transport's node channel, from a raw client that speaks the wire itself
 * (uffd/preload/wire.h; no preload library): forged handshakes, short and inconsistent frames, unknown ops, an ioctl
 * without its node fd, a lane used by another process, a message on a node fd, a client that dies mid-request and one
 * that never closes its node fd. Each kind is sent twice (the server logs it once). TAP-like lines; the server must
 * answer each with an errno and keep serving (tests/preload/malformed.test.ts).
 *   preload_raw            (VIRTGPU_EMU_SOCK names the channel)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <virtgpu_drm.h>

#include "../../uffd/preload/wire.h"
#include "include/tap.h"


static const char *sock_path;

static int connect_raw(void) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strncpy(sa.sun_path, sock_path, sizeof sa.sun_path - 1);
	int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); exit(2); }
	return s;
}

/* The handshake with a claimed pid and tid: the answer line. */
static void handshake(int s, int pid, int tid, char *answer, size_t cap) {
	char line[64];
	int n = snprintf(line, sizeof line, "VGECHAN1 lane %d %d", pid, tid);
	send(s, line, (size_t)n, 0);
	ssize_t got = recv(s, answer, cap - 1, 0);
	answer[got > 0 ? got : 0] = '\0';
}

static int lane(void) {
	int s = connect_raw();
	char ans[64];
	handshake(s, getpid(), (int)syscall(SYS_gettid), ans, sizeof ans);
	if (strncmp(ans, "OK", 2) != 0) { fprintf(stderr, "lane refused: %s\n", ans); exit(2); }
	return s;
}

static int send_fds(int s, const void *buf, size_t len, const int *fds, int n) {
	struct iovec iov = { (void *)buf, len };
	char control[CMSG_SPACE(sizeof(int) * 4)];
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		memset(control, 0, sizeof control);
		msg.msg_control = control;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	}
	return (int)sendmsg(s, &msg, MSG_NOSIGNAL);
}

/* One reply: its errno (0 success), -1 when none came; *fd gets an attached fd if any. */
static int reply(int s, int *fd, uint32_t *kind) {
	static uint8_t buf[VGE_MAX_FRAME];
	char control[CMSG_SPACE(sizeof(int) * VGE_MAX_FDS)];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	ssize_t n = recvmsg(s, &msg, 0);
	if (n < (ssize_t)sizeof(struct vge_reply)) return -1;
	if (fd) *fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_type == SCM_RIGHTS) { int got; memcpy(&got, CMSG_DATA(c), sizeof got); if (fd) *fd = got; else close(got); }
	struct vge_reply r;
	memcpy(&r, buf, sizeof r);
	if (kind) *kind = r.kind;
	return (int)r.err;
}

static void expect(int s, const void *frame, size_t len, const int *fds, int nfds, int want, const char *name) {
	for (int i = 0; i < 2; i++) { /* twice: logged once */
		send_fds(s, frame, len, fds, nfds);
		int e = reply(s, NULL, NULL);
		char why[64];
		snprintf(why, sizeof why, "answered %d, expected %d", e, want);
		if (i == 1) report(e == want, name, why);
	}
}

static int node_open(int s) {
	struct vge_req r = { .op = VGE_OP_OPEN, .seq = 1, .flags = 2 };
	send_fds(s, &r, sizeof r, NULL, 0);
	int fd = -1;
	return reply(s, &fd, NULL) == 0 ? fd : -1;
}

/* A GETPARAM frame for `node`: the struct only; the server asks for nothing more (the value pointer is out). */
static int getparam(int s, int node, int *value) {
	struct { struct vge_req h; struct vge_range r; struct drm_virtgpu_getparam gp; } f;
	memset(&f, 0, sizeof f);
	struct drm_virtgpu_getparam gp = { .param = VIRTGPU_PARAM_3D_FEATURES, .value = (uintptr_t)value };
	f.h = (struct vge_req){ .op = VGE_OP_IOCTL, .seq = 7, .nranges = 1, .cmd = (uint32_t)DRM_IOCTL_VIRTGPU_GETPARAM, .arg = (uintptr_t)&gp };
	f.r = (struct vge_range){ .addr = (uintptr_t)&gp, .len = sizeof gp };
	f.gp = gp;
	send_fds(s, &f, sizeof f, &node, 1);
	uint32_t kind = 0;
	int e = reply(s, NULL, &kind);
	return kind == VGE_DONE ? e : -1;
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	sock_path = getenv("VIRTGPU_EMU_SOCK");
	if (!sock_path) { fprintf(stderr, "preload_raw: VIRTGPU_EMU_SOCK is not set\n"); return 2; }
	char ans[64];
	for (int i = 0; i < 2; i++) {
		int s = connect_raw();
		handshake(s, getppid(), getppid(), ans, sizeof ans);
		if (i) report(strncmp(ans, "ERR EPERM", 9) == 0, "handshake_claiming_another_pid_refused", ans);
		close(s);
		s = connect_raw();
		handshake(s, getpid(), 1, ans, sizeof ans);
		if (i) report(strncmp(ans, "ERR EPERM", 9) == 0, "handshake_claiming_a_foreign_tid_refused", ans);
		close(s);
		s = connect_raw();
		handshake(s, getpid(), -5, ans, sizeof ans);
		if (i) report(strncmp(ans, "ERR", 3) == 0, "malformed_handshake_refused", ans);
		close(s);
	}
	int s = lane();
	int node = node_open(s);
	report(node >= 0, "raw_open_gives_a_node_fd", "no fd");
	char shortf[5] = { 1, 2, 3, 4, 5 };
	expect(s, shortf, sizeof shortf, NULL, 0, EINVAL, "short_frame_einval");
	struct vge_req h = { .op = VGE_OP_IOCTL, .seq = 3, .nranges = 3, .cmd = (uint32_t)DRM_IOCTL_VIRTGPU_GETPARAM };
	expect(s, &h, sizeof h, &node, 1, EINVAL, "counts_longer_than_the_frame_einval");
	h.nranges = 100000;
	expect(s, &h, sizeof h, &node, 1, EINVAL, "counts_above_the_limits_einval");
	h.nranges = 0;
	expect(s, &h, sizeof h, NULL, 0, EBADF, "ioctl_without_its_node_fd_ebadf");
	int p[2];
	if (pipe(p) == 0) { expect(s, &h, sizeof h, &p[0], 1, EBADF, "ioctl_naming_a_pipe_ebadf"); close(p[0]); close(p[1]); }
	struct vge_req odd = { .op = 99, .seq = 4 };
	expect(s, &odd, sizeof odd, NULL, 0, EINVAL, "unknown_op_einval");
	char zero = 0;
	send(s, &zero, 0, 0);
	report(reply(s, NULL, NULL) == EINVAL, "empty_frame_einval", "no EINVAL");
	/* a message on the node fd itself: dropped by the server */
	send(node, "hello", 5, MSG_NOSIGNAL);
	send(node, "hello", 5, MSG_NOSIGNAL);
	int v = -1;
	report(getparam(s, node, &v) == 0, "valid_ioctl_after_all_that", "GETPARAM failed");
	/* a lane used by another process: the kernel's credentials say so */
	pid_t c = fork();
	if (c == 0) {
		int e1 = getparam(s, node, &v), e2 = getparam(s, node, &v);
		_exit(e1 == EPERM && e2 == EPERM ? 0 : 1);
	}
	int st;
	waitpid(c, &st, 0);
	report(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lane_used_by_another_process_eperm", "not refused");
	/* death mid-request, and a node fd never closed */
	for (int i = 0; i < 2; i++) {
		c = fork();
		if (c == 0) {
			int l = lane();
			int mine = node_open(l);
			struct { struct vge_req h; struct vge_range r; struct drm_virtgpu_getparam gp; } f;
			memset(&f, 0, sizeof f);
			f.h = (struct vge_req){ .op = VGE_OP_IOCTL, .seq = 9, .nranges = 1, .cmd = (uint32_t)DRM_IOCTL_VIRTGPU_GETPARAM, .arg = 0x1000 };
			f.r = (struct vge_range){ .addr = 0x1000, .len = sizeof f.gp };
			send_fds(l, &f, sizeof f, &mine, 1);
			_exit(0); /* neither reads the reply nor closes anything */
		}
		waitpid(c, &st, 0);
	}
	report(getparam(s, node, &v) == 0, "server_serves_after_clients_died_mid_request", "GETPARAM failed");
	close(node);
	close(s);
	return tap_done();
}
