/* hsakmt_umd: what a ROCm-style compute UMD (the HSAKMT virtio backend) does to the render node, on each of its
 * paths, written from the HSAKMT protocol facts (README "Running a ROCm-style UMD"): open (drmGetDevices2 → GET_CAPS 8 → CONTEXT_INIT →
 * shmem blob + MAP + mmap → OPEN_KFD → MAP_FIXED PROT_NONE reservation of the VM range), register userptrs
 * (CREATE_BLOB USE_USERPTR → RESOURCE_INFO → MAP_USERPTR → REG_MEM_WITH_FLAG; a contained sub-range), MAP_MEM_TO_GPU,
 * deregister, munmap of registered memory (the BO and the host's registration gone), AllocMemory (ALLOC → CREATE_BLOB
 * HOST3D → MAP → mmap MAP_FIXED at the host's address, read/write), FreeMemory, AVAIL_MEM, NOP, close. One TAP line
 * per check; exit 0 when all pass.
 *   hsakmt_umd [--svm] [--gen 80|312]
 *     --svm       SVM mode: no own dedup, raw (unaligned) userptr ranges, the kernel's +3 and auto-delete are relied on
 *     --gen N     the MEMORY request generation: 80-byte (replies 24 B) or 312-byte (replies 320 B)
 *     --bench N   after opening: N NOP ccmd round trips (EXECBUFFER + fence + seqno) and N no-op ioctls
 *                 (DRM_IOCTL_VERSION, zero lengths), interleaved in 5 rounds; one JSON line each (bench/hsakmt)
 * Every ccmd goes alone in an EXECBUFFER {RING_IDX|FENCE_FD_OUT}; then poll(fence), close, spin on shmem.seqno. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>

#include "emu_client.h"
#include "tap.h"

/* ccmds (request header {cmd, len, seqno, rsp_off}; reply {len, ret, payload @8}). */
enum { CCMD_NOP = 1, CCMD_QUERY_INFO = 2, CCMD_MEMORY = 4 };
enum { QUERY_OPEN_KFD = 1 };
enum { M_ALLOC = 0, M_FREE = 2, M_UNMAP_TO_GPU = 3, M_AVAIL_MEM = 4, M_MAP_MEM_TO_GPU = 5, M_REG_MEM_WITH_FLAG = 6, M_MAP_USERPTR = 8 };
#define SHMEM_SIZE (25 * EMU_PAGE)
#define RSP_AREA_AT 16
#define QUERY_INFO_LEN 128
#define QUERY_INFO_RSP 424
#define MAX_REQ 512

struct shmem { volatile uint32_t seqno, rsp_mem_offset, async_error, global_faults; };

static int fd = -1, svm, gen = 80;
static uint8_t *shm;
static uint32_t seqno, rsp_next;
static uint64_t blob_counter = 1; /* the first blob_id given out is 2 */
static uint64_t vm_start, vm_size;
static uint32_t shmem_handle;

static void put32(uint8_t *b, size_t at, uint32_t v) { memcpy(b + at, &v, 4); }
static void put64(uint8_t *b, size_t at, uint64_t v) { memcpy(b + at, &v, 8); }
static uint32_t get32(const uint8_t *b, size_t at) { uint32_t v; memcpy(&v, b + at, 4); return v; }
static uint64_t get64(const uint8_t *b, size_t at) { uint64_t v; memcpy(&v, b + at, 8); return v; }

/* The MEMORY tail by generation: blob_id, type, res_id offsets; the reply size. */
static size_t m_blob_at(void) { return gen == 80 ? 64 : 296; }
static size_t m_type_at(void) { return gen == 80 ? 72 : 304; }
static size_t m_res_at(void) { return gen == 80 ? 76 : 308; }
static uint32_t m_rsp(void) { return gen == 80 ? 24 : 320; }

