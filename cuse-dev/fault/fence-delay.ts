// `--fault fence:…`: fence completions on their way from the host to the device, some held back by a rule. A fence
// timeline signals in order (a dma_fence context: a later fence signalled means the earlier ones are), so a fence the
// host completed while an earlier one of its context and ring is delayed waits for it and follows it at once.
// Fences of other contexts or rings are not held: one client's delayed fence does not stall another's.

/** Where a fenced submission is: submitted (not completed by the host yet), delaying (completed, timer running), ready. */
type State = 'submitted' | 'delaying' | 'ready';
interface Pending { key: string; delayMs: number; state: State }

export class FenceDelays {
  /** Fence ids of each (context, ring) timeline not yet passed to the device, in submission order. */
  private readonly timelines = new Map<string, number[]>();
  private readonly pending = new Map<number, Pending>();
  private done: (id: number) => void = () => undefined;

  /** `schedule(ms, cb)`: run cb ms from now (a timer that does not keep a server alive). */
  constructor(private readonly schedule: (ms: number, cb: () => void) => void) {}

  /** The device's completion callback (Host.attach's argument). */
  bind(done: (id: number) => void): void { this.done = done; }

  /** A fenced submission goes to the host: `delayMs` > 0 holds its completion that long after the host reports it. */
  submitted(id: number, ctxId: number, ringIdx: number, delayMs: number): void {
    const key = `${ctxId}:${ringIdx}`;
    // Nothing delayed on this timeline and no delay asked: the completion passes straight through.
    if (delayMs === 0 && !this.timelines.has(key)) return;
    const q = this.timelines.get(key);
    if (q) q.push(id); else this.timelines.set(key, [id]);
    this.pending.set(id, { key, delayMs, state: 'submitted' });
  }

  /** The host completed fence `id`. A second report of the same fence is ignored, as the device ignores it. */
  completed(id: number): void {
    const p = this.pending.get(id);
    if (!p) { this.done(id); return; }
    if (p.state !== 'submitted') return;
    if (p.delayMs > 0) {
      p.state = 'delaying';
      this.schedule(p.delayMs, () => { p.state = 'ready'; this.flush(p.key); });
      return;
    }
    p.state = 'ready';
    this.flush(p.key);
  }

  /** Pass the ready fences at the head of the timeline to the device (re-entrant: done may submit again). */
  private flush(key: string): void {
    for (let q = this.timelines.get(key); q?.length && this.pending.get(q[0]!)!.state === 'ready'; q = this.timelines.get(key)) {
      const id = q.shift()!;
      this.pending.delete(id);
      if (!q.length) this.timelines.delete(key);
      this.done(id);
    }
  }
}
