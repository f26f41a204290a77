// `report TRACE [--perfetto OUT.json] [--html OUT.html] [--partial]`: read a --trace file (checked against its
// schema) and write the views asked for; with none, a one-line summary of what the trace holds.
import * as fs from 'fs';
import * as path from 'path';
import { readTrace, type Trace } from '../cuse-dev/trace/reader';
import { toPerfetto } from '../cuse-dev/trace/perfetto';
import { toHtml } from '../cuse-dev/trace/html';
import { UsageError } from './options';

export interface ReportOptions { trace: string; perfetto?: string; html?: string; partial: boolean }

export function parseReport(argv: string[]): ReportOptions {
  let trace: string | undefined;
  const o: Partial<ReportOptions> = { partial: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--perfetto': o.perfetto = next(); break;
      case '--html': o.html = next(); break;
      case '--partial': o.partial = true; break;
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown report option ${a}`);
        if (trace !== undefined) throw new UsageError(`report takes one trace, got ${trace} and ${a}`);
        trace = a;
    }
  }
  if (trace === undefined) throw new UsageError('report needs a trace file');
  return { ...o, trace } as ReportOptions;
}

/** Counts of a trace's records by kind, in first-seen order: "ioctl=12 notifier=3 …". */
export function summarizeTrace(tr: Trace): string {
  const by = new Map<string, number>();
  for (const r of tr.records) by.set(r.t, (by.get(r.t) ?? 0) + 1);
  const h = tr.header;
  return `trace schema ${h.version}: uapi ${h.uapi} mode ${h.mode} profile ${h.profile}, ${tr.records.length} records${tr.complete ? '' : ' (partial)'}: ${[...by].map(([k, n]) => `${k}=${n}`).join(' ')}`;
}

export function report(argv: string[]): number {
  const o = parseReport(argv);
  const tr = readTrace(o.trace, { partial: o.partial });
  process.stderr.write(summarizeTrace(tr) + '\n');
  if (o.perfetto) {
    const j = toPerfetto(tr);
    writeOutput(o.perfetto, JSON.stringify(j));
    process.stderr.write(`${o.perfetto}: ${j.traceEvents.length} trace events (Perfetto UI, chrome://tracing)\n`);
  }
  if (o.html) {
    writeOutput(o.html, toHtml(tr, path.basename(o.trace)));
    process.stderr.write(`${o.html}: the userptr lifetime view (open it in a browser)\n`);
  }
  return 0;
}

/** Write a report file whole (a half-written view is worse than none). */
export function writeOutput(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, path);
}