/* One ccmd: reserve ALIGN8(rsp_size) in the response area (wrapping), preset the reply's len, EXECBUFFER, fence,
 * seqno. Returns the reply (in the shmem) or NULL when the ioctl failed. */
static const uint8_t *ccmd(uint8_t *req, uint32_t cmd, uint32_t len, uint32_t rsp_size) {
	uint32_t area = SHMEM_SIZE - ((struct shmem *)shm)->rsp_mem_offset;
	uint32_t need = (rsp_size + 7) & ~7u;
	if (rsp_next + need > area) rsp_next = 0;
	uint32_t off = rsp_next;
	rsp_next += need;
	uint8_t *rsp = shm + ((struct shmem *)shm)->rsp_mem_offset + off;
	memset(rsp, 0, rsp_size);
	put32(rsp, 0, rsp_size);
	put32(req, 0, cmd); put32(req, 4, len); put32(req, 8, ++seqno); put32(req, 12, off);
	struct virtgpu_emu_execbuffer eb = { .flags = VIRTGPU_EXECBUF_RING_IDX | VIRTGPU_EXECBUF_FENCE_FD_OUT, .size = len, .command = (uintptr_t)req, .ring_idx = 0, .syncobj_stride = 16 };
	if (emu_ioctl(fd, VIRTGPU_EMU_IOCTL_EXECBUFFER, &eb) < 0) return NULL;
	struct pollfd p = { .fd = eb.fence_fd, .events = POLLIN };
	poll(&p, 1, -1);
	close(eb.fence_fd);
	while ((int32_t)(((struct shmem *)shm)->seqno - seqno) < 0) sched_yield();
	return rsp;
}

static int32_t ret_of(const uint8_t *rsp) { return rsp ? (int32_t)get32(rsp, 4) : -1; }

/* A MEMORY request of this generation: body fields set by the caller at @16.., tail here. */
static const uint8_t *memory(uint8_t *req, uint32_t type, uint32_t res_id, uint64_t blob_id) {
	put64(req, m_blob_at(), blob_id); put32(req, m_type_at(), type); put32(req, m_res_at(), res_id);
	return ccmd(req, CCMD_MEMORY, (uint32_t)gen, m_rsp());
}

static int in_vm(uint64_t a) { return a >= vm_start && a < vm_start + vm_size; }

/* 1 when no mapping of ours overlaps [a, a+len). */
static int hole_in_maps(uint64_t a, uint64_t len) {
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int hole = 1;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < a + len && e > a) hole = 0;
	}
	if (f) fclose(f);
	return hole;
}

/* ---- open ---- */

