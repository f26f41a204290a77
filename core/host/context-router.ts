// A host per context type: every command goes to the recording host (the ordered log and the trace); commands of a
// context whose capset has its own host (capset 8 → HsakmtHost), and of the resources created in or attached to
// such a context, go to that host too. A routed submission's fence is that host's to signal: the recording host's
// completion of it is ignored (so a reply is written before the fence signals, and a delayed fence stays delayed).
import type { Host, HostClient, HostCommand } from './host';
import type { RecordingHost } from './recording-host';
import type { BlobMemory } from '../memory/blob-memory';

export class ContextRouter implements Host {
  /** The host of each context routed to a typed host, by context id. */
  private readonly ctxHost = new Map<number, Host>();
  /** The typed host of each resource created in / attached to a routed context, until RESOURCE_UNREF. */
  private readonly resHost = new Map<number, Host>();
  /** Fence ids of routed submissions whose recording-host completion is still to come (then dropped). */
  private readonly routedFences = new Set<number>();

  constructor(readonly record: RecordingHost, private readonly byCapset: ReadonlyMap<number, Host>) {}

  attach(fenceDone: (id: number) => void): void {
    this.record.attach((id) => { if (!this.routedFences.delete(id)) fenceDone(id); });
    for (const h of new Set(this.byCapset.values())) h.attach?.(fenceDone);
  }

  attachContext(ctxId: number, client: HostClient): void { this.ctxHost.get(ctxId)?.attachContext?.(ctxId, client); }
  attachMemory(resId: number, memory: BlobMemory): void {
    this.record.attachMemory(resId, memory);
    this.resHost.get(resId)?.attachMemory?.(resId, memory);
  }
  retainedBytes(): number { return this.record.retainedBytes(); }

  submit(c: HostCommand): void {
    const h = this.route(c);
    if (h && c.cmd === 'SUBMIT_3D' && c.fenceId !== undefined) this.routedFences.add(c.fenceId);
    this.record.submit(c);
    h?.submit(c);
    if (c.cmd === 'RESOURCE_UNREF') this.resHost.delete(c.resId);
    else if (c.cmd === 'CTX_DESTROY') this.ctxHost.delete(c.ctxId);
  }

  /** Host objects of every typed host, by capset. */
  objects(): unknown {
    const o: Record<string, unknown> = {};
    for (const [cap, h] of this.byCapset) if (h.objects) o[`capset${cap}`] = h.objects();
    return o;
  }
  counts(): Record<string, number> {
    const n: Record<string, number> = { routedContexts: this.ctxHost.size, routedResources: this.resHost.size };
    for (const h of new Set(this.byCapset.values())) for (const [k, v] of Object.entries(h.counts?.() ?? {})) n[k] = (n[k] ?? 0) + v;
    return n;
  }

  private route(c: HostCommand): Host | undefined {
    switch (c.cmd) {
      case 'CTX_CREATE': {
        const h = this.byCapset.get(c.contextInit);
        if (h) this.ctxHost.set(c.ctxId, h);
        return h;
      }
      case 'CTX_DESTROY': case 'SUBMIT_3D': case 'TRANSFER_TO_HOST_3D': case 'TRANSFER_FROM_HOST_3D': return this.ctxHost.get(c.ctxId);
      case 'RESOURCE_CREATE_BLOB': case 'RESOURCE_CREATE_3D': case 'CTX_ATTACH_RESOURCE': {
        const h = this.ctxHost.get(c.ctxId);
        if (h) this.resHost.set(c.resId, h);
        return h ?? this.resHost.get(c.resId);
      }
      case 'CTX_DETACH_RESOURCE': return this.ctxHost.get(c.ctxId) ?? this.resHost.get(c.resId);
      case 'RESOURCE_UNREF': case 'RESOURCE_MAP_BLOB': case 'RESOURCE_UNMAP_BLOB': return this.resHost.get(c.resId);
    }
  }
}
