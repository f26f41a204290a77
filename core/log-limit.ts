// Logging that cannot flood, shared by core and the transports' session: a line per kind (a key) or per errno class
// of a file, everything after that counted; a global token bucket over every line; bounded state; and summaries of
// what was suppressed when a file closes and at stop. Pure: the sink and the clock are given.

export interface LogLimitOptions {
  /** Where lines go (stderr, a trace). */
  sink: (msg: string) => void;
  /** Lines per second the bucket refills (default 10). */
  rate?: number;
  /** Lines that may go out at once after a quiet period (default 100). */
  burst?: number;
  /** Distinct keys remembered by once() (default 1024); later new keys are counted by kind only. */
  maxKeys?: number;
  /** Errno classes tracked per file (default 32); further classes count as "other". */
  maxClasses?: number;
  /** Milliseconds, monotonic (default performance.now). */
  now?: () => number;
}

export const LOG_RATE = 10;
export const LOG_BURST = 100;
const MAX_KEYS = 1024;
const MAX_KINDS = 64;
/** Keys are cut to this length (some carry an error's text): the key set's memory stays bounded. */
const MAX_KEY_CHARS = 256;
const MAX_CLASSES = 32;
const OTHER = 'other';
/** Classes listed in one summary line, by count; the rest are added up as "other". */
const SUMMARY_CLASSES = 8;

interface FileLog { pid: number; what: string; counts: Map<string, number>; suppressed: number }

export interface LogLimitStats {
  /** Lines handed to the sink. */
  emitted: number;
  /** Lines not written: repeats of a key or class, and lines the bucket refused. */
  suppressed: number;
  /** Of those, lines the bucket refused. */
  rateLimited: number;
}

/** n with thousands separators ("999,000"), locale-independent. */
const fmt = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** "EINVAL 600,000, ENOTTY 399,000" from counts, largest first, at most SUMMARY_CLASSES named. */
function classList(counts: Map<string, number>): string {
  const all = [...counts].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const named = all.slice(0, SUMMARY_CLASSES);
  const rest = all.slice(SUMMARY_CLASSES).reduce((s, [, n]) => s + n, 0);
  return [...named.map(([k, n]) => `${k} ${fmt(n)}`), ...(rest ? [`${OTHER} ${fmt(rest)}`] : [])].join(', ');
}

const bump = (m: Map<string, number>, k: string, n = 1): void => { m.set(k, (m.get(k) ?? 0) + n); };

export class LogLimiter {
  readonly stats: LogLimitStats = { emitted: 0, suppressed: 0, rateLimited: 0 };
  private readonly sink: (msg: string) => void;
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly maxClasses: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;
  /** Lines the bucket refused since the last line that went out (told on that next line). */
  private refusedSince = 0;
  /** once(): key → repeats after the first line. Never cleared: a key is logged once for the limiter's life. */
  private readonly keys = new Map<string, number>();
  /** once() beyond maxKeys: kind (the key up to its first ':') → lines. */
  private readonly overflow = new Map<string, number>();
  private readonly files = new Map<number, FileLog>();
  /** File summaries the bucket refused: their counts are told at stop. */
  private readonly lostSummaries = new Map<string, number>();
  private lostSummaryFiles = 0;
  private stopped = false;