static int open_kfd(void) {
	drmDevicePtr devs[10];
	int n = drmGetDevices2(0, devs, 10);
	char path[256] = "";
	for (int i = 0; i < n; i++)
		if (devs[i]->available_nodes & (1 << DRM_NODE_RENDER)) snprintf(path, sizeof path, "%s", devs[i]->nodes[DRM_NODE_RENDER]);
	if (n > 0) drmFreeDevices(devs, n);
	report(path[0] != 0, "drmGetDevices2_lists_a_render_node", "none");
	if (!path[0]) return -1;
	fd = open(path, O_RDWR | O_CLOEXEC);
	report(fd >= 0, "open_render_node", strerror(errno));
	if (fd < 0) return -1;
	struct virtgpu_emu_hsakmt_capset caps = { 0 };
	struct drm_virtgpu_get_caps gc = { .cap_set_id = VIRTIO_GPU_CAPSET_HSAKMT, .cap_set_ver = 0, .addr = (uintptr_t)&caps, .size = sizeof caps };
	int rc = emu_ioctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc);
	report(rc == 0 && caps.context_type == VIRTGPU_EMU_HSAKMT_CONTEXT_AMDGPU, "get_caps_8_context_type_1", emu_rc_name(rc));
	struct virtgpu_emu_context_set_param p[] = { { VIRTGPU_CONTEXT_PARAM_CAPSET_ID, VIRTIO_GPU_CAPSET_HSAKMT }, { VIRTGPU_CONTEXT_PARAM_NUM_RINGS, 64 } };
	struct virtgpu_emu_context_init ci = { .num_params = 2, .ctx_set_params = (uintptr_t)p };
	rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_CONTEXT_INIT, &ci);
	report(rc == 0, "context_init_capset_8_rings_64", emu_rc_name(rc));
	struct virtgpu_emu_create_blob cb = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D, .blob_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE, .size = SHMEM_SIZE, .blob_id = 0 };
	rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
	shmem_handle = cb.bo_handle;
	struct drm_virtgpu_map map = { .handle = cb.bo_handle };
	int rc2 = rc ? rc : emu_ioctl(fd, DRM_IOCTL_VIRTGPU_MAP, &map);
	shm = rc2 ? MAP_FAILED : mmap(NULL, SHMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map.offset);
	report(shm != MAP_FAILED, "shmem_blob_mapped", rc ? emu_rc_name(rc) : rc2 ? emu_rc_name(rc2) : strerror(errno));
	if (shm == MAP_FAILED) return -1;
	report(((struct shmem *)shm)->rsp_mem_offset == RSP_AREA_AT, "shmem_rsp_mem_offset_16", "");
	uint8_t req[MAX_REQ] = { 0 };
	put32(req, 48, QUERY_OPEN_KFD);
	void *heap = malloc(64); put64(req, 56, (uintptr_t)heap); free(heap); /* a freed heap page, as the library sends */
	const uint8_t *r = ccmd(req, CCMD_QUERY_INFO, QUERY_INFO_LEN, QUERY_INFO_RSP);
	vm_start = r ? get64(r, 8) : 0; vm_size = r ? get64(r, 16) : 0;
	report(ret_of(r) == 0 && vm_start && vm_size, "open_kfd_vm_range", "");
	report(hole_in_maps(vm_start, vm_size), "vm_range_is_a_hole_of_this_process", "");
	void *v = mmap((void *)(uintptr_t)vm_start, vm_size, PROT_NONE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	report(v == (void *)(uintptr_t)vm_start && madvise(v, vm_size, MADV_DONTFORK) == 0, "vm_range_reserved_map_fixed", strerror(errno));
	return 0;
}

/* ---- userptr registration (the library's own tree, non-SVM mode: BOs with a reference count) ---- */

struct reg { uint64_t start, size; uint32_t handle, res; int refs; uint64_t host; };
static struct reg regs[16];

static struct reg *containing(uint64_t a, uint64_t size) {
	for (int i = 0; i < 16; i++) if (regs[i].refs && a >= regs[i].start && a + size <= regs[i].start + regs[i].size) return &regs[i];
	return NULL;
}

