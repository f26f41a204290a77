// Independent byte builders of the HSAKMT (capset 8) guest protocol, written from the protocol note's tables (plain
// offsets, little endian), never from core/host/hsakmt/abi.ts: tests compare the host's bytes against these.
import { W, R } from './bytes';

export const NOP = 1, QUERY_INFO = 2, EVENT = 3, MEMORY = 4;
export const OPEN_KFD = 1;
export const ALLOC = 0, MAP_TO_GPU_NODES = 1, FREE = 2, UNMAP_TO_GPU = 3, AVAIL_MEM = 4, MAP_MEM_TO_GPU = 5, REG_MEM_WITH_FLAG = 6, DEREG_MEM = 7, MAP_USERPTR = 8;
export type Gen = 80 | 312;

/** shmem header: seqno @0, rsp_mem_offset @4, async_error @8, global_faults @12. */
export function shmemHeader(b: Uint8Array): { seqno: number; rspMemOffset: number; asyncError: number; globalFaults: number } {
  const r = new R(b);
  return { seqno: r.u32(0), rspMemOffset: r.u32(4), asyncError: r.u32(8), globalFaults: r.u32(12) };
}

/** Request header {cmd @0, len @4, seqno @8, rsp_off @12} in a zeroed buffer of `len` bytes. */
export function header(cmd: number, len: number, seqno: number, rspOff: number, size = len): W {
  return new W(size).u32(0, cmd).u32(4, len).u32(8, seqno).u32(12, rspOff);
}

export const nop = (seqno: number, rspOff: number): Uint8Array => header(NOP, 16, seqno, rspOff).b;

/** QUERY_INFO: 128 bytes, drm_amdgpu_info @16 (32 B), type @48, cur_vm_start @56. */
export const queryInfo = (seqno: number, rspOff: number, type = OPEN_KFD, curVmStart = 0x5555_0000_0000): Uint8Array =>
  header(QUERY_INFO, 128, seqno, rspOff).u32(48, type).u64(56, curVmStart).b;

export interface MemFields {
  MemoryAddress?: number | bigint; MemorySizeInBytes?: number | bigint; MemFlags?: number; need_create_bo?: number;
  PreferredNode?: number; AllocFlags?: number; SizeInBytes?: number | bigint; Alignment?: number | bigint;
  MemMapFlags?: number; nodes?: number[];
}

/** The tail: blob_id @64 / type @72 / res_id @76 (80-byte) or @296 / @304 / @308 (312-byte). */
const TAIL: Record<Gen, { blobId: number; type: number; resId: number }> = { 80: { blobId: 64, type: 72, resId: 76 }, 312: { blobId: 296, type: 304, resId: 308 } };

/** A MEMORY request of generation `gen`; MAP_TO_GPU_NODES (80-byte) is ALIGN8(80 + 4n) long with node ids from @80. */
export function memory(gen: Gen, type: number, seqno: number, rspOff: number, f: MemFields = {}, resId = 0, blobId: number | bigint = 0, lenOverride?: number): Uint8Array {
  const n = f.nodes?.length ?? 0;
  const natural = type === MAP_TO_GPU_NODES && gen === 80 ? Math.ceil((80 + 4 * n) / 8) * 8 : gen;
  const len = lenOverride ?? natural;
  const w = header(MEMORY, len, seqno, rspOff, Math.max(len, natural));
  const t = TAIL[gen];
  w.u64(t.blobId, blobId).u32(t.type, type).u32(t.resId, resId);
  switch (type) {
    case ALLOC:
      w.u32(16, f.PreferredNode ?? 0).u32(20, f.AllocFlags ?? 0).u64(24, f.SizeInBytes ?? 0);
      if (gen === 312) w.u64(40, f.Alignment ?? 0);
      break;
    case MAP_TO_GPU_NODES:
      w.u64(16, f.MemoryAddress ?? 0).u64(24, f.MemorySizeInBytes ?? 0).u32(40, f.MemMapFlags ?? 0).u64(48, n);
      (f.nodes ?? []).forEach((id, i) => w.u32(80 + 4 * i, id));
      break;
    case UNMAP_TO_GPU: w.u64(16, f.MemoryAddress ?? 0); break;
    case MAP_MEM_TO_GPU: w.u64(16, f.MemoryAddress ?? 0).u64(24, f.MemorySizeInBytes ?? 0).u32(32, f.need_create_bo ?? 0); break;
    case REG_MEM_WITH_FLAG: w.u64(16, f.MemoryAddress ?? 0).u64(24, f.MemorySizeInBytes ?? 0).u32(32, f.MemFlags ?? 0); break;
    default: break;
  }
  return w.b.subarray(0, len);
}

/** Reply sizes the note gives: MEMORY 24 B (80-byte generation) / 320 B (312-byte), QUERY_INFO 424 B, a bare reply 8 B. */
export const MEMORY_RSP: Record<Gen, number> = { 80: 24, 312: 320 };
export const QUERY_INFO_RSP = 424;
export const BARE_RSP = 8;

/**
 * The reply slot as the host must leave it: `preset` bytes, len @0 as preset, ret @4, u64 @8, u32 @16 (what the host
 * has: `hostSize` bytes), the slot's other bytes as they were (`fill`).
 */
export function expectedReply(preset: number, hostSize: number, ret: number, v8 = 0n, v16 = 0, fill = 0xaa): Uint8Array {
  const host = new W(Math.max(hostSize, 24)).u32(0, preset).i32(4, ret).u64(8, v8).u32(16, v16).b;
  const out = new Uint8Array(preset).fill(fill);
  out.set(host.subarray(0, Math.min(preset, hostSize)));
  out.set(new W(4).u32(0, preset).b, 0); // len stays the preset
  return out;
}

/** Reply fields: ret @4, the u64 @8, the u32 @16. */
export function reply(b: Uint8Array): { len: number; ret: number; v8: bigint; v16: number } {
  const r = new R(b);
  return { len: r.u32(0), ret: r.i32(4), v8: b.length >= 16 ? r.u64(8) : 0n, v16: b.length >= 20 ? r.u32(16) : 0 };
}
