// One benchmark harness: warm-up, repeated timed runs, median/p99, ratios against a baseline measured in the same run.
import { performance } from 'perf_hooks';

export interface Sample { name: string; unit: string; median: number; p99: number; n: number }

/** Time `fn` per call (µs): `reps` timed batches of `batch` calls after `warm` calls. */
export function timePerCall(name: string, fn: () => void, opts: { batch?: number; reps?: number; warm?: number } = {}): Sample {
  const batch = opts.batch ?? 1000, reps = opts.reps ?? 15, warm = opts.warm ?? batch;
  for (let i = 0; i < warm; i++) fn();
  const per: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    per.push(((performance.now() - t0) * 1000) / batch);
  }
  return summarize(name, 'µs/op', per);
}

/** Summarize individual latency samples (any unit). */
export function summarize(name: string, unit: string, xs: number[]): Sample {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))];
  return { name, unit, median: q(0.5), p99: q(0.99), n: s.length };
}

export function fmt(x: number): string {
  if (x >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (x >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  if (x >= 100) return x.toFixed(0);
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** Print a markdown table; `baseline` rows give the ratio column. */
export function table(title: string, rows: { name: string; value: number; unit: string; baseline?: number; note?: string }[]): string {
  const lines = [`### ${title}`, '', '| measurement | value | ratio to baseline | note |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline ? (r.value / r.baseline).toFixed(2) + '×' : '—'} | ${r.note ?? ''} |`);
  return lines.join('\n');
}

export function header(cmd: string): string {
  return `command: \`${cmd}\`  (node ${process.version}, ${new Date().toISOString().slice(0, 10)})`;
}
