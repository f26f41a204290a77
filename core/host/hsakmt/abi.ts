// The HSAKMT (capset 8) guest protocol as data: the shmem header, ccmd request/reply layouts of both MEMORY request
// generations (80-byte and 312-byte), the command and type numbers, the HSAKMT status codes a reply's `ret` carries.
// Names follow the guest library's (vhsakmt_ccmd_*); offsets come only from these tables.
import { bytes, i32, pad, struct, u32, u64, type Struct } from '../../abi/layout';

/** ccmd numbers (`cmd` of the request header). */
export const VHSAKMT_CCMD_NOP = 1;
export const VHSAKMT_CCMD_QUERY_INFO = 2;
export const VHSAKMT_CCMD_EVENT = 3;
export const VHSAKMT_CCMD_MEMORY = 4;
export const VHSAKMT_CCMD_QUEUE = 5;
export const VHSAKMT_CCMD_GL_INTER = 6;
export const CCMD_NAMES: Readonly<Record<number, string>> = { 1: 'NOP', 2: 'QUERY_INFO', 3: 'EVENT', 4: 'MEMORY', 5: 'QUEUE', 6: 'GL_INTER' };

/** QUERY_INFO types. */
export const VHSAKMT_CCMD_QUERY_OPEN_KFD = 1;

/** MEMORY types (`type` in the request's tail). */
export const MEMORY_ALLOC = 0;
export const MEMORY_MAP_TO_GPU_NODES = 1;
export const MEMORY_FREE = 2;
export const MEMORY_UNMAP_TO_GPU = 3;
export const MEMORY_AVAIL_MEM = 4;
export const MEMORY_MAP_MEM_TO_GPU = 5;
export const MEMORY_REG_MEM_WITH_FLAG = 6;
export const MEMORY_DEREG_MEM = 7;
export const MEMORY_MAP_USERPTR = 8;

/** HSAKMT_STATUS values a reply's `ret` carries (0 = success). */
export const HSAKMT_STATUS_SUCCESS = 0;
export const HSAKMT_STATUS_ERROR = 1;
export const HSAKMT_STATUS_INVALID_PARAMETER = 3;
export const HSAKMT_STATUS_INVALID_HANDLE = 4;
export const HSAKMT_STATUS_NO_MEMORY = 6;
export const HSAKMT_STATUS_NOT_IMPLEMENTED = 8;
export const HSAKMT_STATUS_NOT_SUPPORTED = 9;

/** The shmem blob's header; the response area starts at `rsp_mem_offset`. */
export const vhsakmt_shmem = struct('vhsakmt_shmem', { seqno: u32, rsp_mem_offset: u32, async_error: u32, global_faults: u32 });
/** What the host writes to rsp_mem_offset before the guest can map the shmem. */
export const RSP_MEM_OFFSET = vhsakmt_shmem.size;

/** Every request starts with it; `len` includes it. */
export const vhsakmt_ccmd_req = struct('vhsakmt_ccmd_req', { cmd: u32, len: u32, seqno: u32, rsp_off: u32 });
/** Every reply starts with it: `len` is the guest's preset (never written by the host), `ret` the status. */
export const vhsakmt_ccmd_rsp = struct('vhsakmt_ccmd_rsp', { len: u32, ret: i32 });
/** Replies are reserved 8-byte aligned in the response area. */
export const RSP_ALIGN = 8;

export const vhsakmt_ccmd_query_info_req = struct('vhsakmt_ccmd_query_info_req', {
  hdr: vhsakmt_ccmd_req, info: bytes(32), type: u32, pad0: pad(4), cur_vm_start: u64, pad1: pad(64),
});
export const vhsakmt_ccmd_query_info_rsp = struct('vhsakmt_ccmd_query_info_rsp', { hdr: vhsakmt_ccmd_rsp, vm_start: u64, vm_size: u64, pad0: pad(400) });

/** A MEMORY request's generation: its fixed length. */
export type Generation = 80 | 312;
export const GENERATIONS: readonly Generation[] = [80, 312];

/** The MEMORY request of each generation: header, the union of the per-type bodies (at UNION_AT), then the tail. */
const memoryReq = (n: Generation) => struct(`vhsakmt_ccmd_memory_req_${n}`, { hdr: vhsakmt_ccmd_req, body: bytes(n === 80 ? 48 : 280), blob_id: u64, type: u32, res_id: u32 });
export const vhsakmt_ccmd_memory_req: Readonly<Record<Generation, ReturnType<typeof memoryReq>>> = { 80: memoryReq(80), 312: memoryReq(312) };
/** Where the per-type bodies sit (right after the header). */
export const UNION_AT = vhsakmt_ccmd_req.size;
/** Reply sizes the host writes for MEMORY, by generation. */
export const MEMORY_RSP_SIZE: Readonly<Record<Generation, number>> = { 80: 24, 312: 320 };

