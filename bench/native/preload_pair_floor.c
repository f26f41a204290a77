// preload_pair_floor: bench/transport's floor of a request/reply over unix SOCK_SEQPACKET with kernel-checked
// credentials, as the preload transport's lanes carry them, with no work on either side: a forked C server answers
// each 32-byte request with a 32-byte reply; the client asks the kernel for its node fd's SO_COOKIE before each
// request, as the preload library does. Two ways:
//   default: plain syscalls (client getsockopt + sendmsg + recvmsg; server epoll_wait + recvmsg + sendmsg);
//   -u:      io_uring on both sides (client getsockopt + one io_uring_enter for a linked sendmsg + recvmsg; server one
//            io_uring_enter per request: the reply's sendmsg and the next recvmsg submitted, the recvmsg awaited).
//            Built only where liburing is (-DHAVE_LIBURING).
// Prints one JSON line {"mode":…,"n":N,"us_per_op":…,"cpu_us_per_op":…} (cpu: the client's thread). Not part of the emulator.
// Usage: preload_pair_floor [-u] [-n N (100000)]
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define MSG 32
#define WARMUP 10000
#define RECV_BUF (140 * 1024) /* a lane's receive buffer holds the longest frame */

static double now_us(clockid_t c) {
	struct timespec t;
	clock_gettime(c, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

struct msgbuf {
	struct iovec iov;
	struct msghdr m;
	union { char b[CMSG_SPACE(sizeof(int) * 9) + CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } c;
};

static void msg_init(struct msgbuf *x, void *p, size_t n, int control) {
	memset(x, 0, sizeof *x);
	x->iov = (struct iovec){p, n};
	x->m.msg_iov = &x->iov;
	x->m.msg_iovlen = 1;
	if (control) { x->m.msg_control = x->c.b; x->m.msg_controllen = sizeof x->c.b; }
}

static void serve_plain(int s) {
	static char buf[RECV_BUF];
	char rep[MSG] = {0};
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
	for (;;) {
		struct epoll_event ev[8];
		if (epoll_wait(ep, ev, 8, -1) < 0 && errno != EINTR) _exit(1);
		struct msgbuf in;
		msg_init(&in, buf, sizeof buf, 1);
		ssize_t n = recvmsg(s, &in.m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN)) _exit(0);
		if (n < 0) continue;
		memcpy(rep + 4, buf + 4, 4); /* the seq */
		struct msgbuf out;
		msg_init(&out, rep, sizeof rep, 0);
		(void)!sendmsg(s, &out.m, MSG_NOSIGNAL);
	}
}

static void client_plain(int s, int node, int n) {
	char req[MSG] = {0};
	static char buf[RECV_BUF];
	for (int i = 0; i < n; i++) {
		uint64_t cookie;
		socklen_t cl = sizeof cookie;
		(void)getsockopt(node, SOL_SOCKET, SO_COOKIE, &cookie, &cl);
		memcpy(req + 4, &i, 4);
		struct msgbuf out, in;
		msg_init(&out, req, sizeof req, 0);
		if (sendmsg(s, &out.m, MSG_NOSIGNAL) != MSG) { perror("sendmsg"); exit(1); }
		msg_init(&in, buf, sizeof buf, 1);
		if (recvmsg(s, &in.m, MSG_CMSG_CLOEXEC) != MSG) { perror("recvmsg"); exit(1); }
	}
}

#ifdef HAVE_LIBURING
static void ring_init(struct io_uring *r) {
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(8, r, &p) == 0) return;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_COOP_TASKRUN;
	int rc = io_uring_queue_init_params(8, r, &p);
	if (rc < 0) { fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-rc)); exit(1); }
}

