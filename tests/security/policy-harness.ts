// What the injection-policy and permission tests share: a `virtgpu-emu serve` process (not the test's own: the
// server never injects into its own children) with its mount in a 0755 folder, and policy_client started as root
// or as another user, read line by line.
import * as fs from 'fs';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { killServe, startServe, type ServeProcess } from '../helpers/serve-process';
import { asUserArgv, stage, type AsUserOptions, type Stage, type User } from '../helpers/as-user';

export const POLICY_CLIENT = path.resolve(__dirname, '../../../tests/c/bin/policy_client');

export interface Served {
  readonly s: ServeProcess;
  readonly path: string;
  readonly stage: Stage;
  /** Stop with SIGTERM; the summary line's `inject:` counters (all 0 when it printed none). */
  stop(): Promise<Record<string, number>>;
}

/** serve --transport fuse with the mount in a 0755 folder (which also holds the staged client). */
export async function serveFuse(args: string[]): Promise<Served> {
  const st = stage([POLICY_CLIENT]);
  const s = startServe(['--transport', 'fuse', '--mount-dir', path.join(st.dir, 'mnt'), ...args]);
  let p: string;
  try { p = await s.ready; } catch (e) { await killServe(s); st.remove(); throw e; }
  return {
    s, path: p, stage: st,
    async stop() {
      await killServe(s, 'SIGTERM');
      st.remove();
      const m = /inject: started=(\d+) completed=(\d+) abandoned=(\d+) tracee-died=(\d+) failed=(\d+) refused=(\d+) declined=(\d+)/.exec(s.stdout());
      const keys = ['started', 'completed', 'abandoned', 'traceeDied', 'failed', 'refused', 'declined'];
      return Object.fromEntries(keys.map((k, i) => [k, m ? Number(m[i + 1]) : 0]));
    },
  };
}

export class Client {
  private out = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(readonly p: ChildProcess) {
    p.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); this.waiters.splice(0).forEach((w) => w()); });
    p.stderr!.on('data', (d: Buffer) => { this.out += `[stderr] ${d.toString()}`; });
    this.exited = new Promise((r) => p.on('close', (code) => { r(code); this.waiters.splice(0).forEach((w) => w()); }));
  }

  /** policy_client [-n] NODE, as root (user undefined) or as `user`; `env` is its whole environment. */
  static start(served: Served, opts: { user?: User; as?: AsUserOptions; nondumpable?: boolean; env?: Record<string, string> } = {}): Client {
    const bin = served.stage.at('policy_client');
    const args = [...(opts.nondumpable ? ['-n'] : []), served.path];
    const env = opts.env ?? { PATH: '/usr/bin:/bin' };
    // stdin is the client's command channel: asUserArgv (setpriv) rather than spawnAs, whose stdin is closed.
    const argv = opts.user ? asUserArgv(opts.user, bin, args, opts.as) : [bin, ...args];
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env, cwd: '/' });
    return new Client(p);
  }

  get pid(): number { return this.p.pid!; }
  output(): string { return this.out; }

  /** The first stdout match of `re` (waits up to `ms`). */
  async line(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out);
      if (m) return m;
      if (Date.now() > end || this.p.exitCode !== null) throw new Error(`client ${this.pid}: no ${re} in ${JSON.stringify(this.out)}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }

  /** One round (userptr, full munmap, RESOURCE_INFO): the n-th "round" line. */
  async round(n: number): Promise<string> {
    this.p.stdin!.write('\n');
    const re = /^round .*$/gm;
    const end = Date.now() + 10_000;
    for (;;) {
      const all = this.out.match(re) ?? [];
      if (all.length >= n) return all[n - 1]!;
      if (Date.now() > end || this.p.exitCode !== null) throw new Error(`client ${this.pid}: round ${n} missing in ${JSON.stringify(this.out)}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }

  async end(): Promise<number | null> {
    this.p.stdin?.end();
    const t = setTimeout(() => this.p.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** State letter and TracerPid of a process ('' / 0 once gone). */
export function traceState(pid: number): { state: string; tracer: number } {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    return { state: /^State:\s+(\S)/m.exec(st)?.[1] ?? '', tracer: Number(/^TracerPid:\s+(\d+)/m.exec(st)?.[1] ?? 0) };
  } catch { return { state: '', tracer: 0 }; }
}

/** Userfaultfds in a process's fd table. */
export function uffdsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((x) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${x}`).includes('userfaultfd'); } catch { return false; } }).length;
}

/** Wait until `f()` holds (bounded). */
export async function waitFor(f: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) { if (f()) return true; await new Promise((r) => setTimeout(r, 20)); }
  return f();
}
