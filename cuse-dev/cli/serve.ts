// `serve`: start the transport, print exactly one ready line, stop cleanly on SIGINT/SIGTERM with a summary line.
import { readyLine, summaryLine, type RunningServer } from '../transport/common';
import { startTransport } from '../transport/auto';
import type { CliServeOptions } from './options';

const err = (m: string): void => { process.stderr.write(`virtgpu-emu: ${m}\n`); };

export async function startServer(opts: CliServeOptions): Promise<RunningServer> {
  const s = await startTransport(opts.transport, { ...opts, log: (m) => err(m) });
  for (const n of s.notes) err(`note: ${n}`);
  return s;
}

/** Exit without hanging on a serving thread blocked in read(2) (process.exit would join it forever). */
export function exitProcess(s: RunningServer | undefined, code: number): never {
  if (s?.stuck()) {
    err('serving thread still blocked in read(2): killing the process');
    process.kill(process.pid, 'SIGKILL');
  }
  process.exit(code);
}

export async function serve(opts: CliServeOptions): Promise<never> {
  const s = await startServer(opts);
  process.stdout.write(readyLine(s) + '\n');
  return new Promise<never>(() => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) { err(`${sig} again: exiting now`); exitProcess(s, 1); }
      stopping = true;
      s.stop().then(
        (sum) => { process.stdout.write(summaryLine(sum) + '\n'); exitProcess(s, 0); },
        (e: Error) => { err(`stop failed: ${e.message}`); exitProcess(s, 1); },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
