// Where fault injection reaches core (the rules and their counting live with the callers: cuse-dev/fault/): one
// question per ioctl, asked before its entry drains the client's events.
import type { Errno } from './errno';
import type { NotifierEvent } from './memory/client-memory';

export interface IoctlSite { file: number; pid: number; cmd: number; name: string }

export interface FaultAction {
  /** Queued for the calling client ahead of what its watcher saw: the entry applies them as real memory events. */
  events?: NotifierEvent[];
  /** The ioctl fails with this errno after its entry, its handler not run (as a failing allocation inside it would). */
  fail?: Errno;
}

export interface FaultHooks {
  ioctl(at: IoctlSite): FaultAction | undefined;
}
