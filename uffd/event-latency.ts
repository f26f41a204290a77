// Event read → serviced: the time from the reader thread's read() of a uffd event (its record's readNs, CLOCK_MONOTONIC)
// to the end of the device.service() that consumed it (the BO deleted or split). Module state, so one recorder per JS
// thread: a serving worker has its own. The watchers report what each drain returned; the caller that wakes the device
// brackets service() with begin() and done(). A bounded ring of the latest samples: no growth with uptime.
const RING = 4096;

export interface EventLatencyStats { n: number; medianUs: number; p99Us: number }

export class EventLatency {
  private readonly ring = new Float64Array(RING);
  private n = 0;
  /** readNs of the oldest event drained since begin(); 0n: none. */
  private oldest = 0n;

  begin(): void { this.oldest = 0n; }

  /** A watcher's drain returned events, the oldest read at readNs. */
  drained(readNs: bigint): void { if (this.oldest === 0n || readNs < this.oldest) this.oldest = readNs; }

  /** service() returned: µs since the oldest event it drained was read (NaN: it drained none). */
  done(): number {
    if (this.oldest === 0n) return NaN;
    const us = Number(process.hrtime.bigint() - this.oldest) / 1000;
    this.oldest = 0n;
    this.ring[this.n++ % RING] = us;
    return us;
  }

  /** Median and p99 of the latest samples (at most RING); zeros when none. */
  stats(): EventLatencyStats {
    const k = Math.min(this.n, RING);
    if (k === 0) return { n: 0, medianUs: 0, p99Us: 0 };
    const xs = this.ring.slice(0, k).sort();
    return { n: this.n, medianUs: xs[Math.floor((k - 1) / 2)]!, p99Us: xs[Math.min(k - 1, Math.ceil(k * 0.99) - 1)]! };
  }

  reset(): void { this.n = 0; this.oldest = 0n; }
}

/** This thread's recorder. */
export const eventLatency = new EventLatency();