/* Register [addr, addr+size): returns the registration (its BO), NULL on failure; *sent counts the ioctls made. */
static struct reg *reg_mem(uint64_t addr, uint64_t size, int *created, int *dedup) {
	*created = *dedup = 0;
	if (in_vm(addr)) return NULL;
	if (!svm) { struct reg *r = containing(addr, size); if (r) { r->refs++; *dedup = 1; return r; } }
	uint64_t base = svm ? addr : addr & ~(EMU_PAGE - 1);
	uint64_t len = svm ? size : ((addr + size + EMU_PAGE - 1) & ~(EMU_PAGE - 1)) - base;
	struct virtgpu_emu_create_blob cb = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D_GUEST, .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR, .blob_id = ++blob_counter, .size = len, .userptr = base };
	int rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
	if (rc < 0) return NULL;
	*created = rc == 0 ? 1 : 3;
	struct virtgpu_emu_resource_info ri = { .bo_handle = cb.bo_handle };
	if (emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_INFO, &ri) < 0) return NULL;
	uint8_t req[MAX_REQ] = { 0 };
	const uint8_t *r = memory(req, M_MAP_USERPTR, ri.res_handle, 0);
	uint64_t host = r && ret_of(r) == 0 ? get64(r, 8) : 0;
	if (!host) return NULL;
	/* +3: the kernel's BO contains the range at `offset` (SVM mode drops it: page base + in-page offset). */
	uint64_t at = rc == VIRTGPU_EMU_USERPTR_EXISTS && !svm ? host + cb.offset : host + (svm ? (addr & (EMU_PAGE - 1)) : 0);
	if (rc == VIRTGPU_EMU_USERPTR_EXISTS && svm) at = (addr & ~(EMU_PAGE - 1)) + (addr & (EMU_PAGE - 1));
	memset(req, 0, sizeof req);
	put64(req, 16, at); put64(req, 24, size); put32(req, 32, 0);
	r = memory(req, M_REG_MEM_WITH_FLAG, ri.res_handle, 0);
	if (ret_of(r) != 0) return NULL;
	struct reg *slot = NULL;
	for (int i = 0; i < 16 && !slot; i++) if (!regs[i].refs) slot = &regs[i];
	*slot = (struct reg){ .start = base, .size = len, .handle = cb.bo_handle, .res = ri.res_handle, .refs = 1, .host = host };
	return slot;
}

static void dereg(struct reg *r) {
	if (svm) { r->refs = 0; return; } /* SVM: nothing sent; the notifier or close frees the handle */
	if (--r->refs == 0) emu_gem_close(fd, r->handle);
}

/* MAP_USERPTR of a resource: the host's answer (0 when it answered an error). */
static uint64_t host_userptr(uint32_t res) {
	uint8_t req[MAX_REQ] = { 0 };
	const uint8_t *r = memory(req, M_MAP_USERPTR, res, 0);
	return ret_of(r) == 0 ? get64(r, 8) : 0;
}

static void userptr_paths(void) {
	uint8_t *a = emu_map(4, 1), *b = emu_map(2, 1), *c = emu_map(3, 1);
	int created, dedup;
	struct reg *ra = reg_mem((uintptr_t)a + 100, 3 * EMU_PAGE, &created, &dedup);
	report(ra && created == 1, "register_creates_a_userptr_bo", "");
	report(ra && ra->host == ((uintptr_t)a & ~(EMU_PAGE - 1)), "map_userptr_handle_is_the_page_base", "");
	struct reg *rb = reg_mem((uintptr_t)b, 2 * EMU_PAGE, &created, &dedup);
	report(rb && created == 1, "register_second_buffer", "");
	/* A contained sub-range: non-SVM finds it in its own tree (no ioctl); SVM relies on the kernel's +3. */
	uint64_t sub_at = (uintptr_t)a + EMU_PAGE + 3 * 8, sub_size = EMU_PAGE;
	struct reg *rs = reg_mem(sub_at, sub_size, &created, &dedup);
	if (svm) report(rs && created == 3 && rs->handle == ra->handle, "sub_range_kernel_plus_3_same_bo", "");
	else report(rs == ra && dedup && ra->refs == 2, "sub_range_own_dedup_no_ioctl", "");
	/* MAP_MEM_TO_GPU: alternate_vagpu, in-page offset kept. */
	uint8_t req[MAX_REQ] = { 0 };
	put64(req, 16, (uintptr_t)a + 100); put64(req, 24, 3 * EMU_PAGE);
	const uint8_t *r = memory(req, M_MAP_MEM_TO_GPU, 0, 0);
	report(ret_of(r) == 0 && get64(r, 8) == (uintptr_t)a + 100, "map_mem_to_gpu_alternate_vagpu", "");
	/* Deregister b: non-SVM closes its BO (GEM_CLOSE); the host's registration goes with the resource. */
	uint32_t bres = rb ? rb->res : 0;
	if (rb) dereg(rb);
	if (!svm) report(bres && host_userptr(bres) == 0, "deregister_gem_close_drops_the_host_registration", "");
	/* A third buffer, then the application munmaps it: the kernel auto-deletes the BO, the host forgets it. */
	struct reg *rc = reg_mem((uintptr_t)c, 3 * EMU_PAGE, &created, &dedup);
	report(rc && created == 1, "register_third_buffer", "");
	uint32_t ch = rc ? rc->handle : 0, cres = rc ? rc->res : 0;
	munmap(c, 3 * EMU_PAGE);
	struct virtgpu_emu_resource_info ri = { .bo_handle = ch };
	int irc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_INFO, &ri);
	report(irc == -ENOENT, "munmap_of_registered_memory_deletes_the_bo", emu_rc_name(irc));
	report(host_userptr(cres) == 0, "and_the_host_registration", "");
	if (rc) rc->refs = 0; /* non-SVM keeps a stale tree entry in the library; we drop ours */
	/* Deregister a (and its sub-range reference). */
	if (rs && rs != ra) rs->refs = 0;
	if (ra) { while (ra->refs > 1) dereg(ra); dereg(ra); }
	/* The application frees its buffers: SVM mode's BOs go by the kernel's auto-delete (or at close). */
	munmap(a, 4 * EMU_PAGE); munmap(b, 2 * EMU_PAGE);
	if (svm) report(ra && host_userptr(ra->res) == 0, "svm_munmap_auto_deletes_and_the_host_forgets", "");
}

