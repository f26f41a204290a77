// storm: random userptr traffic from several threads of one process, each thread on its own open file of the render
// node (GEM handles are per file and reused, so a thread can only model its own), checking every result against
// its own model of what the kernel would answer (notifier mode, docs/semantics.md §6–§7):
//   create over a slot with no BO → 0 and a resource id never seen by this thread; create over (part of) a slot
//   whose BO covers it → +3 with that handle and the page-aligned offset inside it; RESOURCE_INFO of a live BO → 0;
//   munmap of a slot → its BO is deleted (RESOURCE_INFO → ENOENT, GEM_CLOSE → EINVAL); madvise(DONTNEED) of a
//   whole slot → the BO is evicted (deleted); GEM_CLOSE of a live BO → 0, then again → EINVAL; mmap(MAP_FIXED)
//   over a slot (free + re-register at the same address) → the old BO is deleted, a new create → 0.
// Each thread owns its memory: one PROT_NONE reservation mapped before any thread starts, slots carved in it with
// MAP_FIXED; a munmapped slot is taken back with MAP_FIXED_NOREPLACE (and abandoned if another thread's mapping took
// it meanwhile). Stops after -s seconds or -n operations per thread; the file is closed with BOs still alive, so the
// server's release path runs too. The threads share the process's watcher: one thread's munmap is seen by the
// server while the others keep issuing ioctls.
// Usage: storm [-t THREADS (4)] [-s SECONDS (5)] [-n OPS (1000000)] [-k SLOTS (8)] [-p PAGES (4)] [-S SEED] [DEVICE]
// Output: "ok 1 - storm ..." or "not ok 1 - storm: <first failures>"; exit 0 only when no check failed.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "emu_client.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct slot {
	char *addr;
	int mapped; /* RW mapping present (else PROT_NONE reservation) */
	int lost;   /* another mapping took it after a munmap: never touched again */
	uint32_t handle, res;
};

struct worker {
	pthread_t tid;
	int id, fd;
	unsigned seed;
	struct slot *slots;
	long ops, checks, failures;
	uint32_t max_res;
	char first_failure[256];
};

static int g_slots = 8, g_pages = 4;
static long g_max_ops = 1000000;
static double g_deadline;
static uint32_t g_blob_id;

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *rc_str(int rc, char *buf, size_t n) {
	if (rc == 0) snprintf(buf, n, "0");
	else if (rc > 0) snprintf(buf, n, "+%d", rc);
	else snprintf(buf, n, "%s", strerrorname_np(-rc) ? strerrorname_np(-rc) : "errno?");
	return buf;
}

#define CHECK(w, cond, ...)                                                                  \
	do {                                                                                 \
		(w)->checks++;                                                               \
		if (!(cond)) {                                                               \
			if ((w)->failures++ == 0) snprintf((w)->first_failure, sizeof (w)->first_failure, __VA_ARGS__); \
		}                                                                            \
	} while (0)

static int create(int fd, const void *ptr, uint64_t size, struct emu_bo *out) {
	struct virtgpu_emu_create_blob cb = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR,
		.size = size,
		.blob_id = __atomic_add_fetch(&g_blob_id, 1, __ATOMIC_RELAXED),
		.userptr = (uint64_t)(uintptr_t)ptr,
	};
	int rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
	out->handle = cb.bo_handle; out->res = cb.res_handle; out->offset = cb.offset;
	return rc;
}

static void touch(struct slot *s, unsigned v) {
	for (int p = 0; p < g_pages; p++) s->addr[(size_t)p * EMU_PAGE] = (char)v;
}

/* The BO of a slot is gone (munmap / DONTNEED / replaced mapping): the kernel answers ENOENT and EINVAL for it. */
static void expect_deleted(struct worker *w, struct slot *s, const char *after) {
	char b1[32], b2[32];
	if (!s->handle) return;
	int ri = emu_resource_info(w->fd, s->handle, NULL);
	int gc = emu_gem_close(w->fd, s->handle);
	CHECK(w, ri == -ENOENT && gc == -EINVAL, "thread %d: after %s of slot %p, handle %u: RESOURCE_INFO %s (want ENOENT), GEM_CLOSE %s (want EINVAL)",
	      w->id, after, (void *)s->addr, s->handle, rc_str(ri, b1, sizeof b1), rc_str(gc, b2, sizeof b2));
	s->handle = s->res = 0;
}