  constructor(opts: LogLimitOptions) {
    this.sink = opts.sink;
    this.rate = opts.rate ?? LOG_RATE;
    this.burst = opts.burst ?? LOG_BURST;
    this.maxKeys = opts.maxKeys ?? MAX_KEYS;
    this.maxClasses = opts.maxClasses ?? MAX_CLASSES;
    this.now = opts.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** A line through the global bucket only (messages that are already rare). False when refused. */
  line(msg: string): boolean {
    if (!this.take()) { this.refused(); return false; }
    this.emit(msg);
    return true;
  }

  /** The first line of each key goes out (bucket permitting); later ones are counted and summarized at stop. */
  once(key: string, msg: string): void {
    if (key.length > MAX_KEY_CHARS) key = key.slice(0, MAX_KEY_CHARS);
    const seen = this.keys.get(key);
    if (seen !== undefined) { this.keys.set(key, seen + 1); this.stats.suppressed++; return; }
    if (this.keys.size >= this.maxKeys) {
      const kind = key.split(':', 1)[0]!;
      bump(this.overflow, this.overflow.has(kind) || this.overflow.size < MAX_KINDS ? kind : OTHER);
      this.stats.suppressed++;
      return;
    }
    this.keys.set(key, 0);
    this.line(msg);
  }

  /**
   * An error of file `file` (opened by `pid`) of class `cls` (an errno name): the first of each class on that file goes
   * out, later ones are counted and told in one line when the file closes. `what` names the errors ("ioctl errors").
   */
  fileError(file: number, pid: number, cls: string, msg: string, what = 'ioctl errors'): void {
    let f = this.files.get(file);
    if (!f) { f = { pid, what, counts: new Map(), suppressed: 0 }; this.files.set(file, f); }
    const n = f.counts.get(cls);
    if (n !== undefined) { f.counts.set(cls, n + 1); f.suppressed++; this.stats.suppressed++; return; }
    if (f.counts.size >= this.maxClasses) { bump(f.counts, OTHER); f.suppressed++; this.stats.suppressed++; return; }
    f.counts.set(cls, 0);
    this.line(msg);
  }

  /** The file is gone: one summary line of what was suppressed on it, and its state is dropped. */
  closeFile(file: number): void {
    const f = this.files.get(file);
    if (!f) return;
    this.files.delete(file);
    if (f.suppressed === 0) return;
    if (!this.line(`file ${file} pid ${f.pid}: ${fmt(f.suppressed)} further ${f.what} suppressed: ${classList(f.counts)}`)) {
      this.lostSummaryFiles++;
      for (const [k, n] of f.counts) if (n) bump(this.lostSummaries, this.lostSummaries.has(k) || this.lostSummaries.size < this.maxClasses ? k : OTHER, n);
    }
  }

  /**
   * Stop: a summary line for every file still tracked, then what the bucket and once() kept back. These lines bypass
   * the bucket (a bounded number, once). Idempotent; lines after stop still go through the bucket.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const file of [...this.files.keys()]) {
      const f = this.files.get(file)!;
      this.files.delete(file);
      if (f.suppressed) this.emit(`file ${file} pid ${f.pid}: ${fmt(f.suppressed)} further ${f.what} suppressed: ${classList(f.counts)}`);
    }
    if (this.lostSummaryFiles) this.emit(`log: summaries of ${fmt(this.lostSummaryFiles)} closed files held back by the rate limit: ${classList(this.lostSummaries)} further errors`);
    const repeats = new Map<string, number>();
    for (const [k, n] of this.keys) if (n) bump(repeats, k.split(':', 1)[0]!, n);
    for (const [k, n] of this.overflow) bump(repeats, k, n);
    if (repeats.size) this.emit(`log: repeated messages suppressed: ${classList(repeats)}`);
    const held = this.refusedSince;
    this.refusedSince = 0;
    if (held) this.emit(`log: ${fmt(held)} lines held back by the rate limit (${this.rate}/s, burst ${this.burst})`);
  }

  /** Files with error state (bounded by the open files: closeFile drops each). */
  trackedFiles(): number { return this.files.size; }

  private take(): boolean {
    const t = this.now();
    if (t > this.last) { this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1000); this.last = t; }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private refused(): void { this.refusedSince++; this.stats.suppressed++; this.stats.rateLimited++; }

  private emit(msg: string): void {
    if (this.refusedSince) { msg += ` [${fmt(this.refusedSince)} earlier lines held back by the log rate limit]`; this.refusedSince = 0; }
    this.stats.emitted++;
    this.sink(msg);
  }
}
