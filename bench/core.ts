// bench/core: userptr creates/s and dedup lookups/s with 1k and 100k live userptrs, heap bytes per live userptr.
// Baseline in the same run: a GETPARAM round trip through the same dispatcher (the cheapest ioctl).
import { createDevice, RecordingHost, type DeviceFile } from '../core';
import { SimMachine, PROT_RW, type SimProcess } from '../core/testing';
import { header, table, timePerCall } from './lib/measure';
import { applyServerV8Flags } from '../cli/v8-flags';
import { createClientProvider } from '../uffd/provider';
import { loadTestkit } from '../uffd/load';
import { createBlob, DRM_IOCTL_GEM_CLOSE as GEM_CLOSE, VIRTGPU_CONTEXT_INIT as CONTEXT_INIT, VIRTGPU_GETPARAM as GETPARAM, VIRTGPU_RESOURCE_CREATE_BLOB as CREATE_BLOB } from '../tests/helpers/bytes';

const PG = 4096;
/** CREATE_BLOB(HOST3D_GUEST, USE_USERPTR, blob_id 1) of [userptr, userptr + size). */
const blob = (userptr: number, size: number): Uint8Array => createBlob({ blobMem: 3, flags: 8, size, blobId: 1, userptr });

export function setup(live: number) {
  const m = new SimMachine();
  const p = m.process();
  // A bounded host log: 100k creates must not be measured as log growth.
  const dev = createDevice({ host: new RecordingHost(1000), clients: () => p.env() });
  const f = dev.open(p.pid);
  const params = p.mmap(PG);
  const pb = new Uint8Array(16); new DataView(pb.buffer).setBigUint64(0, 1n, true); new DataView(pb.buffer).setBigUint64(8, 8n, true);
  p.write(params, pb);
  const ci = new Uint8Array(16); const dv = new DataView(ci.buffer); dv.setUint32(0, 1, true); dv.setBigUint64(8, BigInt(params), true);
  if (f.ioctl(p.pid, CONTEXT_INIT, ci, p).result !== 0) throw new Error('context init');
  const region = p.mmap((live + 1000) * PG, PROT_RW);
  p.touch(region, (live + 1000) * PG);
  for (let i = 0; i < live; i++) if (f.ioctl(p.pid, CREATE_BLOB, blob(region + i * PG, PG), p).result !== 0) throw new Error('create');
  return { dev, f, p, region };
}

function run(live: number) {
  const { dev, f, p, region } = setup(live);
  const gp = new Uint8Array(16); new DataView(gp.buffer).setBigUint64(0, 1n, true); new DataView(gp.buffer).setBigUint64(8, BigInt(region), true);
  const base = timePerCall(`GETPARAM`, () => { f.ioctl(p.pid, GETPARAM, gp, p); });
  // Requests are built before timing: the table measures the dispatcher, not the test helper that writes the bytes.
  const lookups = Array.from({ length: live }, (_, i) => blob(region + i * PG + 8, 64));
  const creates = Array.from({ length: 1000 }, (_, i) => blob(region + (live + i) * PG, PG));
  let k = 0;
  const dedup = timePerCall(`dedup lookup (+3)`, () => { const r = f.ioctl(p.pid, CREATE_BLOB, lookups[k++ % live]!, p); if (r.result !== 3) throw new Error('expected +3'); });
  // create + GEM_CLOSE in the 1000 spare pages: the live count stays constant.
  let j = 0;
  const gc = new Uint8Array(8);
  const create = timePerCall(`create + GEM_CLOSE`, () => {
    const r = f.ioctl(p.pid, CREATE_BLOB, creates[j++ % 1000]!, p);
    // bo_handle (bytes 8-11) into GEM_CLOSE's handle, byte by byte: a DataView over r.out would make V8 materialize
    // the small reply's buffer (a malloc and a free per op, ~10% of a create+close), which is the harness's cost.
    const o = r.out; gc[0] = o[8]!; gc[1] = o[9]!; gc[2] = o[10]!; gc[3] = o[11]!;
    f.ioctl(p.pid, GEM_CLOSE, gc, p);
  }, { batch: 500 });
  f.close();
  if (dev.counts().handles !== 0) throw new Error('leak');
  return { base, dedup, create };
}

