// A client is a process (thread-group id, docs/semantics.md §5): one memory view and one watcher, shared by all its files.
import type { ClientEnv, ClientMemory, DrainCause, NotifierEvent, NotifierSource } from './memory/client-memory';
import type { DrmFile } from './drm/file';

/** A Set of files that counts its changes (the client's open-order list is rebuilt only after one). */
class FileSet extends Set<DrmFile> {
  version = 0;
  override add(f: DrmFile): this { if (!this.has(f)) this.version++; return super.add(f); }
  override delete(f: DrmFile): boolean { const had = super.delete(f); if (had) this.version++; return had; }
  override clear(): void { this.version++; super.clear(); }
}

export class Client {
  /** References: open files that used this client + live userptrs it created. */
  refs = 0;
  released = false;
  /** Open files this client used (each holds one of the refs): where its events and work go. */
  readonly files: Set<DrmFile> = new FileSet();
  private ordered: DrmFile[] = [];
  private orderedVersion = -1;
  /** Pages pinned by userptrs of revisions that account them (the kernel's mm->pinned_vm), released at unref. */
  pinnedVm = 0;
  constructor(readonly env: ClientEnv) {}
  /** The files in open order (deterministic host command order across files); sorted again only after a change. */
  filesInOpenOrder(): readonly DrmFile[] {
    const set = this.files as FileSet;
    if (this.orderedVersion !== set.version) {
      this.ordered = [...set].sort((a, b) => a.id - b.id);
      this.orderedVersion = set.version;
    }
    return this.ordered;
  }
  get pid(): number { return this.env.pid; }
  get memory(): ClientMemory { return this.env.memory; }
  get events(): NotifierSource { return this.env.events; }
  /** Events injected by a fault rule, applied at the next drain before the watcher's own. */
  private injected: NotifierEvent[] | null = null;
  inject(evs: readonly NotifierEvent[]): void { (this.injected ??= []).push(...evs); }
  /** The events to apply now: injected ones first, then what the watcher saw (NotifierSource.drain). */
  drainEvents(cause: DrainCause = 'sync'): readonly NotifierEvent[] {
    const evs = this.env.events.drain(cause);
    if (!this.injected) return evs;
    const all = [...this.injected, ...evs];
    this.injected = null;
    return all;
  }
}
