// Getting a userfaultfd bound to the CLIENT's mm (a uffd watches the mm of the process that created it):
// - our own process (in-process clients, tests): create it;
// - handed over by the preload helper (uffd/preload/virtgpu-emu-preload.c) through UffdHandoff below;
// - ptrace injection (inject.ts), when enabled and nothing was handed over.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { loadUffd } from './load';
import type { UffdBinding } from './native-types';

export const ENV_UFFD_SOCK = 'VIRTGPU_EMU_UFFD_SOCK';
export const PRELOAD_FILE = 'virtgpu-emu-preload.so';
/** First token of the preload's one-line message: "VGEUFFD1 <pid> <fd>\n". */
export const HANDOFF_MAGIC = 'VGEUFFD1';
/** Longest accepted request line (a malformed peer cannot make us buffer more). */
const MAX_LINE = 128;

/** A uffd of our own process (O_CLOEXEC|O_NONBLOCK; the addon falls back to /dev/userfaultfd). */
export function createOwnUffd(u: UffdBinding = loadUffd()): number {
  const C = u.constants;
  try { return u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK); } catch { return u.userfaultfd(C.O_CLOEXEC | C.O_NONBLOCK | C.UFFD_USER_MODE_ONLY); }
}

/** Candidate paths of the preload library (built by `npm install` through binding.gyp into build/Release). */
export function preloadPaths(dir: string = __dirname): string[] {
  const roots = [path.resolve(dir, '..', '..'), path.resolve(dir, '..')];
  const out: string[] = [];
  for (const r of roots) for (const flavour of ['Release', 'Debug']) { const p = path.join(r, 'build', flavour, PRELOAD_FILE); if (!out.includes(p)) out.push(p); }
  return out;
}
export function findPreload(dir?: string): string | null {
  for (const p of preloadPaths(dir)) if (fs.existsSync(p)) return p;
  return null;
}

interface Handed { fd: number; pidfd: number; at: number }

/** Where a ClientProvider takes handed-over uffds from (ownership of the fd moves to the caller). */
export interface UffdSource { take(pid: number): number | null }

/**
 * A cross-thread mailbox of handed-over uffds: (pid, fd) pairs in a SharedArrayBuffer. The handshake must run on a
 * thread whose event loop is free (the CLI's main thread) while the provider lives in the serving worker, blocked in
 * read(2) between requests; fds are process-wide, so only the numbers cross. A slot is claimed by compare-exchange
 * on its pid, so the taker and the sweeper never both own an fd. Single writer: the thread that calls put().
 */
export class HandoffMailbox implements UffdSource {
  static readonly SLOTS = 256;
  readonly sab: SharedArrayBuffer;
  private readonly a: Int32Array;
  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(HandoffMailbox.SLOTS * 2 * Int32Array.BYTES_PER_ELEMENT);
    this.a = new Int32Array(this.sab);
  }
  /** Publish a uffd for pid (fd first, then the pid that makes the slot visible). False when full. */
  put(pid: number, fd: number): boolean {
    for (let i = 0; i < this.a.length; i += 2) {
      if (Atomics.load(this.a, i) !== 0) continue;
      Atomics.store(this.a, i + 1, fd);
      if (Atomics.compareExchange(this.a, i, 0, pid) === 0) return true;
    }
    return false;
  }
  take(pid: number): number | null {
    for (let i = 0; i < this.a.length; i += 2) {
      if (Atomics.load(this.a, i) !== pid) continue;
      const fd = Atomics.load(this.a, i + 1);
      if (Atomics.compareExchange(this.a, i, pid, 0) === pid) return fd;
    }
    return null;
  }
  /** Pids with an unclaimed uffd. */
  pids(): number[] {
    const r: number[] = [];
    for (let i = 0; i < this.a.length; i += 2) { const p = Atomics.load(this.a, i); if (p) r.push(p); }
    return r;
  }
}

export interface UffdHandoffOptions {
  /** Publish accepted uffds here (for a provider on another thread) instead of keeping them for take(). */
  mailbox?: HandoffMailbox;
  binding?: UffdBinding;
  /** Socket name: "@name" = abstract (default, nothing to clean up) or a filesystem path. */
  name?: string;
  log?: (msg: string) => void;
}

/**
 * The daemon's side of the preload handshake. A client process connects at load time and sends
 * "VGEUFFD1 <pid> <fd>\n"; we take the fd with pidfd_getfd (so Node needs no SCM_RIGHTS), check it is a
 * userfaultfd, keep it for that pid and answer "OK\n" ("ERR <code>\n" otherwise); then the client closes its copy.
 * Trust: any local process that can connect may announce itself; we only accept a userfaultfd fd of the pid it
 * names, which pidfd_getfd lets us take only with ptrace rights over that pid.
 * Uffds of processes that never become clients are harmless (no UFFDIO_API, nothing registered) and are closed when
 * their process exits (sweep at every take()/size) or at close().
 */
export class UffdHandoff {
  private readonly u: UffdBinding;
  private readonly handed = new Map<number, Handed>();
  private readonly waiters = new Map<number, Array<() => void>>();
  private readonly log: (msg: string) => void;
  private readonly mailbox: HandoffMailbox | undefined;
  private readonly mailboxPidfds = new Map<number, number>();
  private server: net.Server | null = null;
  readonly name: string;
  accepted = 0;
  refused = 0;

