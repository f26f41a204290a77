// A core Device whose clients are REAL processes (uffd/watch.ts provider), plus a child C client driven line by line
// (tests/c/uffd_client.c). Tests talk to core through ioctls + snapshot only.
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import type { TestFn } from 'ava';
import { createDevice, isErr, RecordingHost, type Device, type DeviceFile, type Errno } from '../../../core';
import * as B from '../../helpers/bytes';
import { UffdHandoff, findPreload } from '../../../uffd/acquire';
import { loadTestkit } from '../../../uffd/load';
import { createClientProvider, type ClientProviderOptions, type RealClientProvider } from '../../../uffd/provider';
import { reservation } from './reservation';

export const u = loadTestkit();
export const C = u.constants;
export const PG = C.PAGE_SIZE;
export const HSAKMT = 8;
export const USE_USERPTR = 8;
export const BLOB_HOST3D_GUEST = 3;

export interface RealHarnessOptions extends Omit<ClientProviderOptions, 'onPending'> {
  /** Call device.service(pid) from the watcher's wake-up (default true). */
  service?: boolean;
}

export class RealHarness {
  readonly host = new RecordingHost();
  readonly provider: RealClientProvider;
  readonly dev: Device;
  readonly logs: string[] = [];
  serviced = 0;
  /** Scratch memory per pid for pointer arguments (CONTEXT_INIT params, GETPARAM value). */
  private readonly scratch = new Map<number, number>();
  private readonly keep: Buffer[] = [];

  constructor(opts: RealHarnessOptions = {}) {
    this.provider = createClientProvider({
      ...opts,
      log: (m) => this.logs.push(m),
      onPending: opts.service === false ? undefined : (pid) => { this.serviced++; this.dev.service(pid); },
    });
    this.dev = createDevice({ host: this.host, clients: this.provider, log: (m) => this.logs.push(m) });
  }

  /** Scratch address in the client: ours (a kept Buffer) or the child's page given by the test. */
  setScratch(pid: number, addr: number): void { this.scratch.set(pid, addr); }
  private scratchOf(pid: number): number {
    let a = this.scratch.get(pid);
    if (a === undefined) {
      if (pid !== process.pid) throw new Error(`no scratch page for pid ${pid}`);
      const b = Buffer.alloc(PG);
      this.keep.push(b);
      a = u.bufferAddress(b);
      this.scratch.set(pid, a);
    }
    return a;
  }

  ioctl(f: DeviceFile, pid: number, cmd: number, arg: Uint8Array): { ret: number | string; out: Uint8Array } {
    const r = f.ioctl(pid, cmd, arg);
    return { ret: isErr(r.result) ? (r.result as Errno).code : r.result, out: r.out };
  }

  /** open + CONTEXT_INIT(HSAKMT). */
  open(pid: number): DeviceFile {
    const f = this.dev.open(pid);
    const at = this.scratchOf(pid);
    const mem = this.dev.clients.get(pid)!.memory;
    mem.write(at, B.ctxParams([[1, HSAKMT]]));
    const r = this.ioctl(f, pid, B.VIRTGPU_CONTEXT_INIT, B.contextInit(1, at));
    if (r.ret !== 0) throw new Error(`CONTEXT_INIT -> ${r.ret}`);
    return f;
  }

  create(f: DeviceFile, pid: number, userptr: number, size: number, flags = USE_USERPTR): { ret: number | string; handle: number; resId: number; offset: bigint } {
    const arg = B.createBlob({ blobMem: BLOB_HOST3D_GUEST, flags, size, userptr, blobId: 0x1234, offset: 0 });
    const r = this.ioctl(f, pid, B.VIRTGPU_RESOURCE_CREATE_BLOB, arg);
    return { ret: r.ret, ...B.blobOut(r.out) };
  }

  info(f: DeviceFile, pid: number, h: number): number | string { return this.ioctl(f, pid, B.VIRTGPU_RESOURCE_INFO, B.resourceInfo(h)).ret; }
  alive(f: DeviceFile, pid: number, h: number): boolean { return this.info(f, pid, h) === 0; }
  gemClose(f: DeviceFile, pid: number, h: number): number | string { return this.ioctl(f, pid, B.DRM_IOCTL_GEM_CLOSE, B.gemClose(h)).ret; }
  /** A harmless ioctl: its entry drains the client's events and runs the worker. */
  poke(f: DeviceFile, pid: number): void { this.ioctl(f, pid, B.VIRTGPU_GETPARAM, B.getparam(1, this.scratchOf(pid))); }

  /** Snapshot view of a handle (without an ioctl: no drain). */
  handle(f: DeviceFile, h: number) { return this.dev.snapshot().files.find((x) => x.id === f.id)?.handles.find((x) => x.handle === h); }
  hostOf(resId: number): string[] { return this.host.log.filter((c) => 'resId' in c && c.resId === resId).map((c) => c.cmd); }
  notifierEvents(): number { return this.dev.stats.notifierEvents; }
}

// ---- the C client ----

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
export const CLIENT_BIN = path.join(ROOT, 'tests', 'c', 'bin', 'uffd_client');

