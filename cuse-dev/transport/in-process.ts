// In-process transport: the same core, called directly from JS/TS (no kernel, no session). For tools and
// core-level tests that want "an ioctl on the node" semantics: buf is in/out like the C argument.
import { createDevice, RecordingHost, type Device, type DeviceFile, type DeviceOptions, type IoctlResult } from '../../core';
import { Errno, isErr } from '../../core/errno';
import type { ClientProvider, UserCopy } from '../../core/memory/client-memory';
import { procClientProvider } from '../../uffd/proc-pid-mem';
import { createClientProvider } from '../../uffd';
import { FaultEngine, parseFaults } from '../fault/rules';

export interface InProcessOptions extends Partial<DeviceOptions> {
  /** Fault rules in the `--fault` grammar (cuse-dev/fault/rules.ts); a bad one throws FaultRuleError. */
  fault?: string[];
  /** Use this device (shared between several opens) instead of creating one. */
  device?: Device;
  /** Thread-group id the opener acts as (default: this process). */
  pid?: number;
}

export interface InProcessNode {
  readonly device: Device;
  readonly pid: number;
  /**
   * ioctl(2) semantics: returns the result (≥ 0) or -errno; the out bytes are copied back into `buf` (up to its
   * length), also on failure, as drm_ioctl does. `user` resolves embedded pointers (default: the client's memory).
   */
  ioctl(cmd: number, buf: Uint8Array, user?: UserCopy): number;
  /** Same call, unflattened: {result: number | Errno, out}. */
  call(cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlResult;
  close(): void;
}

/**
 * The default watcher for callers in this process: the uffd/ provider (our own userfaultfd, events read by a native
 * thread and serviced asynchronously), else pointer copies through /proc/PID/mem with no invalidation events.
 */
function defaultClients(service: (pid: number) => void): { clients: ClientProvider; shutdown?: () => void } {
  try {
    const p = createClientProvider({ watch: 'auto', onPending: service });
    return { clients: p, shutdown: () => p.shutdown() };
  } catch {
    return { clients: procClientProvider() };
  }
}

export function openDevice(opts: InProcessOptions = {}): InProcessNode {
  let device: Device;
  let shutdown: (() => void) | undefined;
  if (opts.device) device = opts.device;
  else {
    const d = opts.clients ? { clients: opts.clients } : defaultClients((pid) => device.service(pid));
    shutdown = d.shutdown;
    const faults = opts.fault?.length ? new FaultEngine(parseFaults(opts.fault), opts.trace, opts.log) : undefined;
    const host = opts.host ?? new RecordingHost();
    device = createDevice({ ...opts, clients: d.clients, ...(faults ? { faults, host: faults.wrapHost(host), trace: faults.observe(opts.trace) } : {}) });
  }
  const pid = opts.pid ?? process.pid;
  let file: DeviceFile | null = device.open(pid);
  const live = (): DeviceFile => { if (!file) throw new Error('in-process node is closed'); return file; };
  return {
    device, pid,
    call: (cmd, argIn, user) => live().ioctl(pid, cmd, argIn, user),
    ioctl(cmd, buf, user) {
      const r = live().ioctl(pid, cmd, buf, user);
      buf.set(r.out.subarray(0, Math.min(r.out.length, buf.length)));
      return isErr(r.result) ? -(r.result as Errno).errno : r.result;
    },
    close() { if (file) { file.close(); file = null; shutdown?.(); } },
  };
}
