// preload_floor: the floor of the preload transport's round trip in bench/transport. A minimal C server of the
// preload wire protocol (docs/preload-protocol.md): lanes are accepted with the channel's text handshake, OPEN answers
// a socket pair, every IOCTL is answered DONE with result 0 and nothing else is looked at. The client is the real
// preload library (LD_PRELOAD) in ioctl_rt, so the row measures the protocol's syscalls alone: client getsockopt +
// sendmsg + recvmsg, server epoll_wait + recvmsg (with SCM_CREDENTIALS) + sendmsg. Not part of the emulator.
// Usage: preload_floor SOCKPATH   Prints "ready\n" on stdout once listening; SIGINT/SIGTERM end it.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../uffd/preload/wire.h"

// The fd table: what each watched fd is (0: unused).
enum kind { NONE, LANE_NEW, LANE, NODE };
#define MAX_FD 65536
static unsigned char kinds[MAX_FD];
static int ep;
static volatile sig_atomic_t stop;
static unsigned char buf[VGE_MAX_FRAME];

static void on_signal(int sig) { (void)sig; stop = 1; }

static void watch(int fd, enum kind k) {
	if (fd < 0 || fd >= MAX_FD) { close(fd); return; }
	struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) { close(fd); return; }
	kinds[fd] = (unsigned char)k;
}

static void drop(int fd) {
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	kinds[fd] = NONE;
	close(fd);
}

// One message with up to one fd; SCM_CREDENTIALS ride along on their own (SO_PASSCRED).
static void send_fd(int s, const void *p, size_t n, int fd) {
	struct iovec iov = {(void *)p, n};
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } c;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&c, 0, sizeof c);
		m.msg_control = c.b;
		m.msg_controllen = sizeof c.b;
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	(void)!sendmsg(s, &m, MSG_NOSIGNAL);
}

static void frame(int lane) {
	struct iovec iov = {buf, sizeof buf};
	union { char b[CMSG_SPACE(sizeof(int) * (VGE_MAX_FDS + 1)) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } c;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof c.b};
	ssize_t n = recvmsg(lane, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN) return;
	if (n <= 0) { drop(lane); return; }
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
		int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) { int fd; memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd); close(fd); }
	}
	if (kinds[lane] == LANE_NEW) { // "VGECHAN1 lane <pid> <tid>": accepted as it comes
		kinds[lane] = LANE;
		send_fd(lane, "OK 1", 4, -1);
		return;
	}
	if ((size_t)n < sizeof(struct vge_req)) { drop(lane); return; }
	struct vge_req req;
	memcpy(&req, buf, sizeof req);
	struct vge_reply rep = {.kind = VGE_DONE, .seq = req.seq};
	if (req.op == VGE_OP_OPEN) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) { rep.err = EMFILE; send_fd(lane, &rep, sizeof rep, -1); return; }
		watch(sv[0], NODE);
		send_fd(lane, &rep, sizeof rep, sv[1]);
		close(sv[1]);
		return;
	}
	if (req.op != VGE_OP_IOCTL) rep.err = EINVAL;
	send_fd(lane, &rep, sizeof rep, -1);
}

int main(int argc, char **argv) {
	if (argc != 2) { fprintf(stderr, "usage: %s SOCKPATH\n", argv[0]); return 2; }
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof sa.sun_path) { fprintf(stderr, "%s: path too long\n", argv[0]); return 2; }
	strcpy(sa.sun_path, argv[1]);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_PASSCRED, &one, sizeof one); // accepted lanes inherit it
	unlink(argv[1]);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 64) < 0) { perror(argv[1]); return 1; }
	struct sigaction act = {.sa_handler = on_signal};
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.fd = l};
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &le);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		struct epoll_event ev[16];
		int n = epoll_wait(ep, ev, 16, -1);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == l) { int s = accept4(l, NULL, NULL, SOCK_CLOEXEC); if (s >= 0) watch(s, LANE_NEW); continue; }
			if (kinds[fd] == NODE) { drop(fd); continue; } // hang-up (nothing travels on a node socket)
			if (kinds[fd] != NONE) frame(fd);
		}
	}
	unlink(argv[1]);
	return 0;
}