static void serve_uring(int s) {
	static char buf[RECV_BUF];
	char rep[MSG] = {0};
	struct io_uring r;
	ring_init(&r);
	struct msgbuf in, out;
	msg_init(&in, buf, sizeof buf, 1);
	msg_init(&out, rep, sizeof rep, 0);
	struct io_uring_sqe *q = io_uring_get_sqe(&r);
	io_uring_prep_recvmsg(q, s, &in.m, MSG_CMSG_CLOEXEC);
	io_uring_submit(&r);
	for (;;) {
		struct io_uring_cqe *c;
		if (io_uring_wait_cqe(&r, &c) < 0) _exit(1);
		int res = c->res;
		io_uring_cqe_seen(&r, c);
		if (res <= 0) _exit(0);
		memcpy(rep + 4, buf + 4, 4);
		in.m.msg_controllen = sizeof in.c.b;
		q = io_uring_get_sqe(&r);
		io_uring_prep_sendmsg(q, s, &out.m, MSG_NOSIGNAL);
		q->flags |= IOSQE_CQE_SKIP_SUCCESS;
		q = io_uring_get_sqe(&r);
		io_uring_prep_recvmsg(q, s, &in.m, MSG_CMSG_CLOEXEC);
		io_uring_submit_and_wait(&r, 1);
	}
}

static void client_uring(int s, int node, int n) {
	char req[MSG] = {0};
	static char buf[RECV_BUF];
	struct io_uring r;
	ring_init(&r);
	struct msgbuf in, out;
	msg_init(&out, req, sizeof req, 0);
	msg_init(&in, buf, sizeof buf, 1);
	for (int i = 0; i < n; i++) {
		uint64_t cookie;
		socklen_t cl = sizeof cookie;
		(void)getsockopt(node, SOL_SOCKET, SO_COOKIE, &cookie, &cl);
		memcpy(req + 4, &i, 4);
		in.m.msg_controllen = sizeof in.c.b;
		struct io_uring_sqe *q = io_uring_get_sqe(&r);
		io_uring_prep_sendmsg(q, s, &out.m, MSG_NOSIGNAL);
		q->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
		q->user_data = 2;
		q = io_uring_get_sqe(&r);
		io_uring_prep_recvmsg(q, s, &in.m, MSG_CMSG_CLOEXEC);
		q->user_data = 1;
		io_uring_submit_and_wait(&r, 1);
		for (;;) {
			struct io_uring_cqe *c;
			if (io_uring_wait_cqe(&r, &c) < 0) exit(1);
			uint64_t ud = c->user_data;
			int res = c->res;
			io_uring_cqe_seen(&r, c);
			if (res < 0 || (ud == 1 && res != MSG)) { fprintf(stderr, "%s: %d\n", ud == 1 ? "recvmsg" : "sendmsg", res); exit(1); }
			if (ud == 1) break;
		}
	}
}
#endif

int main(int argc, char **argv) {
	int n = 100000, uring = 0, opt;
	while ((opt = getopt(argc, argv, "un:")) != -1) {
		if (opt == 'u') uring = 1;
		else if (opt == 'n') n = atoi(optarg);
		else { fprintf(stderr, "usage: %s [-u] [-n N]\n", argv[0]); return 2; }
	}
#ifndef HAVE_LIBURING
	if (uring) { fprintf(stderr, "%s: built without liburing\n", argv[0]); return 2; }
#endif
	int lane[2], node[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lane) < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, node) < 0) { perror("socketpair"); return 1; }
	int one = 1;
	setsockopt(lane[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one); /* every request carries the sender's credentials */
	pid_t pid = fork();
	if (pid == 0) {
		close(lane[0]);
#ifdef HAVE_LIBURING
		if (uring) serve_uring(lane[1]);
#endif
		serve_plain(lane[1]);
	}
	close(lane[1]);
	void (*run)(int, int, int) = client_plain;
#ifdef HAVE_LIBURING
	if (uring) run = client_uring;
#endif
	run(lane[0], node[0], WARMUP);
	double t0 = now_us(CLOCK_MONOTONIC), c0 = now_us(CLOCK_THREAD_CPUTIME_ID);
	run(lane[0], node[0], n);
	double t1 = now_us(CLOCK_MONOTONIC), c1 = now_us(CLOCK_THREAD_CPUTIME_ID);
	close(lane[0]);
	waitpid(pid, NULL, 0);
	printf("{\"mode\":\"%s\",\"n\":%d,\"us_per_op\":%.3f,\"cpu_us_per_op\":%.3f}\n", uring ? "io_uring" : "syscalls", n, (t1 - t0) / n, (c1 - c0) / n);
	return 0;
}
