// The world of the tid-reuse attack (tests/security/tid-reuse.test.ts starts this script as the init of a fresh PID +
// mount namespace: `unshare --pid --mount --fork --mount-proc`). Inside: a private tmpfs over the default mount
// parent, a small pid_max of the namespace's own (never the host's), the server (world-openable FUSE node), and for
// each scenario a root victim whose thread opened the node, made an ioctl and exited, then an attacker (as `nobody`,
// or as root for the same-user case) forking until a child holds that thread's tid and makes the ioctls whose
// pointers a stale tid → process mapping would follow into the victim. Prints one line `RESULT <json>`.
import * as fs from 'fs';
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { nobody, spawnAs, stage } from '../helpers/as-user';
import { collect, type Done } from '../helpers/clients';
import { killServe, startServe } from '../helpers/serve-process';

export interface WorldConfig {
  /** The namespace's pid_max (pids below it; after a wrap the kernel starts again at 300). */
  pidMax: number;
  /** ns_last_pid before the victims start: their threads' tids then lie above 300, where a wrap reaches them. */
  lastPid: number;
  /** tests/c/bin/tid_reuse (staged into a 0755 folder for `nobody`). */
  binary: string;
  scenarios: ('nobody' | 'root')[];
  maxForks: number;
  /** Where the victim and the attacker map their page (MAP_FIXED_NOREPLACE). */
  addr: string;
}

export interface ScenarioResult {
  attacker: 'nobody' | 'root';
  victimTid: number;
  victimThread: string;
  attack: { code: number | null; signal: string | null; stdout: string; stderr: string };
  canary: string;
  victimAfter: string;
}

export interface WorldResult {
  pidMax: string;
  scenarios: ScenarioResult[];
  fresh: { thread: string; canary: string; after: string };
  server: { code: number | null; stdout: string; stderr: string };
  error?: string;
}

const MOUNT_PARENT = '/run/virtgpu-emu';
const STEP_MS = 20_000;

/** A tid_reuse victim: lines as they come, a waiter for the next one matching. */
class Victim {
  private out = '';
  private readonly waiters: (() => void)[] = [];
  readonly p: ChildProcess;
  constructor(binary: string, node: string, addr: string) {
    this.p = spawn(binary, ['victim', node, addr], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.p.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); this.waiters.splice(0).forEach((w) => w()); });
    this.p.stderr!.on('data', (d: Buffer) => { this.out += `stderr: ${d.toString()}`; this.waiters.splice(0).forEach((w) => w()); });
    this.p.stdin!.on('error', () => undefined);
  }
  async line(re: RegExp, from = 0): Promise<RegExpExecArray> {
    const end = Date.now() + STEP_MS;
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return m;
      if (Date.now() > end || this.p.exitCode !== null) throw new Error(`victim: no line ${re} in: ${this.out}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  /** Canary check + a GETPARAM from the main thread: the two lines it prints. */
  async check(): Promise<{ canary: string; after: string }> {
    const from = this.out.length;
    this.p.stdin!.write('\n');
    const canary = (await this.line(/^canary .*$/m, from))[0];
    const after = (await this.line(/^victim getparam .*$/m, from))[0];
    return { canary, after };
  }
  end(): Promise<Done> { const d = collect(this.p, STEP_MS); this.p.stdin!.end(); return d; }
}

async function main(cfg: WorldConfig): Promise<WorldResult> {
  if (process.pid !== 1) throw new Error('tid-reuse-world runs as the init of a fresh pid namespace only (it sets that namespace\'s pid_max)');
  const res: WorldResult = { pidMax: '', scenarios: [], fresh: { thread: '', canary: '', after: '' }, server: { code: null, stdout: '', stderr: '' } };
  // Our own default mount parent: the server's sweep of dead mounts sees only this namespace's tmpfs.
  fs.mkdirSync(MOUNT_PARENT, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=1m', 'virtgpu-tid-reuse', MOUNT_PARENT], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`mount tmpfs on ${MOUNT_PARENT}: ${m.stderr}`);
  fs.writeFileSync('/proc/sys/kernel/pid_max', String(cfg.pidMax));
  res.pidMax = fs.readFileSync('/proc/sys/kernel/pid_max', 'latin1').trim();
  const staged = stage([cfg.binary]);
  const bin = staged.at('tid_reuse');
  const s = startServe(['--transport', 'fuse', '--watch', 'none', '--mount-dir', `${MOUNT_PARENT}/mnt`, '--mode-bits', '0666']);
  const victims: Victim[] = [];
  try {
    const node = await s.ready;
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(cfg.lastPid));
    for (const who of cfg.scenarios) {
      const v = new Victim(bin, node, cfg.addr);
      victims.push(v);
      const t = await v.line(/^victim thread (\d+) getparam .*$/m);
      const tid = Number(t[1]);
      const argv = ['attack', node, cfg.addr, String(tid), String(cfg.maxForks)];
      const a = await collect(who === 'nobody' ? spawnAs(nobody()!, bin, argv) : spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
      const { canary, after } = await v.check();
      res.scenarios.push({ attacker: who, victimTid: tid, victimThread: t[0], attack: { code: a.code, signal: a.signal, stdout: a.stdout, stderr: a.stderr }, canary, victimAfter: after });
    }
    // A client that comes after the attacks is served as any other.
    const fresh = new Victim(bin, node, cfg.addr);
    victims.push(fresh);
    res.fresh.thread = (await fresh.line(/^victim thread \d+ getparam .*$/m))[0];
    const c = await fresh.check();
    res.fresh.canary = c.canary;
    res.fresh.after = c.after;
  } catch (e) {
    res.error = (e as Error).stack ?? String(e);
  } finally {
    for (const v of victims) await v.end();
    const r = await killServe(s, 'SIGTERM', 15_000);
    res.server = { code: r.code, stdout: s.stdout(), stderr: s.stderr() };
    staged.remove();
  }
  return res;
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]!) as WorldConfig).then(
    (r) => { process.stdout.write(`RESULT ${JSON.stringify(r)}\n`); process.exit(0); },
    (e: Error) => { process.stdout.write(`RESULT ${JSON.stringify({ error: e.stack ?? e.message })}\n`); process.exit(1); },
  );
}
