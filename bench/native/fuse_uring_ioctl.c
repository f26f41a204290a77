// fuse_uring_ioctl: bench/transport's FUSE-over-io_uring comparison point, and its read/write control. A raw FUSE
// server (no libfuse: Debian 12's libfuse3 3.14 has no io_uring) exposing one regular file MOUNT/dev that answers
// every ioctl with result 0 and out_size bytes (the in bytes echoed, the rest zero), as fuse_ll_ioctl.c does.
// Not part of the emulator.
//
// Usage: fuse_uring_ioctl [-u [-c CPU]] MOUNTDIR
//   without -u: one thread, read(2) a request from /dev/fuse, writev(2) its reply (libfuse's `-s` loop, minus libfuse);
//   with -u: FUSE_INIT asks for FUSE_OVER_IO_URING; then one thread per possible CPU, each pinned to its CPU, owns an
//   io_uring (SQE128) with QUEUE_DEPTH entries registered on its queue (FUSE_IO_URING_CMD_REGISTER), and answers
//   each request with FUSE_IO_URING_CMD_COMMIT_AND_FETCH. The kernel queues a request on the queue of the CPU its
//   caller runs on. The main thread keeps reading /dev/fuse (INIT, interrupts, forgets, and everything when the kernel
//   refused the ring: it then falls back to /dev/fuse by itself).
//   with -c CPU: every queue thread on that one CPU instead of its own: what a server with one serving thread for
//   every queue gets (the round trip of a caller on another CPU crosses CPUs again).
// Prints "ready uring=on queues=N" / "ready uring=off (why)" on stdout once mounted (and the ring registered);
// SIGINT/SIGTERM unmount and print "served ring=R dev=D" (requests answered through each path).
//
// The kernel's side only switches a connection to io_uring when /sys/module/fuse/parameters/enable_uring was on at
// its FUSE_INIT and registration: bench/transport turns it on around this server's start only.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// ---- The ring uAPI (include/uapi/linux/fuse.h, protocol 7.42+), newer than Debian 12's headers ----

/* INIT flag: bit 41 of the 64-bit flags, i.e. bit 9 of flags2 (FUSE_INIT_EXT set). */
#define VGN_FUSE_OVER_IO_URING (1ULL << 41)
/* The protocol minor that introduced the ring structures below. */
#define VGN_FUSE_URING_MINOR 42
#define VGN_FUSE_URING_IN_OUT_HEADER_SZ 128
#define VGN_FUSE_URING_OP_IN_OUT_SZ 128

enum { VGN_FUSE_IO_URING_CMD_REGISTER = 1, VGN_FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2 };

struct vgn_fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique on fetch; echoed by COMMIT_AND_FETCH */
	uint32_t payload_sz; /* bytes in the payload buffer, either direction */
	uint32_t padding;
	uint64_t reserved;
};

/* iov[0] of a REGISTER: the fixed headers of the entry's current request / reply. */
struct vgn_fuse_uring_req_header {
	char in_out[VGN_FUSE_URING_IN_OUT_HEADER_SZ]; /* fuse_in_header on fetch, fuse_out_header on commit */
	char op_in[VGN_FUSE_URING_OP_IN_OUT_SZ];      /* the opcode's own in-struct (in_args[0]) */
	struct vgn_fuse_uring_ent_in_out ring_ent_in_out;
};

