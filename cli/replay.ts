// `replay TRACE [--uapi NAME] [--partial]`: re-issue a recorded session against a fresh in-process device (cuse-dev/trace/replay.ts)
// and list every difference; exit 1 when there is one, 2 when the trace cannot be read.
import { readTrace } from '../cuse-dev/trace/reader';
import { replay } from '../cuse-dev/trace/replay';
import { UsageError } from './options';
import { UAPI_NAMES } from '../core';

/** Differences printed in full; the rest are counted. */
const SHOW = 50;

export function replayCommand(argv: string[]): number {
  let partial = false;
  let uapi: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--partial') partial = true;
    else if (a === '--uapi') {
      uapi = argv[++i];
      if (!uapi || !(UAPI_NAMES as readonly string[]).includes(uapi)) throw new UsageError(`--uapi must be one of ${UAPI_NAMES.join('|')}, got "${uapi ?? ''}"`);
    } else if (a.startsWith('-')) throw new UsageError(`unknown replay option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new UsageError('replay takes one trace file');
  const tr = readTrace(rest[0]!, { partial });
  const r = replay(tr, { uapi });
  for (const d of r.differences.slice(0, SHOW)) {
    process.stdout.write(`seq ${d.seq}: ${d.what} differs\n  recorded: ${JSON.stringify(d.recorded)}\n  replayed: ${JSON.stringify(d.replayed)}\n`);
  }
  if (r.differences.length > SHOW) process.stdout.write(`… and ${r.differences.length - SHOW} more\n`);
  process.stdout.write(`replayed ${r.ioctls} ioctls and ${r.hostCommands} host commands (uapi ${uapi ?? tr.header.uapi}${uapi ? `, recorded under ${tr.header.uapi}` : ''}, mode ${tr.header.mode}): ${r.differences.length ? `${r.differences.length} difference(s)` : 'no difference'}\n`);
  return r.differences.length ? 1 : 0;
}