export function heapPerUserptr(n: number): number {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) return NaN;
  g(); g();
  const before = process.memoryUsage().heapUsed;
  const s = setup(n);
  g(); g();
  const after = process.memoryUsage().heapUsed;
  // exclude the simulated memory's own page table: measure it separately with the same pages touched but no userptrs
  const m = new SimMachine(); const p2 = m.process(); const r = p2.mmap((n + 1000) * PG); p2.touch(r, (n + 1000) * PG);
  g(); g();
  const sim = process.memoryUsage().heapUsed - after;
  void s;
  return (after - before - sim) / n;
}

/**
 * Heap per live 1-page userptr on real memory: this process is the client, watched by the default watcher (auto: its
 * userfaultfd, the /proc checker for protections), n userptrs over every other page of one mapping (each its own
 * registration and area).
 */
export function heapPerUserptrReal(n: number): number {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) return NaN;
  const u = loadTestkit();
  const C = u.constants;
  const len = 2 * n * PG;
  const region = u.mmap(0, len, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANONYMOUS | C.MAP_NORESERVE, -1, 0);
  u.madvise(region, len, C.MADV_POPULATE_WRITE);
  const provider = createClientProvider({ watch: 'auto', procIntervalMs: 0 });
  const dev = createDevice({ host: new RecordingHost(1000), clients: provider });
  const f = dev.open(process.pid);
  const params = Buffer.alloc(16); params.writeBigUInt64LE(1n, 0); params.writeBigUInt64LE(8n, 8);
  const ci = Buffer.alloc(16); ci.writeUInt32LE(1, 0); ci.writeBigUInt64LE(BigInt(u.bufferAddress(params)), 8);
  if (f.ioctl(process.pid, CONTEXT_INIT, ci).result !== 0) throw new Error('context init');
  const reqs = Array.from({ length: n }, (_, i) => blob(region + 2 * i * PG, PG));
  g(); g();
  const before = process.memoryUsage().heapUsed;
  for (const r of reqs) if (f.ioctl(process.pid, CREATE_BLOB, r).result !== 0) throw new Error('create');
  g(); g();
  const bytes = (process.memoryUsage().heapUsed - before) / n;
  f.close();
  provider.shutdown();
  u.munmap(region, len);
  return bytes;
}

export function main(): string {
  const out: string[] = [header('npm run bench -- core'), ''];
  for (const live of [1000, 100000]) {
    const r = run(live);
    out.push(table(`core, ${live} live userptrs (in-process dispatcher, simulated memory)`, [
      { name: 'GETPARAM (baseline)', value: r.base.median, unit: 'µs/op' },
      { name: 'dedup lookups', value: 1e6 / r.dedup.median, unit: '/s', note: `${r.dedup.median.toFixed(2)} µs/op = ${(r.dedup.median / r.base.median).toFixed(2)}× GETPARAM` },
      { name: 'userptr creates (+GEM_CLOSE)', value: 1e6 / r.create.median, unit: '/s', note: `${r.create.median.toFixed(2)} µs/op = ${(r.create.median / r.base.median).toFixed(2)}× GETPARAM` },
    ]), '');
  }
  const bytes = heapPerUserptr(20000);
  out.push(Number.isNaN(bytes) ? 'heap per userptr: run with node --expose-gc' : `heap per live 1-page userptr: ${Math.round(bytes)} bytes (20k userptrs, node --expose-gc)`);
  const real = heapPerUserptrReal(20000);
  if (!Number.isNaN(real)) out.push(`heap per live 1-page userptr, real memory, default watcher (auto: uffd + /proc protections), this process the client: ${Math.round(real)} bytes (20k userptrs)`);
  return out.join('\n');
}

if (require.main === module) { applyServerV8Flags(); console.log(main()); }