/* In the SQE128's 80-byte command area. */
struct vgn_fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct vgn_fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out is 32 bytes");
_Static_assert(sizeof(struct vgn_fuse_uring_req_header) == 288, "fuse_uring_req_header is 288 bytes");
_Static_assert(sizeof(struct vgn_fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req is 24 bytes");
_Static_assert(offsetof(struct io_uring_sqe, cmd) == 48, "the SQE's command area");

// ---- The file system: root directory + one file ----

#define FILE_INO 2
static const char FILE_NAME[] = "dev";
#define ATTR_TIMEOUT_S 3600
/* max_write announced at INIT; payload buffers and the read buffer hold one such request. */
#define MAX_WRITE (128 * 1024)
#define READ_BUF (MAX_WRITE + 4096)
#define QUEUE_DEPTH 2
#define MAX_QUEUES 64

static int fuse_fd = -1;
static const char *mountdir;
static int want_uring;
static atomic_ulong served_ring, served_dev;
static volatile sig_atomic_t stopping;

static void fill_attr(uint64_t ino, struct fuse_attr *a) {
	memset(a, 0, sizeof *a);
	a->ino = ino;
	if (ino == FUSE_ROOT_ID) { a->mode = S_IFDIR | 0755; a->nlink = 2; }
	else { a->mode = S_IFREG | 0666; a->nlink = 1; }
}

/* One request → its reply body in `out` (returns its length) and *err (0 or a negative errno); -1: no reply. */
static long handle(const struct fuse_in_header *ih, const void *op, size_t op_len, const void *data, size_t data_len, void *out, int *err) {
	*err = 0;
	switch (ih->opcode) {
	case FUSE_LOOKUP: {
		/* The name is the payload (in_args[0] is an empty header); on the /dev/fuse path it is the whole body. */
		const char *name = data_len ? data : op;
		size_t len = data_len ? data_len : op_len;
		if (ih->nodeid != FUSE_ROOT_ID || len < sizeof FILE_NAME || memcmp(name, FILE_NAME, sizeof FILE_NAME) != 0) { *err = -ENOENT; return 0; }
		struct fuse_entry_out *e = out;
		memset(e, 0, sizeof *e);
		e->nodeid = FILE_INO;
		e->generation = 1;
		e->entry_valid = e->attr_valid = ATTR_TIMEOUT_S;
		fill_attr(FILE_INO, &e->attr);
		return sizeof *e;
	}
	case FUSE_GETATTR: {
		if (ih->nodeid != FUSE_ROOT_ID && ih->nodeid != FILE_INO) { *err = -ENOENT; return 0; }
		struct fuse_attr_out *a = out;
		memset(a, 0, sizeof *a);
		a->attr_valid = ATTR_TIMEOUT_S;
		fill_attr(ih->nodeid, &a->attr);
		return sizeof *a;
	}
	case FUSE_OPEN: {
		if (ih->nodeid != FILE_INO) { *err = ih->nodeid == FUSE_ROOT_ID ? -EISDIR : -ENOENT; return 0; }
		struct fuse_open_out *o = out;
		memset(o, 0, sizeof *o);
		o->fh = 1;
		o->open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE; /* as the emulator's FUSE file */
		return sizeof *o;
	}
	case FUSE_FLUSH: case FUSE_RELEASE: return 0;
	case FUSE_IOCTL: {
		if (op_len < sizeof(struct fuse_ioctl_in)) { *err = -EINVAL; return 0; }
		const struct fuse_ioctl_in *in = op;
		if (in->out_size > (1u << 14) || in->in_size > data_len) { *err = -EINVAL; return 0; }
		struct fuse_ioctl_out *o = out;
		memset(o, 0, sizeof *o);
		uint8_t *bytes = (uint8_t *)(o + 1);
		size_t echo = in->in_size < in->out_size ? in->in_size : in->out_size;
		memcpy(bytes, data, echo);
		memset(bytes + echo, 0, in->out_size - echo);
		return (long)(sizeof *o + in->out_size);
	}
	case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_INTERRUPT: return -1; /* no reply; interrupts: answered anyway */
	default: *err = -ENOSYS; return 0;
	}
}

/* The /dev/fuse path's split of a request body into the opcode's header and the rest. */
static size_t op_header_size(uint32_t opcode) {
	switch (opcode) {
	case FUSE_GETATTR: return sizeof(struct fuse_getattr_in);
	case FUSE_OPEN: return sizeof(struct fuse_open_in);
	case FUSE_FLUSH: return sizeof(struct fuse_flush_in);
	case FUSE_RELEASE: return sizeof(struct fuse_release_in);
	case FUSE_IOCTL: return sizeof(struct fuse_ioctl_in);
	default: return 0; /* LOOKUP: the name is all data */
	}
}

// ---- io_uring, raw syscalls ----

struct queue {
	int qid;
	int ring_fd;
	struct io_uring_sqe *sqes;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	unsigned to_submit;
	struct vgn_fuse_uring_req_header *hdr[QUEUE_DEPTH];
	void *payload[QUEUE_DEPTH];
	struct iovec iov[QUEUE_DEPTH][2];
	pthread_t thread;
	int status; /* 0 pending, 1 registered, < 0 -errno */
	const char *failed_at;
};

static struct queue queues[MAX_QUEUES];
static int nqueues;
/* -c: the CPU every queue thread runs on (-1: each on its own queue's CPU). */
static int one_cpu = -1;
static pthread_mutex_t status_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t status_cv = PTHREAD_COND_INITIALIZER;

static void set_status(struct queue *q, int st, const char *where) {
	pthread_mutex_lock(&status_mu);
	if (q->status == 0 || st < 0) { q->status = st; q->failed_at = where; }
	pthread_cond_broadcast(&status_cv);
	pthread_mutex_unlock(&status_mu);
}

static int ring_setup(struct queue *q) {
	static const unsigned tries[] = {
		IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN,
		IORING_SETUP_SQE128,
	};
	struct io_uring_params p;
	int fd = -1;
	for (size_t i = 0; i < sizeof tries / sizeof tries[0] && fd < 0; i++) {
		memset(&p, 0, sizeof p);
		p.flags = tries[i];
		fd = (int)syscall(SYS_io_uring_setup, QUEUE_DEPTH, &p);
		if (fd < 0 && errno != EINVAL) return -errno;
	}
	if (fd < 0) return -errno;
	q->ring_fd = fd;
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe) * 2; /* CQE32 not used; room either way */
	if (p.features & IORING_FEAT_SINGLE_MMAP) sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	uint8_t *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED) return -errno;
	uint8_t *cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED) return -errno;
	}
	q->sqes = mmap(NULL, p.sq_entries * 2 * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (q->sqes == MAP_FAILED) return -errno;
	q->sq_head = (unsigned *)(sq + p.sq_off.head);
	q->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	q->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	q->sq_array = (unsigned *)(sq + p.sq_off.array);
	q->cq_head = (unsigned *)(cq + p.cq_off.head);
	q->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	q->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	q->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* Queue one FUSE command SQE (SQE128: each slot is two 64-byte SQEs) for entry `ent`. */
static void queue_cmd(struct queue *q, int ent, uint32_t cmd_op, uint64_t commit_id) {
	unsigned tail = *q->sq_tail;
	unsigned idx = tail & *q->sq_mask;
	struct io_uring_sqe *sqe = &q->sqes[idx * 2];
	memset(sqe, 0, 2 * sizeof *sqe);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fuse_fd;
	sqe->cmd_op = cmd_op;
	sqe->addr = (uint64_t)(uintptr_t)q->iov[ent]; /* read by REGISTER only */
	sqe->len = 2;
	sqe->user_data = (uint64_t)ent;
	struct vgn_fuse_uring_cmd_req *req = (struct vgn_fuse_uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	req->commit_id = commit_id;
	q->sq_array[idx] = idx;
	__atomic_store_n(q->sq_tail, tail + 1, __ATOMIC_RELEASE);
	q->to_submit++;
}

static int enter(struct queue *q, unsigned min_complete) {
	for (;;) {
		int n = (int)syscall(SYS_io_uring_enter, q->ring_fd, q->to_submit, min_complete, min_complete ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
		if (n >= 0) { q->to_submit -= (unsigned)n < q->to_submit ? (unsigned)n : q->to_submit; return 0; }
		if (errno != EINTR) return -errno;
	}
}

/* A request fetched into entry `ent`: answer it in place, then queue its COMMIT_AND_FETCH. */
static void serve_entry(struct queue *q, int ent) {
	struct vgn_fuse_uring_req_header *h = q->hdr[ent];
	struct fuse_in_header ih;
	memcpy(&ih, h->in_out, sizeof ih);
	uint64_t commit_id = h->ring_ent_in_out.commit_id;
	static __thread uint8_t body[sizeof(struct fuse_ioctl_out) + (1u << 14)];
	int err;
	long n = handle(&ih, h->op_in, sizeof h->op_in, q->payload[ent], h->ring_ent_in_out.payload_sz, body, &err);
	if (n < 0) { err = -ENOSYS; n = 0; } /* every ring request must be committed */
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof oh + (size_t)n), .error = err, .unique = ih.unique };
	memcpy(h->in_out, &oh, sizeof oh);
	memcpy(q->payload[ent], body, (size_t)n);
	h->ring_ent_in_out.payload_sz = (uint32_t)n;
	atomic_fetch_add_explicit(&served_ring, 1, memory_order_relaxed);
	queue_cmd(q, ent, VGN_FUSE_IO_URING_CMD_COMMIT_AND_FETCH, commit_id);
}

static void *queue_main(void *arg) {
	struct queue *q = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(one_cpu >= 0 ? one_cpu : q->qid, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) { set_status(q, -errno, "sched_setaffinity"); return NULL; }
	int rc = ring_setup(q);
	if (rc < 0) { set_status(q, rc, "io_uring_setup"); return NULL; }
	for (int e = 0; e < QUEUE_DEPTH; e++) {
		q->hdr[e] = calloc(1, sizeof *q->hdr[e]);
		q->payload[e] = calloc(1, MAX_WRITE);
		if (!q->hdr[e] || !q->payload[e]) { set_status(q, -ENOMEM, "calloc"); return NULL; }
		q->iov[e][0] = (struct iovec){ q->hdr[e], sizeof *q->hdr[e] };
		q->iov[e][1] = (struct iovec){ q->payload[e], MAX_WRITE };
		queue_cmd(q, e, VGN_FUSE_IO_URING_CMD_REGISTER, 0);
	}
	rc = enter(q, 0);
	if (rc < 0) { set_status(q, rc, "io_uring_enter"); return NULL; }
	/* A refused REGISTER completes at once with its error; an accepted one only when a request arrives. */
	int registered = 0;
	for (;;) {
		unsigned head = *q->cq_head, tail = __atomic_load_n(q->cq_tail, __ATOMIC_ACQUIRE);
		for (; head != tail; head++) {
			struct io_uring_cqe *cqe = &q->cqes[head & *q->cq_mask];
			if (cqe->res < 0) {
				__atomic_store_n(q->cq_head, head + 1, __ATOMIC_RELEASE);
				/* ENOTCONN / ECANCELED: the connection ended (unmount, exit); anything else: refused. */
				set_status(q, cqe->res, registered ? "COMMIT_AND_FETCH" : "REGISTER");
				return NULL;
			}
			serve_entry(q, (int)cqe->user_data);
		}
		__atomic_store_n(q->cq_head, head, __ATOMIC_RELEASE);
		if (!registered) { registered = 1; set_status(q, 1, NULL); }
		rc = enter(q, 1);
		if (rc < 0) { set_status(q, rc, "io_uring_enter"); return NULL; }
	}
}

// ---- /dev/fuse ----

static void reply_dev(uint64_t unique, int err, const void *body, size_t len) {
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof oh + len), .error = err, .unique = unique };
	struct iovec iov[2] = { { &oh, sizeof oh }, { (void *)body, len } };
	if (writev(fuse_fd, iov, len ? 2 : 1) < 0 && errno != ENOENT) perror("fuse_uring_ioctl: writev");
}

