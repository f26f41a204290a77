// In-process transport: the same core, called directly from JS/TS (no kernel, no session). For tools and
// core-level tests that want "an ioctl on the node" semantics: buf is in/out like the C argument. With the native
// addon it also passes fds as the preload transport does, within this process: fence fds (FENCE_FD_OUT gives this
// process a real eventfd, FENCE_FD_IN takes one of its fds) and the memfd of a mappable BO (map()).
import { createDevice, RecordingHost, type Device, type DeviceFile, type DeviceOptions, type IoctlResult, type MapTarget } from '../../core';
import { EINVAL, Errno, isErr } from '../../core/errno';
import type { ClientProvider, UserCopy } from '../../core/memory/client-memory';
import { procClientProvider } from '../../uffd/proc-pid-mem';
import { createClientProvider, loadUffd, type UffdBinding } from '../../uffd';
import { memfdBlobMemory } from '../../uffd/blob-memfd';
import { FdItems, FenceFds } from '../../uffd/fence-fd';
import { FaultEngine, parseFaults } from '../fault/rules';

export interface InProcessOptions extends Partial<DeviceOptions> {
  /** Fault rules in the `--fault` grammar (cuse-dev/fault/rules.ts); a bad one throws FaultRuleError. */
  fault?: string[];
  /** Use this device (shared between several opens) instead of creating one. */
  device?: Device;
  /** Thread-group id the opener acts as (default: this process). */
  pid?: number;
  /** The addon for fd passing and memfd blob memory (default: loaded; without it fence flags are EOPNOTSUPP). */
  binding?: UffdBinding | null;
}

export interface InProcessNode {
  readonly device: Device;
  readonly pid: number;
  /** Fence fds made and waited on through this node (server side; back to 0 once every fence completed). */
  readonly fences: FenceFds | null;
  /**
   * ioctl(2) semantics: returns the result (≥ 0) or -errno; the out bytes are copied back into `buf` (up to its
   * length), also on failure, as drm_ioctl does. `user` resolves embedded pointers (default: the client's memory).
   */
  ioctl(cmd: number, buf: Uint8Array, user?: UserCopy): number;
  /** Same call, unflattened: {result: number | Errno, out}. */
  call(cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlResult;
  /** mmap(node, offset) of `length` bytes: the BO's memory (its memfd where the device has memfd blob memory) or the errno. */
  map(offset: bigint, length: number): MapTarget | Errno;
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

function defaultBinding(): UffdBinding | null {
  try { return loadUffd(); } catch { return null; }
}

export function openDevice(opts: InProcessOptions = {}): InProcessNode {
  const binding = opts.binding === undefined ? defaultBinding() : opts.binding;
  let device: Device;
  let shutdown: (() => void) | undefined;
  if (opts.device) device = opts.device;
  else {
    const d = opts.clients ? { clients: opts.clients } : defaultClients((pid) => device.service(pid));
    shutdown = d.shutdown;
    const faults = opts.fault?.length ? new FaultEngine(parseFaults(opts.fault), opts.trace, opts.log) : undefined;
    const host = opts.host ?? new RecordingHost();
    const blobMemory = opts.blobMemory ?? (binding ? memfdBlobMemory(binding) : undefined);
    device = createDevice({ ...opts, clients: d.clients, blobMemory, ...(faults ? { faults, host: faults.wrapHost(host), trace: faults.observe(opts.trace) } : {}) });
  }
  const pid = opts.pid ?? process.pid;
  const fences = binding ? new FenceFds(binding) : null;
  let file: DeviceFile | null = device.open(pid);
  const live = (): DeviceFile => { if (!file) throw new Error('in-process node is closed'); return file; };
  const call = (cmd: number, argIn: Uint8Array, user?: UserCopy): IoctlResult => {
    const f = live();
    if (!fences || !binding) return f.ioctl(pid, cmd, argIn, user);
    // The caller is this process: its fd n is dup'd for the server, an installed fence fd dup'd for the caller.
    const items = new FdItems(fences, f, (n) => { try { return binding.dupFd(n); } catch { return EINVAL; } });
    const r = f.ioctl(pid, cmd, argIn, user, items);
    items.finish(!isErr(r.result), (offset, given, kept) => {
      if (r.out.length < offset + 4) { if (!kept) binding.close(given); return; }
      // The server keeps a file's signalled eventfd: the caller gets an fd of its own.
      let fd = given;
      if (kept) { try { fd = binding.dupFd(given); } catch { return; } }
      new DataView(r.out.buffer, r.out.byteOffset).setInt32(offset, fd, true);
    });
    return r;
  };
  return {
    device, pid, fences, call,
    ioctl(cmd, buf, user) {
      const r = call(cmd, buf, user);
      buf.set(r.out.subarray(0, Math.min(r.out.length, buf.length)));
      return isErr(r.result) ? -(r.result as Errno).errno : r.result;
    },
    map: (offset, length) => live().map(offset, length),
    close() { if (file) { file.close(); file = null; fences?.close(); shutdown?.(); } },
  };
}
