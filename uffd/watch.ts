// The watch policy for one real client process (ClientWatch); provider.ts builds one per client, probe.ts tells
// doctor which watchers work here.
//   auto (default): userfaultfd for the synchronous events (UNMAP, REMOVE, REMAP, FORK) + the /proc checker for what
//                   uffd cannot see (mapping protection; frames are not compared where uffd covers the range);
//   uffd:           userfaultfd only (no /proc pass where it covers; mprotect is then not reported — it never changes
//                   an outcome); ranges it cannot register still fall back to /proc;
//   proc:           the /proc checker only (approximate, docs/semantics.md §4).
// Every fallback is announced once with its reason.
import { USER_ADDR_END, type DrainCause, type NotifierEvent, type NotifierSource } from '../core/memory/client-memory';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';
import type { ProcessMemory } from './process-memory';
import { ProcWatcher } from './proc-watcher';
import type { UffdWatcher } from './uffd-watcher';
import { fdsLow } from './fd-budget';

export type WatchMode = 'uffd' | 'proc' | 'auto';
export const WATCH_MODES: readonly WatchMode[] = ['auto', 'uffd', 'proc'];

export function parseWatchMode(s: string): WatchMode {
  if ((WATCH_MODES as readonly string[]).includes(s)) return s as WatchMode;
  throw new Error(`unknown --watch ${JSON.stringify(s)}; valid: ${WATCH_MODES.join(', ')}`);
}

export interface ClientWatchOptions {
  mode: WatchMode;
  memory: ProcessMemory;
  /** null: no uffd for this client (then uffdReason says why). */
  uffd: UffdWatcher | null;
  uffdReason?: string;
  procIntervalMs?: number;
  onPending?: () => void;
  announce: (key: string, msg: string) => void;
  binding?: UffdBinding;
}

/** NotifierSource of one client process: uffd + /proc per the mode, exit via pidfd → RELEASE. */
export class ClientWatch implements NotifierSource {
  readonly pid: number;
  readonly mode: WatchMode;
  private readonly u: UffdBinding;
  private uffdW: UffdWatcher | null;
  readonly proc: ProcWatcher;
  /** Ranges moved from /proc to a late uffd (injection): their frames are compared once more, then no longer. */
  private readonly upgraded = new Set<number>();
  private readonly announce: (key: string, msg: string) => void;
  private pidfd = -1;
  private exitReported = false;
  released = false;

  constructor(o: ClientWatchOptions) {
    this.pid = o.memory.pid;
    this.mode = o.mode;
    this.u = o.binding ?? loadUffd();
    this.uffdW = o.uffd;
    this.announce = o.announce;
    this.proc = new ProcWatcher(o.memory, { intervalMs: o.procIntervalMs, onPending: o.onPending });
    // Near the fd limit no pidfd is kept (fd-budget.ts): the client's exit is then known from its files' RELEASE.
    if (this.pid !== process.pid && !fdsLow()) {
      try { this.pidfd = this.u.pidfdOpen(this.pid); } catch { /* already gone: drain reports RELEASE via /proc */ }
    }
    if (!this.uffd && o.mode !== 'proc') this.announce('no-uffd', `pid ${this.pid}: no userfaultfd (${o.uffdReason ?? 'unavailable'}); watched through /proc (approximate: frames compared at each ioctl) unless one is injected later`);
  }

  private exitCheckedAt = 0;

  get uffd(): UffdWatcher | null { return this.uffdW; }

  /**
   * A uffd obtained late (ptrace injection after the client's first ioctl): register every range watched by /proc
   * so far on it. Their frames are still compared at the next check (anything between their registration and now
   * is only visible there), after which the /proc checker keeps watching mappings only ('auto') or nothing ('uffd').
   */
  attachUffd(w: UffdWatcher): boolean {
    if (this.uffdW || this.released || this.mode === 'proc') { w.release(); return false; }
    this.uffdW = w;
    for (const id of [...this.proc.ids()]) {
      const r = this.proc.range(id)!;
      const res = w.tryRegister(id, r[0], r[1]);
      if (res.ok) this.upgraded.add(id); else this.announce(`register:${res.code}`, `pid ${this.pid}: ${res.reason}; the range falls back to the /proc checker`);
    }
    return true;
  }

