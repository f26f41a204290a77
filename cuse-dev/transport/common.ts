// What every served transport hands back to the CLI and tests.
import { modeOf, uapiByName, withMode, DEFAULT_UAPI, type Mode } from '../../core';
import type { Summary } from './serve-worker';
import type { NodePerms } from './node-perms';
import type { HsakmtFaults } from './serve-worker';

export type TransportName = 'cuse' | 'fuse' | 'preload';

export interface ServeOptions {
  /** The serving thread's entry script (ServeWorker): the composition root's, which builds the device it serves. */
  workerEntry: string;
  /** The preload transport's serving thread entry (an event loop, cli/preload-worker-main.ts). */
  preloadEntry?: string;
  /** --fence-delay-ms: the host completes each submission this long after taking it (preload: fence fds readable then). */
  fenceDelayMs?: number;
  /** The HSAKMT host's fault injection (--hsakmt-fail, --hsakmt-fence-delay-ms). */
  hsakmt?: HsakmtFaults;
  /** The preload transport: parent folder of its node channel's socket (default: the channel's). */
  channelBase?: string;
  /** Device path to present. CUSE: must be under /dev (default /dev/dri/renderD<minor>). FUSE: bind target (implies bind). */
  path?: string;
  /** Render minor N (renderD<N>); default: first free from 128. */
  minor?: number;
  /** Kernel uAPI revision (core/virtgpu/uapi.ts; default v1). */
  uapi?: string;
  /** `pin` turns the revision's dedup and notifier off; default: the revision's own mode. */
  mode?: Mode;
  profile?: string;
  watch?: 'auto' | 'uffd' | 'proc' | 'none';
  trace?: string;
  /** `--fault` rules (cuse-dev/fault/rules.ts), parsed in the serving thread. */
  faults?: string[];
  /** Permission bits of the node (default: 0660 with a non-root group, else 0666; node-perms.ts). */
  modeBits?: number;
  /** Owner uid of the node (default root). */
  owner?: number;
  /** Group gid of the node (default the `render` group where one exists, else root). */
  group?: number;
  /** FUSE: also bind-mount the served file onto `path` (default /dev/dri/renderD<N>). */
  bind?: boolean;
  /** FUSE: where to mount (default /run/virtgpu-emu/<pid>). */
  mountDir?: string;
  /** CUSE: ask for unrestricted ioctls (default true: embedded pointers via RETRY). */
  unrestricted?: boolean;
  /** ptrace-inject a userfaultfd into clients that handed none over (default true; --no-inject). */
  inject?: boolean;
  /** uids whose processes may be injected into besides the server's own euid (--inject-uid). */
  injectUids?: number[];
  /** Uffds handed over by preloaded clients, published by the main thread (uffd/acquire.ts HandoffMailbox). */
  handoff?: SharedArrayBuffer;
  log?: (msg: string) => void;
}

export interface RunningServer {
  readonly transport: TransportName;
  /** The node clients open. */
  readonly path: string;
  readonly watcher: string;
  readonly uapi: string;
  readonly mode: Mode;
  /** Why fallbacks were taken (auto transport, auto watcher), and folders that keep users from the node. */
  readonly notes: string[];
  /** The node's owner, group and mode as applied. */
  readonly perms: NodePerms;
  snapshot(): Promise<{ counts: unknown; snapshot: unknown; stats: Record<string, number>; openFiles: number }>;
  /** Stop serving, release the node (unmount / close /dev/cuse), end the worker. Idempotent. */
  stop(): Promise<Summary>;
  /** After stop(): true if the serving thread is still blocked (the process must then be killed, not exited). */
  stuck(): boolean;
  /** Environment a client needs to hand its userfaultfd over (LD_PRELOAD + socket), when the watcher takes one. */
  clientEnv?: Record<string, string>;
}

export const RENDER_MINOR_BASE = 128;
export const RENDER_MINOR_MAX = 255;
/** DRM's char major (include/uapi/drm/drm.h DRM_MAJOR). */
export const DRM_MAJOR = 226;

/** The uAPI revision and the mode a server's device will have (throws on an unknown name or a mode it cannot have). */
export function deviceAxes(o: Pick<ServeOptions, 'uapi' | 'mode'>): { uapi: string; mode: Mode } {
  const r = withMode(uapiByName(o.uapi ?? DEFAULT_UAPI), o.mode);
  return { uapi: r.name, mode: modeOf(r) };
}

export function readyLine(s: RunningServer): string {
  return `virtgpu-emu: serving ${s.path} (transport=${s.transport}, watcher=${s.watcher}, uapi=${s.uapi}, mode=${s.mode})`;
}

export function summaryLine(s: Summary): string {
  return `virtgpu-emu: stopped (${s.reason}): clients=${s.clients} ioctls=${s.ioctls} userptrs created=${s.userptrsCreated} ` +
    `split=${s.userptrsSplit} evicted=${s.userptrsEvicted} unmapped=${s.userptrsUnmapped}` + (s.openAtStop ? ` files-open-at-stop=${s.openAtStop}` : '') +
    (s.inject?.started || s.inject?.declined ? ` inject: started=${s.inject.started} completed=${s.inject.completed} abandoned=${s.inject.abandoned} tracee-died=${s.inject.traceeDied} failed=${s.inject.failed} refused=${s.inject.refused} declined=${s.inject.declined}` : '') +
    (s.uffdEvents?.n ? ` uffd event read→serviced: n=${s.uffdEvents.n} median=${s.uffdEvents.medianUs.toFixed(1)}µs p99=${s.uffdEvents.p99Us.toFixed(1)}µs` : '');
}
