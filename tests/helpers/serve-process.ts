// `virtgpu-emu serve …` as a separate process, the way a user (or CI) starts it: wait for the ready line, read the
// stderr it printed, kill it with any signal. Every wait is bounded.
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';

export const MAIN = path.resolve(__dirname, '../../cli/main.js');
const READY = /^virtgpu-emu: serving (\S+) \(transport=(cuse|fuse), watcher=(\S+), uapi=(\S+), mode=(notifier|pin)\)$/m;

export interface ServeProcess {
  readonly p: ChildProcess;
  /** The served path from the ready line; rejects if the process exits first or after `timeoutMs`. */
  readonly ready: Promise<string>;
  /** Exit code (or 128 + signal number when killed). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  /** The handoff environment `serve` prints on stderr (LD_PRELOAD + socket), after its ready line; {} if none in time. */
  clientEnv(timeoutMs?: number): Promise<Record<string, string>>;
}

export function startServe(args: string[], opts: { timeoutMs?: number; wrap?: string[] } = {}): ServeProcess {
  const argv = [process.execPath, MAIN, 'serve', ...args];
  const cmd = [...(opts.wrap ?? []), ...argv];
  const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const wake = (): void => { waiters.splice(0).forEach((w) => w()); };
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); wake(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); wake(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.on('exit', (code, signal) => { r({ code, signal }); wake(); }));
  const ready = (async () => {
    const until = Date.now() + (opts.timeoutMs ?? 15000);
    for (;;) {
      const m = READY.exec(out);
      if (m) return m[1]!;
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`serve exited (${p.exitCode ?? p.signalCode}) before its ready line:\n${err}`);
      if (Date.now() > until) throw new Error(`serve printed no ready line in time:\n${err}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
    }
  })();
  ready.catch(() => undefined);
  const clientEnv = async (timeoutMs = 5000): Promise<Record<string, string>> => {
    await ready;
    const re = /clients hand their userfaultfd over when started with: (.*)\n/;
    for (const until = Date.now() + timeoutMs; !re.test(err) && Date.now() < until && p.exitCode === null;) await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
    const line = re.exec(err)?.[1] ?? '';
    return Object.fromEntries(line.split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  };
  return { p, ready, exited, stdout: () => out, stderr: () => err, clientEnv };
}

/** Kill (if still running) and wait for the exit, bounded; SIGKILL if `sig` did not end it in time. */
export async function killServe(s: ServeProcess, sig: NodeJS.Signals = 'SIGKILL', ms = 10000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (s.p.exitCode === null && s.p.signalCode === null) s.p.kill(sig);
  const r = await Promise.race([s.exited, new Promise<null>((res) => setTimeout(() => res(null), ms))]);
  if (r) return r;
  s.p.kill('SIGKILL');
  return s.exited;
}