  /** A known id: its range is replaced (the new one is watched before the old one is let go). */
  register(id: number, start: number, last: number): void {
    if (this.uffd) {
      const r = this.uffd.tryRegister(id, start, last);
      if (r.ok) {
        if (this.mode === 'auto') this.proc.register(id, start, last, false); else this.proc.unregister(id);
        return;
      }
      this.announce(`register:${r.code}`, `pid ${this.pid}: ${r.reason}; the range falls back to the /proc checker`);
    }
    this.proc.register(id, start, last, true);
  }

  unregister(id: number): void {
    this.uffd?.unregister(id);
    this.proc.unregister(id);
    this.upgraded.delete(id);
  }

  /**
   * The client reported a fork itself (the preload library's pthread_atfork handler): the event a uffd with
   * UFFD_FEATURE_EVENT_FORK reads (its copy-on-write protection of the parent), when this client's uffd has none
   * (an unprivileged server) or it has no uffd. Seen at the next drain.
   */
  forkReported(): void { if (!this.uffdW?.forkEvents) this.forkPending = true; }
  private forkPending = false;

  /**
   * uffd events first (they happened before anything /proc can show now), then the /proc diff, then exit. 'wake' (a
   * reader's or the timer's wake-up): the /proc checker's queued events only, no check (ioctl entries and its timer
   * check). 'entry': the client is making an ioctl, so it is alive: no exit check (a clock read and a poll(2) saved
   * on every ioctl); every other drain looks.
   */
  drain(cause: DrainCause = 'sync'): readonly NotifierEvent[] {
    const wake = cause === 'wake';
    if (this.released) return [];
    let a: readonly NotifierEvent[] = this.uffd ? this.uffd.drain() : [];
    if (this.forkPending) { this.forkPending = false; a = [...a, { event: 'PROTECTION_PAGE', start: 0, end: USER_ADDR_END, note: 'fork reported by the client' }]; }
    const b = this.proc.drain(!wake);
    if (this.upgraded.size && !wake) { // after their last frame comparison, which a wake-up does not make
      for (const id of this.upgraded) if (this.mode === 'auto') this.proc.setFramesToo(id, false); else this.proc.unregister(id);
      this.upgraded.clear();
    }
    const exit = cause !== 'entry' && this.exited();
    if (a.length === 0 && !exit) return b;
    const out = [...a, ...b];
    if (exit) out.push({ event: 'RELEASE', start: 0, end: USER_ADDR_END, note: 'client exited' });
    return out;
  }

  private exited(): boolean {
    if (this.exitReported || this.pidfd < 0) return false;
    // Exit only yields RELEASE (ignored by core): a poll(2) at most every EXIT_CHECK_MS.
    const now = Date.now();
    if (now - this.exitCheckedAt < EXIT_CHECK_MS) return false;
    this.exitCheckedAt = now;
    if (!this.u.pidfdExited(this.pidfd)) return false;
    this.exitReported = true;
    return true;
  }

  exact(start: number, last: number): boolean { return this.uffd ? this.uffd.exact(start, last) : false; }
  /**
   * Registered ranges, from the two watchers' own maps: in 'auto' (and 'proc') the /proc checker holds every range
   * (mappings only where a uffd covers it); in 'uffd' it holds the fallbacks, and the ranges just moved to a late
   * uffd until their last frame comparison.
   */
  registrations(): number {
    if (this.mode !== 'uffd') return this.proc.registrations();
    return (this.uffd?.registrations() ?? 0) + this.proc.registrations() - this.upgraded.size;
  }
  /** How a registered range is watched (tests, doctor). */
  watchedBy(id: number): 'uffd' | 'proc' | undefined { return this.uffd?.has(id) ? 'uffd' : this.proc.has(id) ? 'proc' : undefined; }
  get hasExited(): boolean { return this.exitReported || (this.pidfd >= 0 && this.u.pidfdExited(this.pidfd)); }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.uffd?.release();
    this.proc.release();
    this.upgraded.clear();
    if (this.pidfd >= 0) { this.u.close(this.pidfd); this.pidfd = -1; }
  }
}

/** How often drain() polls the client's pidfd for exit. */
const EXIT_CHECK_MS = 100;
