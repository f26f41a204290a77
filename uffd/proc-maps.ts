// /proc/PID/maps → core Mapping[] (pure: text in, mappings out). Format (fs/proc/task_mmu.c show_map_vma):
//   "start-end perms offset major:minor inode   pathname", hex addresses, perms "rwxp"/"rwxs".
import type { Backing, Mapping } from '../core/memory/client-memory';

/** One maps line with what the core Mapping does not carry (for traces and doctor). */
export interface ProcMapping extends Mapping {
  offset: number;
  dev: string;
  inode: number;
  /** Pathname column ('' for anonymous; "[heap]", "/memfd:x (deleted)", ...). */
  path: string;
}

/**
 * Backing of a mapping from its pathname and sharing (what /proc shows; VM_IO/VM_PFNMAP themselves are only in smaps
 * VmFlags, so device nodes under /dev are classified special by path):
 * - '' (no path), [heap], [stack], [anon:name] private → anon; MAP_SHARED|MAP_ANONYMOUS shows as "/dev/zero (deleted)"
 *   or "[anon_shmem:name]" → shmem;
 * - "/memfd:name", "/SYSV<key>", files under /dev/shm (tmpfs) → shmem;
 * - [vvar] [vdso] [vsyscall] ..., other /dev/* nodes (DRM, /dev/mem: VM_IO|VM_PFNMAP) → special;
 * - any other path → file (regular-file mappings: cannot be registered with userfaultfd, not pinnable writable shared).
 */
export function backingOf(path: string, shared: boolean): Backing {
  if (path === '' || path === '[heap]' || path.startsWith('[stack') || path.startsWith('[anon:')) return shared ? 'shmem' : 'anon';
  if (path.startsWith('[anon_shmem:')) return 'shmem';
  if (path.startsWith('[')) return 'special'; // [vvar] [vvar_vclock] [vdso] [vsyscall] [uprobes]: no pinnable pages
  const p = path.endsWith(' (deleted)') ? path.slice(0, -' (deleted)'.length) : path;
  if (p === '/dev/zero') return shared ? 'shmem' : 'anon';
  if (p.startsWith('/memfd:') || p.startsWith('/SYSV') || p.startsWith('/dev/shm/')) return 'shmem';
  if (p.startsWith('/dev/')) return 'special';
  return 'file';
}

const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/;

export function parseMapsLine(line: string): ProcMapping | null {
  const m = LINE.exec(line);
  if (!m) return null;
  const shared = m[6] === 's';
  const path = m[10];
  return {
    start: parseInt(m[1], 16), end: parseInt(m[2], 16),
    read: m[3] === 'r', write: m[4] === 'w', exec: m[5] === 'x', shared,
    backing: backingOf(path, shared),
    offset: parseInt(m[7], 16), dev: m[8], inode: Number(m[9]), path,
  };
}

/**
 * Mappings overlapping [start, end) (all of them when omitted), in address order (maps is sorted). Lines outside the
 * window are skipped on their start/end columns alone, so a window query over a large maps file stays cheap.
 */
export function parseMaps(text: string, start = 0, end = Infinity): ProcMapping[] {
  const out: ProcMapping[] = [];
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const dash = text.indexOf('-', pos);
    if (dash > pos && dash < nl) {
      const sp = text.indexOf(' ', dash);
      const s = parseInt(text.slice(pos, dash), 16);
      const e = parseInt(text.slice(dash + 1, sp), 16);
      if (s >= end) break;
      if (e > start) {
        const pm = parseMapsLine(text.slice(pos, nl));
        if (pm) out.push(pm);
      }
    }
    pos = nl + 1;
  }
  return out;
}
