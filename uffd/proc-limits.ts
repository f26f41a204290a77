// A process's memory-lock limits as the kernel's can_do_mlock() and pinned_vm accounting see them:
// RLIMIT_MEMLOCK's soft limit from /proc/PID/limits and CAP_IPC_LOCK in CapEff of /proc/PID/status.
import * as fs from 'fs';
import type { MemlockLimits } from '../core/memory/client-memory';

const CAP_IPC_LOCK = 14n;

/** Parse `Max locked memory   <soft>   <hard>   bytes` (soft: a number or "unlimited"). */
export function parseMemlock(limits: string): number | null {
  const m = /^Max locked memory\s+(\S+)\s+\S+/m.exec(limits);
  if (!m) return null;
  if (m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/** Parse `CapEff:\t<hex>` and test bit CAP_IPC_LOCK. */
export function parseCapIpcLock(status: string): boolean | null {
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status);
  return m ? ((BigInt('0x' + m[1]) >> CAP_IPC_LOCK) & 1n) === 1n : null;
}

/** The limits of `pid` now; null when the process is gone or the files do not parse (treated as unlimited). */
export function readMemlockLimits(pid: number): MemlockLimits | null {
  try {
    const limitBytes = parseMemlock(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    const capIpcLock = parseCapIpcLock(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return limitBytes === null || capIpcLock === null ? null : { limitBytes, capIpcLock };
  } catch {
    return null;
  }
}
