// The mappings of one range of a process, asked of the kernel for that range only: PROCMAP_QUERY (kernel >= 6.11) on
// a kept fd of /proc/PID/maps, one ioctl per VMA of the range (~2 µs, whatever the number of VMAs the process has).
// Kernels without it: the whole maps text is read and parsed (proc-maps.ts), announced by nobody (the cost only).
import * as fs from 'fs';
import type { Mapping } from '../core/memory/client-memory';
import { backingOf, parseMaps } from './proc-maps';
import type { UffdBinding } from './native-types';

/** PROCMAP_QUERY's vma_flags bits (include/uapi/linux/fs.h PROCMAP_QUERY_VMA_*). */
const VMA_READ = 1, VMA_WRITE = 2, VMA_EXEC = 4, VMA_SHARED = 8;
/** A VMA name is a path at most (PATH_MAX) or a short bracketed name; the kernel refuses a smaller buffer (ENAMETOOLONG). */
const NAME_MAX_BYTES = 4096 + 64;

export class VmaQuery {
  /** fd of /proc/PID/maps (-1: not opened yet; null: no PROCMAP_QUERY on this kernel: whole-file reads). */
  private fd: number | null = -1;
  private readonly q = new Float64Array(4);
  private name: Uint8Array | null = null;
  /** The process is gone (PROCMAP_QUERY said ESRCH) or released: every query answers null. */
  gone = false;
  /** Kernel calls made (tests: a range query costs one per VMA; a fallback read counts as one); answers reused. */
  readonly counters = { queries: 0, fileReads: 0, reused: 0 };
  /**
   * The last range's answer, given again for the same range until forget(): one create asks about its range for the
   * pin, the populate, the uffd registration and the /proc baseline. Forgotten at every drain (ioctl entry, wake-up)
   * and timer pass, so an answer never outlives the ioctl that asked (a stale one would only be older: a change
   * since is then seen by the next check, never hidden).
   */
  private memo: { start: number; end: number; names: boolean; maps: Mapping[] } | null = null;

  constructor(readonly pid: number, private readonly u: UffdBinding) {}

  /** True when PROCMAP_QUERY answers here (known after the first query). */
  get perRange(): boolean { return this.fd !== null; }

  /**
   * Mappings overlapping [start, end), sorted, holes left out; null once the process is gone (an exited process's
   * maps are empty: never read that as "everything unmapped"). `names`: classify the backing (one more copy per VMA);
   * without it every mapping says 'anon' (enough for protection checks).
   */
  mappings(start: number, end: number, names = true): Mapping[] | null {
    if (this.gone) return null;
    const m = this.memo;
    if (m && m.start === start && m.end === end && (m.names || !names)) { this.counters.reused++; return m.maps; }
    const out = this.ask(start, end, names);
    this.memo = out ? { start, end, names, maps: out } : null;
    return out;
  }

  /** Forget the last answer (a new ioctl entry or timer pass: the process may have changed since). */
  forget(): void { this.memo = null; }

  private ask(start: number, end: number, names: boolean): Mapping[] | null {
    const fd = this.open();
    if (fd !== null) {
      try {
        const out: Mapping[] = [];
        const q = this.q;
        const buf = names ? (this.name ??= new Uint8Array(NAME_MAX_BYTES)) : undefined;
        for (let at = start; at < end;) {
          this.counters.queries++;
          if (!this.u.procmapQuery(fd, at, true, q, buf) || q[0] >= end) break;
          const f = q[2], shared = (f & VMA_SHARED) !== 0;
          const path = buf ? latin1(buf, q[3]) : '';
          out.push({ start: q[0], end: q[1], read: (f & VMA_READ) !== 0, write: (f & VMA_WRITE) !== 0, exec: (f & VMA_EXEC) !== 0, shared, backing: buf ? backingOf(path, shared) : 'anon' });
          at = q[1];
        }
        return out.length === 1 ? [out[0]!] : out; // exact length: kept as a baseline by the /proc checker
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'ESRCH') { this.gone = true; return null; }
        if (code !== 'ENOTTY' && code !== 'EINVAL') throw e;
        this.close();
        this.fd = null; // no PROCMAP_QUERY: whole-file reads from now on
      }
    }
    const text = this.mapsText();
    return text === '' ? null : parseMaps(text, start, end); // gone, or unreadable now (e.g. no fd left): not sticky

  }

  /**
   * [start, end) of the VMA holding addr into out (false: none, the process is gone, or no PROCMAP_QUERY here — this
   * one never falls back to reading the whole file).
   */
  at(addr: number, out: Float64Array): boolean {
    if (this.gone) return false;
    const fd = this.open();
    if (fd === null) return false;
    this.counters.queries++;
    try {
      if (!this.u.procmapQuery(fd, addr, false, this.q)) return false;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ESRCH') this.gone = true;
      else if (code === 'ENOTTY' || code === 'EINVAL') { this.close(); this.fd = null; }
      return false;
    }
    out[0] = this.q[0]; out[1] = this.q[1];
    return true;
  }

  /** The whole maps text ('' once the process is gone). */
  mapsText(): string {
    this.counters.fileReads++;
    try { return fs.readFileSync(`/proc/${this.pid}/maps`, 'latin1'); } catch { return ''; }
  }

  /** The kept fd, opened on first use; null: no PROCMAP_QUERY here, or it cannot be opened now (tried again next time). */
  private open(): number | null {
    if (this.fd === -1) {
      try { return this.fd = fs.openSync(`/proc/${this.pid}/maps`, 'r'); } catch { return null; }
    }
    return this.fd;
  }

  private close(): void {
    if (this.fd !== null && this.fd >= 0) { try { fs.closeSync(this.fd); } catch { /* closed */ } }
    this.fd = -1;
  }

  /** Close the kept fd; every later query answers null. */
  release(): void { this.close(); this.gone = true; this.memo = null; }
}

function latin1(b: Uint8Array, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[i]!);
  return s;
}
