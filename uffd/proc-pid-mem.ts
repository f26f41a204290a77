// The addon-less ClientMemory of --watch none, also the fallback when the native addon cannot load: pointer copies
// through /proc/PID/mem (pread/pwrite at the address) and no invalidation events. populate() fails and no mappings are
// reported, so nothing can be pinned and a userptr create fails with ENOMEM; process-memory.ts is the full one.
import * as fs from 'fs';
import { EFAULT, EIO, type Errno } from '../core/errno';
import type { ClientEnv, ClientMemory, ClientProvider, NotifierSource, UserCopy } from '../core/memory/client-memory';
import { readMemlockLimits } from './proc-limits';

/** copy_from_user/copy_to_user through /proc/PID/mem; an unmapped address (EIO/EFAULT from the kernel) → EFAULT. */
export class ProcPidMem implements UserCopy {
  private fd: number | null = null;
  constructor(readonly pid: number) {}

  private open(): number | Errno {
    if (this.fd !== null) return this.fd;
    try { this.fd = fs.openSync(`/proc/${this.pid}/mem`, 'r+'); return this.fd; } catch { return EFAULT; }
  }

  read(addr: number, len: number): Uint8Array | Errno {
    if (len === 0) return new Uint8Array(0);
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0) return EFAULT;
    const fd = this.open();
    if (typeof fd !== 'number') return fd;
    const buf = new Uint8Array(len);
    try {
      let done = 0;
      while (done < len) {
        const n = fs.readSync(fd, buf, done, len - done, addr + done);
        if (n <= 0) return EFAULT;
        done += n;
      }
      return buf;
    } catch { return EFAULT; }
  }

  write(addr: number, data: Uint8Array): Errno | undefined {
    if (data.length === 0) return undefined;
    if (!Number.isSafeInteger(addr) || addr < 0) return EFAULT;
    const fd = this.open();
    if (typeof fd !== 'number') return fd;
    try {
      let done = 0;
      while (done < data.length) {
        const n = fs.writeSync(fd, data, done, data.length - done, addr + done);
        if (n <= 0) return EFAULT;
        done += n;
      }
      return undefined;
    } catch { return EFAULT; }
  }

  close(): void {
    if (this.fd !== null) { try { fs.closeSync(this.fd); } catch { /* already gone */ } this.fd = null; }
  }
}

/** A NotifierSource that never reports anything (no watcher): userptrs live until closed. */
export function noopNotifier(): NotifierSource {
  const regs = new Set<number>();
  return {
    register: (id) => { regs.add(id); },
    unregister: (id) => { regs.delete(id); },
    drain: () => [],
    exact: () => false,
    registrations: () => regs.size,
  };
}

/** ClientMemory over /proc/PID/mem: pointer copies only; no mappings, so pinning (userptr create) gets ENOMEM. */
export function procClientMemory(pid: number): ClientMemory & { close(): void } {
  const m = new ProcPidMem(pid);
  return {
    pid,
    read: (a, l) => m.read(a, l),
    write: (a, d) => m.write(a, d),
    mappings: () => [],
    populate: () => EIO,
    frames: (_s, n) => new Float64Array(n),
    memlockLimits: () => readMemlockLimits(pid),
    close: () => m.close(),
  };
}

/** Provider for --watch none, the no-uffd fallback and the transports' own tests: /proc/PID/mem copies, no notifier. */
export function procClientProvider(): ClientProvider {
  return (pid: number): ClientEnv => {
    const memory = procClientMemory(pid);
    return { pid, memory, events: noopNotifier(), release: () => memory.close() };
  };
}
