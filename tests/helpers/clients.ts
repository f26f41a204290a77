// Running C clients against a served node from a test: collecting their output, their TAP-like result lines, and
// waiting for the server's counts. Shared by tests/e2e and tests/stress.
import type { ChildProcess } from 'child_process';

export interface Done { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Output and exit of a child; SIGKILLed after timeoutMs (noted in stderr). */
export function collect(p: ChildProcess, timeoutMs: number): Promise<Done> {
  let stdout = '';
  let stderr = '';
  p.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
  p.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => {
    const timer = setTimeout(() => { stderr += `\n[test: killed after ${timeoutMs} ms]`; p.kill('SIGKILL'); }, timeoutMs);
    p.on('error', (e) => { stderr += `\n[spawn error: ${e.message}]`; });
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

export interface TapLine { n: number; ok: boolean; name: string; detail: string }
/** "ok N - name" / "not ok N - name: details" (the details follow the first ": "). */
export function parseTap(out: string): Map<string, TapLine> {
  const m = new Map<string, TapLine>();
  for (const line of out.split('\n')) {
    const r = /^(ok|not ok) (\d+) - ([^:\s]+)(?:: (.*)| (.*))?$/.exec(line);
    if (r) m.set(r[3]!, { n: Number(r[2]), ok: r[1] === 'ok', name: r[3]!, detail: r[4] ?? r[5] ?? '' });
  }
  return m;
}

export const tail = (s: string, n = 15): string => s.trim().split('\n').slice(-n).join('\n');

/** Poll f until ok(value); rejects with the last value after ms. */
export async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The server snapshot's counts (core Device.counts()). */
export interface CountsLike { files: number; clients: number; handles: number; resources: number; pins: number; registrations: number; queued: number; contexts: number; blobMemory?: number; blobMemoryBytes?: number; fences?: number }

export const allZero = (c: CountsLike): boolean =>
  c.files === 0 && c.handles === 0 && c.resources === 0 && c.pins === 0 && c.registrations === 0 && c.queued === 0 && c.contexts === 0 &&
  (c.blobMemory ?? 0) === 0 && (c.blobMemoryBytes ?? 0) === 0 && (c.fences ?? 0) === 0;