/** Build tests/c/bin/uffd_client if missing (setup.sh normally did). Returns the reason when it cannot. */
export function ensureClientBin(): string | null {
  if (fs.existsSync(CLIENT_BIN)) return null;
  try { execFileSync('make', ['-s', '-C', path.join(ROOT, 'tests', 'c'), 'bin/uffd_client'], { stdio: 'pipe' }); return null; } catch (e) { return `cannot build ${CLIENT_BIN}: ${String(e)}`; }
}

export class ChildClient {
  readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | null = null;
  pid: number;

  private constructor(env: Record<string, string>, grandchild: boolean) {
    // grandchild: run it under sh, so it is NOT our child (libuv's SIGCHLD reaping must not see its ptrace stops,
    // exactly like a real client we inject into); fd 3 carries stdin past sh's </dev/null for background jobs.
    this.proc = grandchild
      ? spawn('/bin/sh', ['-c', `exec 3<&0; "${CLIENT_BIN}" <&3 3<&- & wait`], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(CLIENT_BIN, [], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.proc.pid!;
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => {
      if (this.waiting) { const w = this.waiting; this.waiting = null; w(l); } else this.lines.push(l);
    });
    this.proc.stderr.on('data', () => undefined);
  }

  /** Spawn; with a handoff, under the preload library (the client hands its uffd over at load time). */
  static async start(handoff?: UffdHandoff, opts: { grandchild?: boolean } = {}): Promise<ChildClient> {
    const env = handoff ? handoff.env(process.env, findPreload()) : {};
    const c = new ChildClient(env, !!opts.grandchild);
    const [pid] = await c.cmd('pid');
    c.pid = Number(pid);
    return c;
  }

  /** Send one command; resolves with the reply's values, rejects on "err X" or timeout. */
  cmd(line: string, timeoutMs = 10000): Promise<string[]> {
    this.proc.stdin.write(line + '\n');
    return this.next(timeoutMs).then((l) => {
      const f = l.split(' ');
      if (f[0] !== 'ok') throw new Error(`${line} -> ${l}`);
      return f.slice(1);
    });
  }

  /** Send without waiting (a command expected to block); read its reply later with next(). */
  send(line: string): void { this.proc.stdin.write(line + '\n'); }

  next(timeoutMs = 10000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting = null; reject(new Error('client reply timeout')); }, timeoutMs);
      this.waiting = (x) => { clearTimeout(t); resolve(x); };
    });
  }

  async num(line: string): Promise<number> { return Number((await this.cmd(line))[0]); }

  async exit(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const done = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin.end('exit\n');
    await done;
  }

  kill(): void {
    try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
    try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
  }
}

/** Scheduler state letter of a process from /proc/PID/stat ('R', 'S', 'D', 'Z', ...; '' when gone). */
export function procState(pid: number): string {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[0];
  } catch { return ''; }
}

export function openFds(): number { return fs.readdirSync('/proc/self/fd').length; }

/** Our userfaultfds (the reader's other fds, e.g. its kept task syscall files, left out). */
export function uffdFds(): number {
  let n = 0;
  for (const x of fs.readdirSync('/proc/self/fd')) {
    try { if (/userfaultfd/.test(fs.readlinkSync(`/proc/self/fd/${x}`))) n++; } catch { /* raced */ }
  }
  return n;
}

/** Our fds of the kinds a watcher opens (uffd, pidfd, pagemap, reader eventfd, task syscall files); pipes of dead children excluded. */
export function watcherFds(): number {
  let n = 0;
  for (const x of fs.readdirSync('/proc/self/fd')) {
    try { if (/userfaultfd|pidfd|pagemap|eventfd|\/task\/\d+\/syscall$/.test(fs.readlinkSync(`/proc/self/fd/${x}`))) n++; } catch { /* raced */ }
  }
  return n;
}

/** VmFlags line of the VMA holding addr in /proc/PID/smaps (" uw" = registered with a uffd in WP mode). */
export function vmFlags(pid: number | 'self', addr: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/smaps`, 'latin1').split('\n');
  let inside = false;
  for (const line of lines) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) inside = addr >= parseInt(m[1], 16) && addr < parseInt(m[2], 16);
    else if (inside && line.startsWith('VmFlags:')) return line;
  }
  return '';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(fn: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn()) { if (Date.now() > end) return false; await sleep(2); }
  return true;
}

/** `pages` touched anonymous pages (page i holds byte i + 1) in this process's reservation (tests/uffd/helpers/reservation.ts). */
export function mapAnon(pages: number): number {
  return reservation().map(pages);
}

export const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * The set-up every child-client test file shares: why the file is skipped (no client binary, no preload library),
 * one handoff socket for the file, and the file's clients killed after each test.
 */
export function childClientFixture(test: TestFn): { readonly skip: string | null; readonly handoff: UffdHandoff; readonly clients: ChildClient[] } {
  const skip = ensureClientBin() ?? (findPreload() ? null : 'preload library not built (npm install)');
  let handoff: UffdHandoff | undefined;
  test.before(async () => { if (!skip) handoff = await UffdHandoff.listen(); });
  test.after.always(async () => { await handoff?.close(); });
  const clients: ChildClient[] = [];
  test.afterEach.always(() => { for (const c of clients.splice(0)) c.kill(); });
  return {
    skip, clients,
    get handoff(): UffdHandoff { if (!handoff) throw new Error('no handoff socket: the file is skipped, or before() has not run'); return handoff; },
  };
}
