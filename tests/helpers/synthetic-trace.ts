// A synthetic trace of any size with the shape of a real one (docs/trace-format.md): clients creating userptr BOs,
// dedup hits, partial munmaps (split + UPDATE), madvise DONTNEED (EVICT then UNMAP), whole munmaps, GEM_CLOSE —
// for the report benchmark and the lifetime model's scale test. Deterministic (a seeded LCG).
import type { Trace } from '../../cuse-dev/trace/reader';
import type { TraceRecord } from '../../cuse-dev/trace/schema';
import { TRACE_FORMAT, TRACE_VERSION } from '../../cuse-dev/trace/schema';

const PAGE = 4096;
const BO_PAGES = 16;

export interface SyntheticCounts { bos: number; splits: number; evicts: number; dedups: number; deleted: number }

export function syntheticTrace(events: number, seed = 1): { trace: Trace; counts: SyntheticCounts } {
  let x = seed >>> 0;
  const rnd = (): number => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x / 2 ** 32; };
  const records: TraceRecord[] = [];
  let mono = 0;
  const push = (r: Record<string, unknown>): void => { mono += 1 + rnd() * 4; records.push({ seq: records.length + 1, ts: 1_800_000_000_000 + Math.floor(mono / 1000), mono: Math.round(mono * 1000) / 1000, ...r } as unknown as TraceRecord); };
  const clients = [{ pid: 1001, files: [1, 2] }, { pid: 1002, files: [3] }, { pid: 1003, files: [4] }, { pid: 1004, files: [5] }];
  interface Live { file: number; pid: number; handle: number; start: number; last: number }
  const live: Live[] = [];
  const nextHandle = new Map<number, number>();
  const counts: SyntheticCounts = { bos: 0, splits: 0, evicts: 0, dedups: 0, deleted: 0 };
  let slot = 0;
  const CREATE = 0xc0406442;
  const ioctl = (b: { file: number; pid: number }, name: string, cmd: number, inF: Record<string, unknown>, out: Record<string, unknown>, result: number | string): void =>
    push({ tid: b.pid, t: 'ioctl', file: b.file, pid: b.pid, cmd, name, in: inF, out, result, us: Math.round(rnd() * 900) / 1000 });
  const blob = (addr: number, size: number, handle: number, res: number): Record<string, unknown> => ({ blob_mem: 3, blob_flags: 8, bo_handle: handle, res_handle: res, size: `0x${size.toString(16)}`, cmd_size: 0, cmd: '0x0', blob_id: '0x1', userptr: `0x${addr.toString(16)}`, offset: '0x0' });
  const kill = (i: number, why: 'unmap' | 'close'): void => {
    const b = live[i]!;
    live.splice(i, 1);
    counts.deleted++;
    if (why === 'unmap') push({ tid: b.pid, t: 'work', file: b.file, op: 'UNMAP', handle: b.handle, resId: b.handle + 100, outcome: 'handle deleted', start: b.start, last: b.last });
    else ioctl(b, 'DRM_IOCTL_GEM_CLOSE', 0x40086409, { handle: b.handle }, { handle: b.handle }, 0);
  };
  for (const c of clients) for (const f of c.files) push({ tid: c.pid, t: 'file', op: 'open', file: f, pid: c.pid });
  while (records.length < events) {
    const a = rnd();
    if (live.length < 8 || a < 0.4) {
      const c = clients[Math.floor(rnd() * clients.length)]!;
      const file = c.files[Math.floor(rnd() * c.files.length)]!;
      const handle = (nextHandle.get(file) ?? 0) + 1;
      nextHandle.set(file, handle);
      const start = 0x7f0000000000 + (slot++ % 50_000) * BO_PAGES * PAGE * 2;
      const size = BO_PAGES * PAGE;
      push({ tid: c.pid, t: 'userptr', file, pid: c.pid, addr: start, size, rdonly: false, result: 0, handle });
      ioctl({ file, pid: c.pid }, 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB', CREATE, blob(start, size, 0, 0), blob(start, size, handle, handle + 100), 0);
      live.push({ file, pid: c.pid, handle, start, last: start + size - 1 });
      counts.bos++;
      continue;
    }
    const i = Math.floor(rnd() * live.length);
    const b = live[i]!;
    if (a < 0.55) {
      const addr = b.start + PAGE;
      push({ tid: b.pid, t: 'userptr', file: b.file, pid: b.pid, addr, size: 0x100, rdonly: false, result: 3, handle: b.handle });
      ioctl(b, 'DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB', CREATE, blob(addr, 0x100, 0, 0), blob(addr, 0x100, b.handle, b.handle + 100), 3);
      counts.dedups++;
    } else if (a < 0.7 && b.last - b.start + 1 >= 2 * PAGE) {
      const cut = b.last + 1 - Math.max(PAGE, Math.floor((b.last + 1 - b.start) / 4 / PAGE) * PAGE);
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'UNMAP', start: cut, end: b.last + 1, note: 'uffd UNMAP' });
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'UNMAP', start: cut, end: b.last + 1, file: b.file, handle: b.handle, action: `split to [0x${b.start.toString(16)}, 0x${(cut - 1).toString(16)}], queue UPDATE` });
      b.last = cut - 1;
      push({ tid: b.pid, t: 'work', file: b.file, op: 'UPDATE', handle: b.handle, resId: b.handle + 100, outcome: 're-registered', start: b.start, last: b.last });
      ioctl(b, 'DRM_IOCTL_VIRTGPU_GETPARAM', 0xc0106443, { param: '0x1', value: '0x0' }, { param: '0x1', value: '0x0' }, 0);
      counts.splits++;
    } else if (a < 0.8) {
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'CLEAR', start: b.start, end: b.last + 1, removed: true, note: 'uffd REMOVE, madvise DONTNEED' });
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'CLEAR', start: b.start, end: b.last + 1, removed: true, file: b.file, handle: b.handle, action: 'queue EVICT' });
      push({ tid: b.pid, t: 'work', file: b.file, op: 'EVICT', handle: b.handle, resId: b.handle + 100, outcome: 'changed: queue UNMAP', start: b.start, last: b.last });
      counts.evicts++;
      kill(i, 'unmap');
      ioctl(b, 'DRM_IOCTL_VIRTGPU_GETPARAM', 0xc0106443, { param: '0x1', value: '0x0' }, { param: '0x1', value: '0x0' }, 0);
    } else if (a < 0.9) {
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'UNMAP', start: b.start, end: b.last + 1, note: 'uffd UNMAP' });
      push({ tid: b.pid, t: 'notifier', pid: b.pid, event: 'UNMAP', start: b.start, end: b.last + 1, file: b.file, handle: b.handle, action: 'queue UNMAP' });
      kill(i, 'unmap');
      ioctl(b, 'DRM_IOCTL_VIRTGPU_GETPARAM', 0xc0106443, { param: '0x1', value: '0x0' }, { param: '0x1', value: '0x0' }, 0);
    } else {
      kill(i, 'close');
    }
  }
  return {
    trace: {
      header: { t: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, uapi: 'v1', mode: 'notifier', profile: 'hsakmt', posted: true, options: {}, started: new Date(0).toISOString() },
      records, complete: true,
    },
    counts,
  };
}
