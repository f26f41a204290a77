// `doctor`: what can serve here and why (the same probes `--transport auto` / `--watch auto` use).
import { probeTransports, type Probe } from '../cuse-dev/transport/auto';
import { probeWatchers } from '../uffd';
import { policyLines } from './policy';
import { DEFAULT_UAPI, UAPI, UAPI_NAMES } from '../core';

/** `--watch none` needs nothing: listed after uffd's probes (each says why its watcher can or cannot run here). */
const NONE: Probe = { name: 'none', ok: true, reason: 'always: pointer copies via /proc/PID/mem, no invalidation events (userptrs live until closed)' };

export function table(title: string, rows: Probe[]): string {
  const w = Math.max(title.length, ...rows.map((r) => r.name.length));
  const lines = [`${title.padEnd(w)}  ok   reason`];
  for (const r of rows) lines.push(`${r.name.padEnd(w)}  ${(r.ok ? 'yes' : 'no').padEnd(3)}  ${r.reason}`);
  return lines.join('\n');
}

/** The uAPI revisions `--uapi` takes (every one runs on any host: they are the kernel's reading of the bytes). */
export function uapiTable(): string {
  const w = Math.max(...UAPI_NAMES.map((n) => n.length), 'uapi'.length);
  const lines = [`${'uapi'.padEnd(w)}  create_blob  what it is`];
  for (const n of UAPI_NAMES) lines.push(`${n.padEnd(w)}  ${`${UAPI[n].layout.size} bytes`.padEnd(11)}  ${UAPI[n].summary}${n === DEFAULT_UAPI ? ' [default]' : ''}`);
  return lines.join('\n');
}

export function doctor(): number {
  const t = probeTransports();
  const w = [...probeWatchers(), NONE];
  process.stdout.write(table('transport', t) + '\n\n' + table('watcher', w) + '\n');
  const pick = t.find((p) => p.ok && p.name !== 'in-process');
  process.stdout.write(`\nserve --transport auto would use: ${pick ? pick.name : 'nothing (see reasons above)'}\n`);
  process.stdout.write(`\n${policyLines().join('\n')}\n`);
  process.stdout.write('\n' + uapiTable() + '\n');
  return pick ? 0 : 1;
}