static void map_slot(struct slot *s, unsigned v) {
	size_t len = (size_t)g_pages * EMU_PAGE;
	if (mmap(s->addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		perror("storm: mmap MAP_FIXED in the reservation");
		exit(2);
	}
	s->mapped = 1;
	touch(s, v);
}

static void *run(void *arg) {
	struct worker *w = arg;
	size_t len = (size_t)g_pages * EMU_PAGE;
	char b1[32];
	while (w->ops < g_max_ops && (w->ops & 63 || now_s() < g_deadline)) {
		struct slot *s = &w->slots[rand_r(&w->seed) % (unsigned)g_slots];
		if (s->lost) continue;
		w->ops++;
		unsigned op = rand_r(&w->seed) % 100;
		if (op < 35) { /* create, or dedup into the slot's BO */
			if (!s->mapped) map_slot(s, (unsigned)w->ops);
			struct emu_bo bo;
			if (!s->handle) {
				int rc = create(w->fd, s->addr, len, &bo);
				CHECK(w, rc == 0 && bo.res > w->max_res, "thread %d: create over slot %p with no BO: %s res %u (want 0, res above %u)",
				      w->id, (void *)s->addr, rc_str(rc, b1, sizeof b1), bo.res, w->max_res);
				if (rc == 0) { s->handle = bo.handle; s->res = bo.res; if (bo.res > w->max_res) w->max_res = bo.res; }
			} else {
				size_t first = rand_r(&w->seed) % (unsigned)g_pages, off = first * EMU_PAGE + rand_r(&w->seed) % 64;
				size_t size = 1 + rand_r(&w->seed) % (len - off);
				int rc = create(w->fd, s->addr + off, size, &bo);
				CHECK(w, rc == VIRTGPU_EMU_USERPTR_EXISTS && bo.handle == s->handle && bo.offset == first * EMU_PAGE,
				      "thread %d: create [%p+0x%zx, +0x%zx) inside BO %u: %s handle %u offset 0x%llx (want +3, handle %u, offset 0x%zx)",
				      w->id, (void *)s->addr, off, size, s->handle, rc_str(rc, b1, sizeof b1), bo.handle, (unsigned long long)bo.offset, s->handle, first * EMU_PAGE);
			}
		} else if (op < 50) { /* RESOURCE_INFO of a live BO */
			if (!s->handle) continue;
			struct virtgpu_emu_resource_info ri;
			int rc = emu_resource_info(w->fd, s->handle, &ri);
			CHECK(w, rc == 0 && ri.res_handle == s->res, "thread %d: RESOURCE_INFO of live BO %u: %s res %u (want 0, res %u)",
			      w->id, s->handle, rc_str(rc, b1, sizeof b1), ri.res_handle, s->res);
		} else if (op < 65) { /* munmap the slot (a true hole), then take the address back */
			if (!s->mapped) continue;
			if (munmap(s->addr, len) != 0) { perror("storm: munmap"); exit(2); }
			s->mapped = 0;
			expect_deleted(w, s, "munmap");
			void *p = mmap(s->addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
			if (p != s->addr) { if (p != MAP_FAILED) munmap(p, len); s->lost = 1; }
		} else if (op < 75) { /* madvise(DONTNEED) of the whole slot: the BO is evicted */
			if (!s->mapped) continue;
			if (madvise(s->addr, len, MADV_DONTNEED) != 0) { perror("storm: madvise"); exit(2); }
			expect_deleted(w, s, "madvise(DONTNEED)");
			touch(s, (unsigned)w->ops);
		} else if (op < 85) { /* mmap(MAP_FIXED) over the slot: the old mapping is unmapped */
			if (!s->mapped) continue;
			map_slot(s, (unsigned)w->ops);
			expect_deleted(w, s, "mmap(MAP_FIXED)");
		} else { /* GEM_CLOSE: 0 once, then EINVAL */
			if (!s->handle) continue;
			int rc = emu_gem_close(w->fd, s->handle);
			int again = emu_gem_close(w->fd, s->handle);
			char b2[32];
			CHECK(w, rc == 0 && again == -EINVAL, "thread %d: GEM_CLOSE of live BO %u: %s then %s (want 0 then EINVAL)",
			      w->id, s->handle, rc_str(rc, b1, sizeof b1), rc_str(again, b2, sizeof b2));
			s->handle = s->res = 0;
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	int threads = 4, opt;
	double seconds = 5;
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	while ((opt = getopt(argc, argv, "t:s:n:k:p:S:")) != -1) {
		if (opt == 't') threads = atoi(optarg);
		else if (opt == 's') seconds = atof(optarg);
		else if (opt == 'n') g_max_ops = strtol(optarg, NULL, 0);
		else if (opt == 'k') g_slots = atoi(optarg);
		else if (opt == 'p') g_pages = atoi(optarg);
		else if (opt == 'S') seed = (unsigned)strtoul(optarg, NULL, 0);
		else { fprintf(stderr, "usage: %s [-t THREADS] [-s SECONDS] [-n OPS] [-k SLOTS] [-p PAGES] [-S SEED] [DEVICE]\n", argv[0]); return 2; }
	}
	if (threads < 1 || threads > 64 || g_slots < 1 || g_pages < 1 || seconds <= 0) { fprintf(stderr, "storm: bad arguments\n"); return 2; }
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Every thread's memory: one reservation, a guard page after each slot, mapped before any thread runs. */
	size_t stride = ((size_t)g_pages + 1) * EMU_PAGE, per = stride * (size_t)g_slots;
	char *res = mmap(NULL, per * (size_t)threads, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) { perror("storm: reservation"); return 2; }
	struct worker *ws = calloc((size_t)threads, sizeof *ws);
	struct slot *slots = calloc((size_t)threads * (size_t)g_slots, sizeof *slots);
	for (int i = 0; i < threads; i++) {
		ws[i].id = i;
		ws[i].fd = emu_open_device("storm", optind < argc ? argv[optind] : NULL);
		int rc = emu_context_init_hsakmt(ws[i].fd);
		if (rc != 0) { printf("not ok 1 - storm: CONTEXT_INIT HSAKMT returned %s\n", emu_rc_name(rc)); return 1; }
		ws[i].seed = seed + 7919u * (unsigned)i;
		ws[i].slots = slots + (size_t)i * (size_t)g_slots;
		for (int k = 0; k < g_slots; k++) ws[i].slots[k].addr = res + (size_t)i * per + (size_t)k * stride;
	}
	g_deadline = now_s() + seconds;
	double t0 = now_s();
	for (int i = 0; i < threads; i++)
		if (pthread_create(&ws[i].tid, NULL, run, &ws[i]) != 0) { fprintf(stderr, "storm: pthread_create failed\n"); return 2; }
	long ops = 0, checks = 0, failures = 0, lost = 0, live = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(ws[i].tid, NULL);
		ops += ws[i].ops; checks += ws[i].checks; failures += ws[i].failures;
		for (int k = 0; k < g_slots; k++) { lost += ws[i].slots[k].lost; live += ws[i].slots[k].handle != 0; }
	}
	double dt = now_s() - t0;
	if (failures) {
		printf("not ok 1 - storm: %ld of %ld checks failed (seed %u)", failures, checks, seed);
		for (int i = 0; i < threads; i++) if (ws[i].failures) printf("; %s", ws[i].first_failure);
		printf("\n");
	} else {
		printf("ok 1 - storm pid=%d threads=%d ops=%ld checks=%ld live-at-close=%ld lost-slots=%ld seed=%u %.1f ops/s\n",
		       (int)getpid(), threads, ops, checks, live, lost, seed, (double)ops / dt);
	}
	for (int i = 0; i < threads; i++) close(ws[i].fd); /* with BOs still alive: the server's release path frees them */
	return failures ? 1 : 0;
}
