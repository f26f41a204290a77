#!/usr/bin/env node
// virtgpu-emu CLI: serve | run | doctor | demo | matrix | report | replay.
import { parseServe, UsageError, USAGE } from './options';
import { serve } from './serve';
import { runCommand } from './run';
import { doctor } from './doctor';
import { demo } from './demo';
import { matrix } from './matrix';
import { report } from './report';
import { replayCommand } from './replay';
import { TraceFormatError } from '../cuse-dev/trace/reader';
import { applyServerV8Flags } from './v8-flags';

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const { opts, rest: extra } = parseServe(rest);
      if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
      return serve(opts);
    }
    case 'run': {
      const { opts, rest: command } = parseServe(rest);
      return runCommand(opts, command);
    }
    case 'doctor': return doctor();
    case 'demo': return demo();
    case 'matrix': return matrix();
    case 'report': return report(rest);
    case 'replay': return replayCommand(rest);
    case '-h': case '--help': case 'help': process.stdout.write(USAGE + '\n'); return 0;
    default: throw new UsageError(cmd ? `unknown command ${cmd}` : 'no command');
  }
}

if (require.main === module) {
  applyServerV8Flags();
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: Error) => {
      if (e instanceof UsageError) { process.stderr.write(`virtgpu-emu: ${e.message}\n${USAGE}\n`); process.exitCode = 2; }
      else if (e instanceof TraceFormatError) { process.stderr.write(`virtgpu-emu: ${e.message}\n`); process.exitCode = 2; }
      else { process.stderr.write(`virtgpu-emu: error: ${e.message}\n`); process.exitCode = 1; }
    },
  );
}
