// The default host: no GPU, an ordered log of every command with its fields (the mock the brief allows).
import type { Host, HostCommand, HostCommandName } from './host';

export type Recorded = HostCommand & { seq: number };

export class RecordingHost implements Host {
  readonly log: Recorded[] = [];
  private seq = 0;
  private live = new Set<number>();
  /** Optional observer (the trace sink). */
  onCommand?: (c: Recorded) => void;
  /** Keep at least the last `limit` entries (at most 2×limit) (a long-running server must not grow without bound); 0 = unbounded. */
  constructor(private readonly limit = 0) {}

  submit(c: HostCommand): void {
    const r = { ...c, seq: ++this.seq } as Recorded;
    if (c.cmd === 'RESOURCE_CREATE_BLOB' || c.cmd === 'RESOURCE_CREATE_3D') this.live.add(c.resId);
    else if (c.cmd === 'RESOURCE_UNREF') this.live.delete(c.resId);
    this.log.push(r);
    // Trim in halves so a bounded log costs O(1) amortized per command.
    if (this.limit && this.log.length > 2 * this.limit) this.log.splice(0, this.log.length - this.limit);
    this.onCommand?.(r);
  }

  /** Host resources created and not yet unref'd. */
  liveResources(): number { return this.live.size; }
  ofType<N extends HostCommandName>(cmd: N): Extract<Recorded, { cmd: N }>[] {
    return this.log.filter((c) => c.cmd === cmd) as Extract<Recorded, { cmd: N }>[];
  }
  clear(): void { this.log.length = 0; }
}
