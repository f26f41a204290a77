// One client's big userptr create against a real `virtgpu-emu serve` (FUSE, default watcher) while two other
// clients use the same node: one issues GETPARAM in a loop (its latency during the create), one issues a single
// VERSION once the server has begun faulting in the creator's pages. Shared by tests/stress/big-create.test.ts
// (which asserts the order of events) and bench/stall.ts (which reports the timings).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const BIG = path.join(ROOT, 'tests/c/bin/big_create');

export interface BigCreateResult {
  /** The creator's result ("0" on success) and the create's duration as the creator measured it. */
  createRc: string;
  createMs: number;
  /** CLOCK_MONOTONIC ns (all processes of one machine share it). */
  createStart: bigint;
  createEnd: bigint;
  /** When the harness saw the creator's RSS pass `witnessMiB` (the server is faulting its pages in: the create is being served). */
  witnessed: boolean;
  /** The single VERSION ioctl issued after that: start and end. */
  noopStart: bigint;
  noopEnd: bigint;
  noopRc: string;
  /** GETPARAM loop of the third client during the create. */
  lat: { n: number; maxUs: number; p50Us: number; p99Us: number };
  /** Server RSS: before the create, its peak (VmHWM) and after the creator closed its file. */
  serverRssBeforeMiB: number;
  serverPeakMiB: number;
  serverRssAfterMiB: number;
  serverStderr: string;
  /** The server's `stopped` line (it is stopped with SIGTERM at the end). */
  serverSummary: string;
}

export interface BigCreateOptions {
  mib: number;
  /** Creator RSS that shows the server is faulting its pages in (default 256 MiB). */
  witnessMiB?: number;
  serveArgs?: string[];
  timeoutMs?: number;
  /** SIGKILL the creator once witnessed, instead of waiting for its create (createRc is then 'killed'). */
  killCreator?: boolean;
}

class Lines {
  private buf = '';
  private waiters: { re: RegExp; res: (m: RegExpMatchArray) => void }[] = [];
  readonly all: string[] = [];
  constructor(readonly proc: ChildProcess, readonly name: string) {
    proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.all.push(line);
        for (const w of [...this.waiters]) {
          const m = line.match(w.re);
          if (m) { this.waiters.splice(this.waiters.indexOf(w), 1); w.res(m); }
        }
      }
    });
  }
  /** The first line (already seen or next) matching re. */
  wait(re: RegExp, ms: number, from = 0): Promise<RegExpMatchArray> {
    for (const l of this.all.slice(from)) { const m = l.match(re); if (m) return Promise.resolve(m); }
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${this.name}: no line matching ${re} in ${ms} ms; got: ${this.all.slice(-5).join(' | ')}`)), ms);
      this.waiters.push({ re, res: (m) => { clearTimeout(t); res(m); } });
    });
  }
  send(line: string): void { this.proc.stdin!.write(line + '\n'); }
}

function statusKiB(pid: number, key: string): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'latin1').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

export async function runBigCreate(o: BigCreateOptions): Promise<BigCreateResult> {
  const timeoutMs = o.timeoutMs ?? 90_000;
  const witnessKiB = (o.witnessMiB ?? 256) * 1024;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-big-'));
  const procs: ChildProcess[] = [];
  let serverErr = '';
  const server = spawn(process.execPath, [...(process.env.VIRTGPU_BENCH_SERVER_NODE_ARGS ? process.env.VIRTGPU_BENCH_SERVER_NODE_ARGS.split(' ') : []), MAIN, 'serve', '--transport', 'fuse', '--mount-dir', path.join(dir, 'mnt'), ...(o.serveArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.on('data', (d: Buffer) => { serverErr += d.toString(); });
  const srv = new Lines(server, 'serve');
  try {
    const ready = await srv.wait(/^virtgpu-emu: serving (\S+) /, 15_000);
    const env = { ...process.env, VIRTGPU_EMU_DEVICE: ready[1]! };
    const start = (args: string[], name: string): Lines => {
      const p = spawn(BIG, args, { stdio: ['pipe', 'pipe', 'inherit'], env });
      procs.push(p);
      return new Lines(p, name);
    };
    const creator = start(['create', String(o.mib)], 'creator');
    const looper = start(['probe'], 'loop probe');
    const once = start(['probe'], 'once probe');
    const cpid = Number((await creator.wait(/^ready pid=(\d+)/, 10_000))[1]);
    await looper.wait(/^ready/, 10_000);
    await once.wait(/^ready/, 10_000);
    once.send('once'); // first ioctl of that client (its injection) before the measured one
    await once.wait(/^noop /, 10_000);
    const rssBefore = statusKiB(server.pid!, 'VmRSS');
    looper.send('loop');
    creator.send('go');
    await creator.wait(/^create-start/, 10_000);
    let witnessed = false;
    const deadline = Date.now() + timeoutMs;
    const doneP = creator.wait(/^create-done (\d+) rc=(\S+) ms=([\d.]+)/, timeoutMs);
    let done: RegExpMatchArray | null = null;
    void doneP.then((m) => { done = m; }, () => undefined);
    while (!done && Date.now() < deadline) {
      if (statusKiB(cpid, 'VmRSS') >= witnessKiB) { witnessed = true; break; }
      await new Promise((r) => setTimeout(r, 2));
    }
    const seen = once.all.length;
    if (witnessed && o.killCreator) creator.proc.kill('SIGKILL');
    if (witnessed) once.send('once');
    const d = o.killCreator && witnessed ? ['', '0', 'killed', '0'] as unknown as RegExpMatchArray : await doneP;
    const noop = witnessed ? (await once.wait(/^noop (\d+) (\d+) rc=(\S+)$/, timeoutMs, seen)) : null;
    // Stop the loop only once the create returned: its latencies cover the whole create.
    looper.send('quit');
    const lat = await looper.wait(/^lat n=(\d+) max_us=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)/, timeoutMs);
    const peak = statusKiB(server.pid!, 'VmHWM');
    if (!o.killCreator) {
      creator.send('close');
      await creator.wait(/^closed/, timeoutMs);
    }
    once.send('quit');
    await new Promise((r) => setTimeout(r, 200)); // RELEASE arrives asynchronously after close()
    const after = statusKiB(server.pid!, 'VmRSS');
    for (const p of procs) p.stdin!.end();
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('close', r)))));
    await new Promise((r) => setTimeout(r, 200)); // the last RELEASEs
    server.kill('SIGTERM');
    await new Promise((r) => server.once('close', r));
    const summary = [...srv.all, ...serverErr.split('\n')].find((l) => l.startsWith('virtgpu-emu: stopped')) ?? '';
    return {
      createRc: d[2]!, createMs: Number(d[3]), createStart: BigInt((await creator.wait(/^create-start (\d+)/, 1))[1]!), createEnd: BigInt(d[1]!),
      serverSummary: summary,
      witnessed, noopStart: noop ? BigInt(noop[1]!) : 0n, noopEnd: noop ? BigInt(noop[2]!) : 0n, noopRc: noop ? noop[3]! : '',
      lat: { n: Number(lat[1]), maxUs: Number(lat[2]), p50Us: Number(lat[3]), p99Us: Number(lat[4]) },
      serverRssBeforeMiB: rssBefore / 1024, serverPeakMiB: peak / 1024, serverRssAfterMiB: after / 1024, serverStderr: serverErr,
    };
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('close', r)))));
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      const t = setTimeout(() => server.kill('SIGKILL'), 10_000);
      await new Promise((r) => server.once('close', r));
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