// Per-type bodies, decoded at UNION_AT.
export const alloc_body_80 = struct('alloc_body_80', { PreferredNode: u32, MemFlags: u32, SizeInBytes: u64 });
export const alloc_body_312 = struct('alloc_body_312', { PreferredNode: u32, MemFlags: u32, SizeInBytes: u64, pad0: pad(8), Alignment: u64 });
export const map_to_gpu_nodes_body = struct('map_to_gpu_nodes_body', { MemoryAddress: u64, MemorySizeInBytes: u64, pad0: pad(8), MemMapFlags: u32, pad1: pad(4), NumberOfNodes: u64 });
/** MAP_TO_GPU_NODES (80-byte generation): u32 node ids from this offset; len = ALIGN8(NODES_AT + 4n). */
export const NODES_AT = 80;
/** Node ids a MAP_TO_GPU_NODES may name **[decision]** (the request must stay small; a GPU has few nodes). */
export const MAX_NODES = 64;
export const unmap_to_gpu_body = struct('unmap_to_gpu_body', { MemoryAddress: u64 });
export const map_mem_to_gpu_body = struct('map_mem_to_gpu_body', { MemoryAddress: u64, MemorySizeInBytes: u64, need_create_bo: u32 });
export const reg_mem_with_flag_body = struct('reg_mem_with_flag_body', { MemoryAddress: u64, MemorySizeInBytes: u64, MemFlags: u32 });
export const empty_body = struct('empty_body', {});

// MEMORY replies (the payload at 8, padded to MEMORY_RSP_SIZE of the generation).
export const rsp_ret = struct('vhsakmt_ccmd_memory_rsp', { hdr: vhsakmt_ccmd_rsp });
export const rsp_alloc = struct('rsp_alloc', { hdr: vhsakmt_ccmd_rsp, memory_handle: u64 });
export const rsp_vagpu = struct('rsp_vagpu', { hdr: vhsakmt_ccmd_rsp, alternate_vagpu: u64 });
export const rsp_avail = struct('rsp_avail', { hdr: vhsakmt_ccmd_rsp, available_bytes: u64 });
export const rsp_userptr = struct('rsp_userptr', { hdr: vhsakmt_ccmd_rsp, userptr_handle: u64, npfns: u32 });

/** One MEMORY type: its name, body per generation (null: not known for that generation → non-zero ret), reply. */
export interface MemoryType { type: number; name: string; body: Readonly<Record<Generation, Struct<any> | null>>; rsp: Struct<any> }
export const MEMORY_TYPES: readonly MemoryType[] = [
  { type: MEMORY_ALLOC, name: 'ALLOC', body: { 80: alloc_body_80, 312: alloc_body_312 }, rsp: rsp_alloc },
  // Where the 312-byte generation puts the node ids is not known: answered a non-zero ret rather than guessed.
  { type: MEMORY_MAP_TO_GPU_NODES, name: 'MAP_TO_GPU_NODES', body: { 80: map_to_gpu_nodes_body, 312: null }, rsp: rsp_vagpu },
  { type: MEMORY_FREE, name: 'FREE', body: { 80: empty_body, 312: empty_body }, rsp: rsp_ret },
  { type: MEMORY_UNMAP_TO_GPU, name: 'UNMAP_TO_GPU', body: { 80: unmap_to_gpu_body, 312: unmap_to_gpu_body }, rsp: rsp_ret },
  { type: MEMORY_AVAIL_MEM, name: 'AVAIL_MEM', body: { 80: empty_body, 312: empty_body }, rsp: rsp_avail },
  { type: MEMORY_MAP_MEM_TO_GPU, name: 'MAP_MEM_TO_GPU', body: { 80: map_mem_to_gpu_body, 312: map_mem_to_gpu_body }, rsp: rsp_vagpu },
  { type: MEMORY_REG_MEM_WITH_FLAG, name: 'REG_MEM_WITH_FLAG', body: { 80: reg_mem_with_flag_body, 312: reg_mem_with_flag_body }, rsp: rsp_ret },
  { type: MEMORY_DEREG_MEM, name: 'DEREG_MEM', body: { 80: empty_body, 312: empty_body }, rsp: rsp_ret },
  { type: MEMORY_MAP_USERPTR, name: 'MAP_USERPTR', body: { 80: empty_body, 312: empty_body }, rsp: rsp_userptr },
];
export const MEMORY_TYPE_BY_NUM: ReadonlyMap<number, MemoryType> = new Map(MEMORY_TYPES.map((m) => [m.type, m]));

/** The ccmd names the host answers (trace names; what fault injection takes). */
export const CCMD_FAULT_NAMES: readonly string[] = ['NOP', 'QUERY_INFO/OPEN_KFD', ...MEMORY_TYPES.map((m) => `MEMORY/${m.name}`)];

/** Reply sizes of the other ccmds. */
export const NOP_RSP_SIZE = vhsakmt_ccmd_rsp.size;
export const QUERY_INFO_RSP_SIZE = vhsakmt_ccmd_query_info_rsp.size;