/* ---- AllocMemory / FreeMemory ---- */

static void alloc_paths(void) {
	uint64_t size = 5 * EMU_PAGE, id = ++blob_counter;
	uint8_t req[MAX_REQ] = { 0 };
	put32(req, 16, 0); put32(req, 20, 0); put64(req, 24, size);
	if (gen == 312) put64(req, 40, EMU_PAGE);
	const uint8_t *r = memory(req, M_ALLOC, 0, id);
	uint64_t handle = ret_of(r) == 0 ? get64(r, 8) : 0;
	report(handle && in_vm(handle) && in_vm(handle + size - 1), "alloc_memory_handle_inside_the_vm_range", "");
	struct virtgpu_emu_create_blob cb = { .blob_mem = VIRTGPU_BLOB_MEM_HOST3D, .blob_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE, .size = size, .blob_id = id };
	int rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_CREATE_BLOB, &cb);
	struct virtgpu_emu_resource_info ri = { .bo_handle = cb.bo_handle };
	struct drm_virtgpu_map map = { .handle = cb.bo_handle };
	if (!rc) rc = emu_ioctl(fd, VIRTGPU_EMU_IOCTL_RESOURCE_INFO, &ri);
	if (!rc) rc = emu_ioctl(fd, DRM_IOCTL_VIRTGPU_MAP, &map);
	uint8_t *m = rc ? MAP_FAILED : mmap((void *)(uintptr_t)handle, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t)map.offset);
	report(m == (void *)(uintptr_t)handle, "alloc_blob_mapped_at_the_host_address", rc ? emu_rc_name(rc) : strerror(errno));
	if (m == MAP_FAILED) return;
	memset(m, 0x5a, size);
	m[size - 1] = 0xa5;
	report(m[0] == 0x5a && m[size - 1] == 0xa5, "alloc_memory_reads_and_writes", "");
	memset(req, 0, sizeof req);
	put64(req, 16, handle); put64(req, 24, size);
	r = memory(req, M_MAP_MEM_TO_GPU, 0, 0);
	report(ret_of(r) == 0 && get64(r, 8) == handle, "alloc_map_mem_to_gpu", "");
	memset(req, 0, sizeof req);
	r = memory(req, M_AVAIL_MEM, 0, 0);
	report(ret_of(r) == 0 && get64(r, 8) > 0, "avail_mem", "");
	/* FreeMemory: UNMAP_TO_GPU → munmap → PROT_NONE re-reservation → GEM_CLOSE. */
	memset(req, 0, sizeof req);
	put64(req, 16, handle);
	r = memory(req, M_UNMAP_TO_GPU, 0, 0);
	report(ret_of(r) == 0, "free_unmap_to_gpu", "");
	munmap(m, size);
	void *v = mmap(m, size, PROT_NONE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	report(v == m && emu_gem_close(fd, cb.bo_handle) == 0, "free_reserve_again_and_gem_close", "");
	memset(req, 0, sizeof req);
	r = memory(req, M_FREE, 0, 0);
	report(ret_of(r) == 0, "free_ccmd_answered", "");
}

