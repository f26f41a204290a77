// A client is a process (thread-group id, docs/semantics.md §5): one memory view and one watcher, shared by all its files.
import type { ClientEnv, ClientMemory, NotifierSource } from './memory/client-memory';
import type { DrmFile } from './drm/file';

export class Client {
  /** References: open files that used this client + live userptrs it created. */
  refs = 0;
  released = false;
  /** Open files this client used (each holds one of the refs): where its events and work go. */
  readonly files = new Set<DrmFile>();
  /** Pages pinned by userptrs of revisions that account them (the kernel's mm->pinned_vm), released at unref. */
  pinnedVm = 0;
  constructor(readonly env: ClientEnv) {}
  get pid(): number { return this.env.pid; }
  get memory(): ClientMemory { return this.env.memory; }
  get events(): NotifierSource { return this.env.events; }
}