/* FUSE_INIT: 7.x with the kernel's minor (at most the ring's when -u asks for it), FUSE_OVER_IO_URING when offered. */
static int answer_init(const struct fuse_in_header *ih, const struct fuse_init_in *in) {
	struct fuse_init_out o;
	memset(&o, 0, sizeof o);
	o.major = FUSE_KERNEL_VERSION;
	o.minor = in->minor < VGN_FUSE_URING_MINOR ? in->minor : VGN_FUSE_URING_MINOR;
	o.max_readahead = in->max_readahead;
	o.max_background = 16;
	o.congestion_threshold = 12;
	o.max_write = MAX_WRITE;
	o.time_gran = 1;
	uint64_t offered = (uint64_t)in->flags | ((in->flags & FUSE_INIT_EXT) ? (uint64_t)in->flags2 << 32 : 0);
	int uring = want_uring && (offered & VGN_FUSE_OVER_IO_URING) && in->minor >= VGN_FUSE_URING_MINOR;
	if (uring) { o.flags = FUSE_INIT_EXT; o.flags2 = (uint32_t)(VGN_FUSE_OVER_IO_URING >> 32); }
	reply_dev(ih->unique, 0, &o, sizeof o);
	return uring ? 1 : (!want_uring ? 0 : (in->minor < VGN_FUSE_URING_MINOR ? -EPROTO : -EOPNOTSUPP));
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

static long possible_cpus(void) {
	/* Queues: one per possible CPU (the kernel's nr_queues is num_possible_cpus()). */
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	long last = -1;
	if (f) {
		char line[256];
		if (fgets(line, sizeof line, f)) { char *p = strrchr(line, '-'); p = p ? p + 1 : strrchr(line, ',') ? strrchr(line, ',') + 1 : line; last = strtol(p, NULL, 10); }
		fclose(f);
	}
	return last >= 0 ? last + 1 : sysconf(_SC_NPROCESSORS_CONF);
}

/* Start the queues and wait until each registered or failed; "ready …" names the outcome. */
static void start_ring(int init_rc) {
	if (init_rc < 0) {
		printf("ready uring=off (the kernel did not offer FUSE_OVER_IO_URING at INIT: %s)\n",
		       init_rc == -EPROTO ? "protocol minor below 7.42" : "enable_uring off, or no CONFIG_FUSE_IO_URING");
		return;
	}
	nqueues = (int)possible_cpus();
	if (nqueues > MAX_QUEUES) nqueues = MAX_QUEUES;
	/* The queue threads block SIGINT/SIGTERM: they reach the main thread, whose read(2) they interrupt. */
	sigset_t stop_sigs, old;
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, &old);
	for (int i = 0; i < nqueues; i++) {
		queues[i].qid = i;
		if (pthread_create(&queues[i].thread, NULL, queue_main, &queues[i]) != 0) { queues[i].status = -EAGAIN; queues[i].failed_at = "pthread_create"; }
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* A REGISTER accepted stays in flight (no CQE): give the kernel's refusal, if any, a moment to come back. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 200 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
	pthread_mutex_lock(&status_mu);
	for (int i = 0; i < nqueues; i++) {
		while (queues[i].status == 0 && !stopping) {
			if (pthread_cond_timedwait(&status_cv, &status_mu, &until) == ETIMEDOUT) break;
		}
	}
	int bad = -1;
	for (int i = 0; i < nqueues && bad < 0; i++) if (queues[i].status < 0) bad = i;
	pthread_mutex_unlock(&status_mu);
	if (bad >= 0) printf("ready uring=off (queue %d: %s: %s; served through /dev/fuse)\n", bad, queues[bad].failed_at, strerror(-queues[bad].status));
	else printf("ready uring=on queues=%d\n", nqueues);
}

int main(int argc, char **argv) {
	int opt;
	while ((opt = getopt(argc, argv, "uc:")) != -1) {
		if (opt == 'u') want_uring = 1;
		else if (opt == 'c') one_cpu = atoi(optarg);
		else { fprintf(stderr, "usage: %s [-u [-c CPU]] MOUNTDIR\n", argv[0]); return 2; }
	}
	if (optind + 1 != argc || one_cpu < -1) { fprintf(stderr, "usage: %s [-u [-c CPU]] MOUNTDIR\n", argv[0]); return 2; }
	mountdir = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: the blocked read(2) returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse_fd < 0) { perror("fuse_uring_ioctl: open /dev/fuse"); return 1; }
	char opts[128];
	snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fuse_fd);
	if (mount("fuse_uring_ioctl", mountdir, "fuse.fuse_uring_ioctl", MS_NOSUID | MS_NODEV, opts) != 0) { perror("fuse_uring_ioctl: mount"); return 1; }

	static uint8_t buf[READ_BUF];
	static uint8_t out[sizeof(struct fuse_ioctl_out) + (1u << 14) + sizeof(struct fuse_entry_out)];
	int inited = 0;
	while (!stopping) {
		ssize_t got = read(fuse_fd, buf, sizeof buf);
		if (got < 0) {
			if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue;
			if (errno != ENODEV) perror("fuse_uring_ioctl: read /dev/fuse");
			break;
		}
		if ((size_t)got < sizeof(struct fuse_in_header)) continue;
		const struct fuse_in_header *ih = (const void *)buf;
		const uint8_t *body = buf + sizeof *ih;
		size_t body_len = (size_t)got - sizeof *ih;
		if (ih->opcode == FUSE_INIT) {
			if (body_len < sizeof(struct fuse_init_in)) { reply_dev(ih->unique, -EINVAL, NULL, 0); continue; }
			int rc = answer_init(ih, (const void *)body);
			if (!inited++) { if (want_uring) start_ring(rc); else printf("ready uring=off (read/write loop)\n"); }
			continue;
		}
		if (ih->opcode == FUSE_DESTROY) { reply_dev(ih->unique, 0, NULL, 0); break; }
		size_t hs = op_header_size(ih->opcode);
		if (hs > body_len) { reply_dev(ih->unique, -EINVAL, NULL, 0); continue; }
		int err;
		long n = handle(ih, body, hs, body + hs, body_len - hs, out, &err);
		if (n < 0) continue;
		atomic_fetch_add_explicit(&served_dev, 1, memory_order_relaxed);
		reply_dev(ih->unique, err, out, (size_t)n);
	}
	umount2(mountdir, MNT_DETACH);
	printf("served ring=%lu dev=%lu\n", (unsigned long)atomic_load(&served_ring), (unsigned long)atomic_load(&served_dev));
	return 0; /* exit tears the rings down (their commands are cancelled) and closes /dev/fuse */
}
