// Transport choice: CUSE when /dev/cuse opens (a real char device), else FUSE (a regular file under a mount),
// else the preload transport (dynamically linked clients only), else an explanation. `doctor` prints the same probes, so the reasons never diverge.
import * as fs from 'fs';
import * as path from 'path';
import { startCuse } from './cuse';
import { startFuse } from './fuse';
import { startPreload } from './preload';
import { findPreload } from '../../uffd/acquire';
import type { RunningServer, ServeOptions, TransportName } from './common';

export interface Probe { name: string; ok: boolean; reason: string }

function openProbe(dev: string, what: string): Probe {
  try {
    fs.closeSync(fs.openSync(dev, fs.constants.O_RDWR));
    return { name: what, ok: true, reason: `${dev} opens` };
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    const why = c === 'ENOENT' ? `${dev} missing` + (what === 'cuse' ? ' (kernel without CONFIG_CUSE, or `modprobe cuse` not done)' : ' (kernel without CONFIG_FUSE_FS?)')
      : c === 'EACCES' || c === 'EPERM' ? `${dev}: permission denied (run as root)` : `${dev}: ${c}`;
    return { name: what, ok: false, reason: why };
  }
}

function inPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
}

export function probeCuse(): Probe {
  const p = openProbe('/dev/cuse', 'cuse');
  return p.ok ? { ...p, reason: '/dev/cuse opens: real char device, unrestricted ioctls (no mmap, no fd passing)' } : p;
}

export function probeFuse(): Probe {
  const p = openProbe('/dev/fuse', 'fuse');
  if (!p.ok) return p;
  if (!inPath('mount')) return { name: 'fuse', ok: false, reason: 'mount(8) not found in PATH' };
  if (process.getuid?.() !== 0) return { name: 'fuse', ok: false, reason: 'mounting with fd=3,allow_other needs root' };
  return { name: 'fuse', ok: true, reason: '/dev/fuse + mount(8): regular file (S_IFREG), restricted ioctls via process memory' };
}

export function probePreload(): Probe {
  if (!findPreload()) return { name: 'preload', ok: false, reason: 'virtgpu-emu-preload.so not built (npm install)' };
  return { name: 'preload', ok: true, reason: 'virtgpu-emu-preload.so + a unix socket: no root, /dev/fuse or /dev/cuse; serves dynamically linked clients started with LD_PRELOAD and VIRTGPU_EMU_SOCK (`run` sets both)' };
}

export function probeInProcess(): Probe {
  return { name: 'in-process', ok: true, reason: 'always: JS/TS callers only (openDevice())' };
}

export function probeTransports(): Probe[] { return [probeCuse(), probeFuse(), probePreload(), probeInProcess()]; }

export type TransportChoice = 'auto' | TransportName;

/** Start the chosen transport; auto takes CUSE, then FUSE, and says why in `notes`. */
export async function startTransport(choice: TransportChoice, o: ServeOptions): Promise<RunningServer> {
  if (choice === 'cuse') return startCuse(o);
  if (choice === 'fuse') return startFuse(o);
  if (choice === 'preload') return startPreload(o);
  const cuse = probeCuse();
  if (cuse.ok) return startCuse(o);
  const fuse = probeFuse();
  if (fuse.ok) {
    const s = await startFuse(o);
    s.notes.unshift(`cuse unavailable: ${cuse.reason}`);
    return s;
  }
  const preload = probePreload();
  if (preload.ok) {
    const s = await startPreload(o);
    s.notes.unshift(`cuse unavailable: ${cuse.reason}; fuse unavailable: ${fuse.reason}: serving dynamically linked clients through the preload library`);
    return s;
  }
  throw new Error(`no transport: cuse: ${cuse.reason}; fuse: ${fuse.reason}; preload: ${preload.reason}`);
}