  private constructor(name: string, opts: UffdHandoffOptions) {
    this.u = opts.binding ?? loadUffd();
    this.name = name;
    this.log = opts.log ?? (() => undefined);
    this.mailbox = opts.mailbox;
  }

  static async listen(opts: UffdHandoffOptions = {}): Promise<UffdHandoff> {
    const name = opts.name ?? `@virtgpu-emu-uffd-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const h = new UffdHandoff(name, opts);
    const server = net.createServer((sock) => h.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(name.startsWith('@') ? `\0${name.slice(1)}` : name, () => { server.off('error', reject); resolve(); });
    });
    server.unref(); // the handoff alone does not keep the daemon alive
    h.server = server;
    return h;
  }

  /** Environment for a client: the socket name, and LD_PRELOAD with our library prepended (when built). */
  env(base: NodeJS.ProcessEnv = process.env, preload: string | null = findPreload()): Record<string, string> {
    const out: Record<string, string> = { [ENV_UFFD_SOCK]: this.name };
    if (preload) out.LD_PRELOAD = base.LD_PRELOAD ? `${preload}:${base.LD_PRELOAD}` : preload;
    return out;
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) { if (buf.length > MAX_LINE) sock.destroy(); return; }
      sock.end(this.accept(buf.slice(0, nl)) + '\n');
    });
  }

  /** One request line → reply line. */
  accept(line: string): string {
    const m = new RegExp(`^${HANDOFF_MAGIC} (\\d+) (\\d+)$`).exec(line.trim());
    if (!m) { this.refused++; return 'ERR EINVAL bad request'; }
    const pid = Number(m[1]), fd = Number(m[2]);
    let pidfd = -1, mine = -1;
    try {
      pidfd = this.u.pidfdOpen(pid);
      mine = this.u.pidfdGetfd(pidfd, fd);
      const what = fs.readlinkSync(`/proc/self/fd/${mine}`);
      if (!what.includes('userfaultfd')) throw Object.assign(new Error(`fd ${fd} of ${pid} is ${what}`), { code: 'EINVAL' });
    } catch (e) {
      if (mine >= 0) this.u.close(mine);
      if (pidfd >= 0) this.u.close(pidfd);
      this.refused++;
      const code = (e as { code?: string }).code ?? 'EIO';
      this.log(`uffd handoff from pid ${pid} fd ${fd} refused: ${code} (${e instanceof Error ? e.message : String(e)})`);
      return `ERR ${code}`;
    }
    this.drop(pid); // an exec'd process hands over again: the old uffd belongs to its old mm
    if (this.mailbox) {
      this.sweep();
      if (!this.mailbox.put(pid, mine)) { this.u.close(mine); this.u.close(pidfd); this.refused++; return 'ERR ENOSPC'; }
      this.mailboxPidfds.set(pid, pidfd);
      this.accepted++;
      return 'OK';
    }
    this.handed.set(pid, { fd: mine, pidfd, at: Date.now() });
    this.accepted++;
    for (const w of this.waiters.get(pid) ?? []) w();
    this.waiters.delete(pid);
    return 'OK';
  }

  /** The uffd handed over by `pid` (ownership moves to the caller), or null. */
  take(pid: number): number | null {
    this.sweep();
    const h = this.handed.get(pid);
    if (!h) return null;
    this.handed.delete(pid);
    this.u.close(h.pidfd);
    return h.fd;
  }

  /** Resolves when `pid` has handed over a uffd (true) or after `ms` (false). */
  wait(pid: number, ms: number): Promise<boolean> {
    if (this.handed.has(pid)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      const list = this.waiters.get(pid) ?? [];
      list.push(() => { clearTimeout(t); resolve(true); });
      this.waiters.set(pid, list);
    });
  }

  /** Uffds held for processes not yet taken. */
  get size(): number { this.sweep(); return this.handed.size; }

  private drop(pid: number): void {
    if (this.mailbox) {
      const fd = this.mailbox.take(pid);
      if (fd !== null) this.u.close(fd);
      const pidfd = this.mailboxPidfds.get(pid);
      if (pidfd !== undefined) { this.u.close(pidfd); this.mailboxPidfds.delete(pid); }
    }
    const h = this.handed.get(pid);
    if (!h) return;
    this.handed.delete(pid);
    this.u.close(h.fd);
    this.u.close(h.pidfd);
  }

  /** Close the uffds of processes that exited without becoming clients. */
  sweep(): void {
    for (const [pid, h] of [...this.handed]) if (this.u.pidfdExited(h.pidfd)) this.drop(pid);
    if (this.mailbox) {
      const waiting = new Set(this.mailbox.pids());
      for (const [pid, pidfd] of [...this.mailboxPidfds]) {
        // taken by the provider (its pidfd is no longer needed here), or its process exited before becoming a client
        if (!waiting.has(pid)) { this.u.close(pidfd); this.mailboxPidfds.delete(pid); }
        else if (this.u.pidfdExited(pidfd)) this.drop(pid);
      }
    }
  }

  close(): Promise<void> {
    for (const pid of [...this.handed.keys(), ...this.mailboxPidfds.keys()]) this.drop(pid);
    const s = this.server;
    this.server = null;
    return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()));
  }
}
