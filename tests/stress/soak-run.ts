// The random-ioctl soak: a server on a real FUSE mount in this process, one C client (tests/c/bin/soak) sending N
// random (cmd, bytes) ioctls, then the client's close and the server's stop. Measures ioctls/s, the lines the server
// logged (everything that would reach stderr), and this process's RSS before and after (the server lives here).
// `npm run soak` runs it with 1,000,000 ioctls (`-- -n N -s SEED` to change); tests/stress/soak.test.ts runs a short one.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { startTransport } from '../../cuse-dev/transport/auto';
import type { Summary } from '../../cuse-dev/transport/serve-worker';
import { SERVE_WORKER_ENTRY } from '../../cli/serve-worker-main';

const ROOT = path.resolve(__dirname, '../../..');
export const SOAK_BIN = path.join(ROOT, 'tests/c/bin/soak');

export interface SoakOptions {
  n: number; seed?: number; timeoutMs?: number;
  /**
   * Start the client outside this process's children (setsid -f), as an unmodified program started by someone else:
   * the server then injects its userfaultfd with ptrace (it never ptraces its own children). Default true.
   */
  detached?: boolean;
}
export interface SoakResult {
  n: number; seed: number;
  /** The client's summary line ("soak n=… seconds=… ioctls_per_s=… ok=… EINVAL=…"). */
  clientLine: string; clientCode: number | null; clientSignal: string | null; clientStderr: string;
  /** Parsed from the client's line. */
  seconds: number; ioctlsPerS: number; errnos: Record<string, number>;
  /** Every line the server logged, from start to stop (its summary at stop included). */
  logLines: string[]; logBytes: number;
  rssBeforeMiB: number; rssAfterMiB: number;
  /** Counts after the client's file was released, before the stop. */
  countsAfter: Record<string, number>;
  retainedAfter: number;
  summary: Summary;
}

const rssMiB = (): number => Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const seed = o.seed ?? 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-soak-'));
  const logLines: string[] = [];
  let logBytes = 0;
  const s = await startTransport('fuse', { workerEntry: SERVE_WORKER_ENTRY, mountDir: path.join(dir, 'mnt'), log: (m) => { logLines.push(m); logBytes += Buffer.byteLength(m) + 1; } });
  try {
    const rssBeforeMiB = rssMiB();
    const args = ['-n', String(o.n), '-s', String(seed)];
    // Detached: sh (reparented away from us) runs the client and reports its status; our pipes see both to the end.
    const child = o.detached ?? true
      ? spawn('setsid', ['-f', 'sh', '-c', '"$0" "$@"; echo "soak-exit=$?"', SOAK_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIRTGPU_EMU_DEVICE: s.path } })
      : spawn(SOAK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIRTGPU_EMU_DEVICE: s.path } });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const done = await new Promise<{ code: number | null; signal: string | null }>((res) => {
      const t = setTimeout(() => {
        err += `\n[soak: killed after ${o.timeoutMs} ms]`;
        const pid = Number(/^soak pid=(\d+)$/m.exec(out)?.[1]);
        if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        child.kill('SIGKILL');
      }, o.timeoutMs ?? 30 * 60_000);
      child.on('close', (code, signal) => { clearTimeout(t); res({ code, signal }); });
    });
    const status = /^soak-exit=(\d+)$/m.exec(out);
    if (status) done.code = Number(status[1]);
    else if (o.detached ?? true) done.code = null;
    const clientLine = out.split('\n').find((l) => l.startsWith('soak n=')) ?? out.trim();
    const kv = Object.fromEntries([...clientLine.matchAll(/(\w+)=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
    const errnos: Record<string, number> = {};
    for (const [k, v] of Object.entries(kv)) if (/^E[A-Z0-9]+$|^other$/.test(k)) errnos[k] = v;
    // RELEASE reaches the server after the client's close, asynchronously: wait for it.
    let counts: Record<string, number> = {};
    let retainedAfter = -1;
    for (const end = Date.now() + 10_000; ;) {
      const snap = await s.snapshot();
      counts = snap.counts as Record<string, number>;
      retainedAfter = (snap.snapshot as { host?: { retainedBytes: number } }).host?.retainedBytes ?? -1;
      if (counts.files === 0 || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const summary = await s.stop();
    return {
      n: o.n, seed, clientLine, clientCode: done.code, clientSignal: done.signal, clientStderr: err,
      seconds: kv.seconds ?? NaN, ioctlsPerS: kv.ioctls_per_s ?? NaN, errnos,
      logLines, logBytes, rssBeforeMiB, rssAfterMiB: rssMiB(), countsAfter: counts, retainedAfter, summary,
    };
  } finally {
    await s.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (flag: string, def: number): number => { const i = argv.indexOf(flag); return i >= 0 ? Number(argv[i + 1]) : def; };
  const n = arg('-n', 1_000_000), seed = arg('-s', 1);
  console.log(`soak: ${n.toLocaleString('en-US')} random ioctls from one client (seed ${seed}) through the FUSE node; node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const r = await runSoak({ n, seed });
  const zero = Object.entries(r.countsAfter).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
  const rows: [string, string][] = [
    ['client', `${r.clientLine} (exit ${r.clientCode ?? r.clientSignal})`],
    ['ioctls/s', `${Math.round(r.ioctlsPerS).toLocaleString('en-US')} (${r.seconds.toFixed(1)} s)`],
    ['server log lines', `${r.logLines.length} (${r.logBytes.toLocaleString('en-US')} bytes; goal < 1,000 for 1M ioctls)`],
    ['server RSS before / after', `${r.rssBeforeMiB} MiB / ${r.rssAfterMiB} MiB`],
    ['host retained bytes after close', String(r.retainedAfter)],
    ['counts after close', zero.length ? `NOT ZERO: ${zero.join(' ')}` : 'all zero'],
    ['server summary', `ioctls=${r.summary.ioctls} clients=${r.summary.clients} reason=${r.summary.reason}`],
  ];
  for (const [k, v] of rows) console.log(`  ${k.padEnd(32)} ${v}`);
  console.log('server log:');
  for (const l of r.logLines) console.log(`  | ${l}`);
  if (r.clientStderr.trim()) console.log(`client stderr:\n${r.clientStderr}`);
  const ok = r.clientCode === 0 && !zero.length && (n < 1_000_000 || r.logLines.length < 1000) && !r.errnos.EIO;
  console.log(ok ? 'soak: ok' : 'soak: FAILED');
  process.exitCode = ok ? 0 : 1;
}

if (require.main === module) main().catch((e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