static double now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Median of 5 rounds, each N ops of both kinds: one ccmd round trip vs one no-op ioctl, same run. */
static int bench(long n) {
	double ccmd_us[5], noop_us[5];
	uint8_t req[MAX_REQ] = { 0 };
	for (int round = 0; round < 5; round++) {
		double t0 = now_s();
		for (long i = 0; i < n; i++) if (ret_of(ccmd(req, CCMD_NOP, 16, 8)) != 0) return 1;
		double t1 = now_s();
		for (long i = 0; i < n; i++) { struct drm_version v = { 0 }; if (emu_ioctl(fd, DRM_IOCTL_VERSION, &v) < 0) return 1; }
		double t2 = now_s();
		ccmd_us[round] = (t1 - t0) * 1e6 / n; noop_us[round] = (t2 - t1) * 1e6 / n;
	}
	for (int i = 0; i < 5; i++) for (int j = i + 1; j < 5; j++) {
		if (ccmd_us[j] < ccmd_us[i]) { double x = ccmd_us[i]; ccmd_us[i] = ccmd_us[j]; ccmd_us[j] = x; }
		if (noop_us[j] < noop_us[i]) { double x = noop_us[i]; noop_us[i] = noop_us[j]; noop_us[j] = x; }
	}
	printf("{\"op\":\"ccmd_nop\",\"n\":%ld,\"us_per_op\":%.2f}\n", n, ccmd_us[2]);
	printf("{\"op\":\"noop_ioctl\",\"n\":%ld,\"us_per_op\":%.2f}\n", n, noop_us[2]);
	return 0;
}

int main(int argc, char **argv) {
	long bench_n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--svm")) svm = 1;
		else if (!strcmp(argv[i], "--gen") && i + 1 < argc) gen = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bench") && i + 1 < argc) bench_n = atol(argv[++i]);
		else { fprintf(stderr, "usage: %s [--svm] [--gen 80|312] [--bench N]\n", argv[0]); return 2; }
	}
	if (getenv("VHSAKMT_USE_SVM") && atoi(getenv("VHSAKMT_USE_SVM"))) svm = 1;
	if (gen != 80 && gen != 312) { fprintf(stderr, "--gen must be 80 or 312\n"); return 2; }
	printf("# hsakmt_umd: %s mode, %d-byte MEMORY requests\n", svm ? "SVM" : "non-SVM", gen);
	if (bench_n > 0) {
		int rc = open_kfd() == 0 ? bench(bench_n) : 1;
		if (fd >= 0) close(fd);
		return rc;
	}
	if (open_kfd() == 0) {
		uint8_t req[MAX_REQ] = { 0 };
		report(ret_of(ccmd(req, CCMD_NOP, 16, 8)) == 0, "nop", "");
		userptr_paths();
		alloc_paths();
		uint8_t bad[MAX_REQ] = { 0 };
		report(ret_of(ccmd(bad, 99, 16, 8)) != 0, "unknown_ccmd_gets_a_non_zero_ret", "");
		report(((struct shmem *)shm)->async_error == 1, "async_error_counts_it", "");
		munmap((void *)(uintptr_t)vm_start, vm_size);
		munmap(shm, SHMEM_SIZE);
		report(emu_gem_close(fd, shmem_handle) == 0, "close_gem_close_shmem", "");
	}
	if (fd >= 0) close(fd);
	return tap_done();
}
