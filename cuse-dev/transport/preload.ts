// Preload transport: the node without a kernel device, for dynamically linked clients (docs/preload-protocol.md).
// The preload library (uffd/preload/node.c) serves the node's path inside the client; the serving thread
// (an event loop: cli/preload-worker-main.ts) answers on the node channel's socket. Needs neither root nor
// /dev/fuse nor /dev/cuse: any user can serve its own clients (rootless containers, CI).
import { findPreload } from '../../uffd/acquire';
import { ServeWorker, stopper } from './serve-worker';
import { deviceAxes, RENDER_MINOR_BASE, type RunningServer, type ServeOptions } from './common';
import { resolveNodePerms } from './node-perms';

/** The node channel's socket path, in the client's environment. */
export const ENV_NODE_SOCK = 'VIRTGPU_EMU_SOCK';
/** The path the preload library serves besides the default render node. */
export const ENV_DEVICE = 'VIRTGPU_EMU_DEVICE';

export async function startPreload(o: ServeOptions): Promise<RunningServer> {
  const log = o.log ?? (() => undefined);
  const { uapi, mode } = deviceAxes(o);
  const perms = resolveNodePerms(o);
  if (!o.preloadEntry) throw new Error('--transport preload: no serving thread entry was given');
  const lib = findPreload();
  if (!lib) throw new Error('--transport preload: the preload library is not built (npm install builds virtgpu-emu-preload.so)');
  const nodePath = o.path ?? `/dev/dri/renderD${o.minor ?? RENDER_MINOR_BASE}`;
  const worker = new ServeWorker(o.preloadEntry, {
    device: { uapi, mode: o.mode, profile: o.profile, watch: o.watch ?? 'auto', handoff: o.handoff, inject: false, injectUids: o.injectUids, fenceDelayMs: o.fenceDelayMs, faults: o.faults, hsakmt: o.hsakmt },
    trace: o.trace,
    // An unprivileged server keeps its socket its own user's (it cannot give it away); the mode still applies.
    channel: process.geteuid?.() === 0 ? { base: o.channelBase, mode: perms.mode, uid: perms.uid, gid: perms.gid } : { base: o.channelBase, mode: perms.mode },
  }, async () => undefined, { log });
  // Nothing to release but the thread: files still open at stop are released by it (their clients' next ioctl: ENODEV).
  const stop = stopper(worker, log, { release: async () => undefined });
  try {
    const st = await worker.started;
    if (!st.socket) throw new Error('the serving thread named no socket');
    return {
      transport: 'preload', path: nodePath, watcher: st.watcher, uapi, mode, notes: [...st.reasons], perms,
      snapshot: () => worker.counts(),
      stop,
      stuck: () => !worker.hasExited,
      clientEnv: { [ENV_NODE_SOCK]: st.socket, [ENV_DEVICE]: nodePath, LD_PRELOAD: process.env.LD_PRELOAD ? `${lib}:${process.env.LD_PRELOAD}` : lib },
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
